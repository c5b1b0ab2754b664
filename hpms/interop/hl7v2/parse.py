"""HL7 v2 messages read: the header of any message, the patient of an ADT^A04/A08/A31, the
acknowledgement of one hpms sent. Versions 2.3 to 2.8 are read alike; the separators are the
message's own (MSH-1, MSH-2). Segments may end with CR, LF or CR LF."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from hpms.interop.hl7v2.build import SEX


class ParseError(ValueError):
    """Not an HL7 v2 message hpms can read (the text says why)."""


@dataclass(frozen=True)
class Separators:
    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"


@dataclass
class Parsed:
    """A message split into segments (name -> the list of each occurrence's fields, with
    field 0 the segment's name; in MSH field 1 is the field separator as HL7 counts)."""

    seps: Separators
    segments: list[tuple[str, list[str]]] = field(default_factory=list)

    def first(self, name: str) -> list[str] | None:
        for n, fields in self.segments:
            if n == name:
                return fields
        return None

    def value(self, name: str, index: int, component: int = 1, repetition: int = 0) -> str:
        """The unescaped text of SEG-index.component (1-based, as HL7 counts) of the first
        segment `name`; "" when absent."""
        fields = self.first(name)
        if fields is None or index >= len(fields):
            return ""
        reps = fields[index].split(self.seps.repetition) if name != "MSH" or index > 2 else [fields[index]]
        if repetition >= len(reps):
            return ""
        comps = reps[repetition].split(self.seps.component)
        if component > len(comps):
            return ""
        return unescape(comps[component - 1].split(self.seps.subcomponent)[0], self.seps)

    def repetitions(self, name: str, index: int, *, join: str | None = None) -> list[list[str]]:
        """Each repetition of SEG-index as its unescaped components: each component's first
        subcomponent, or all of them joined by `join`."""
        fields = self.first(name)
        if fields is None or index >= len(fields) or not fields[index]:
            return []
        sub = self.seps.subcomponent

        def text(c: str) -> str:
            parts = c.split(sub)
            return unescape(parts[0] if join is None else join.join(x for x in parts if x), self.seps)

        return [[text(c) for c in rep.split(self.seps.component)] for rep in fields[index].split(self.seps.repetition)]


_SEGMENT_NAME = re.compile(r"^[A-Z][A-Z0-9]{2}$")


def split(text: str) -> Parsed:
    """The message's segments. Raises ParseError when it does not start with a readable MSH."""
    body = text.replace("\r\n", "\r").replace("\n", "\r").strip("\r\x00 \t")
    if not body.startswith("MSH") or len(body) < 8:
        raise ParseError("it does not start with an MSH segment")
    fs = body[3]
    enc = body[4:8]
    if fs.isalnum() or len(set(enc + fs)) != 5 or any(c.isalnum() for c in enc):
        raise ParseError("its MSH does not declare its separators (MSH-1, MSH-2)")
    seps = Separators(field=fs, component=enc[0], repetition=enc[1], escape=enc[2], subcomponent=enc[3])
    parsed = Parsed(seps)
    for line in body.split("\r"):
        if not line.strip():
            continue
        name = line[:3]
        if not _SEGMENT_NAME.match(name) or (len(line) > 3 and line[3] != fs):
            raise ParseError(f"{line[:3]!r} is not a segment")
        parts = line.split(fs)
        if name == "MSH":
            parts = ["MSH", fs, *parts[1:]]
        parsed.segments.append((name, parts))
    return parsed


def unescape(text: str, seps: Separators = Separators()) -> str:
    """HL7 escapes back to text (\\F\\ \\S\\ \\T\\ \\R\\ \\E\\, \\X0D\\ hex); formatting
    escapes (\\.br\\, \\H\\...) become nothing, or a line break for .br."""
    e = seps.escape
    if e not in text:
        return text
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == e:
            end = text.find(e, i + 1)
            if end == -1:
                out.append(text[i:])
                break
            code = text[i + 1 : end]
            if code == "F":
                out.append(seps.field)
            elif code == "S":
                out.append(seps.component)
            elif code == "T":
                out.append(seps.subcomponent)
            elif code == "R":
                out.append(seps.repetition)
            elif code == "E":
                out.append(e)
            elif code.startswith("X") and len(code) > 1:
                try:
                    out.append(bytes.fromhex(code[1:]).decode("latin-1"))
                except ValueError:
                    pass
            elif code == ".br":
                out.append("\n")
            i = end + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


@dataclass(frozen=True)
class Header:
    sending_app: str
    sending_facility: str
    message_type: str  # MSH-9.1, e.g. ADT
    trigger: str  # MSH-9.2, e.g. A04
    control_id: str  # MSH-10
    version: str  # MSH-12


def header(p: Parsed) -> Header:
    return Header(
        sending_app=p.value("MSH", 3),
        sending_facility=p.value("MSH", 4),
        message_type=p.value("MSH", 9, 1),
        trigger=p.value("MSH", 9, 2),
        control_id=p.value("MSH", 10),
        version=p.value("MSH", 12),
    )


@dataclass(frozen=True)
class Identifier:
    value: str
    authority: str  # CX-4.1, the namespace of the assigning authority
    type_code: str  # CX-5: MR, SS, PI...


@dataclass(frozen=True)
class AdtPatient:
    """The demographics of an ADT's PID, as hpms names them (None: the message says nothing)."""

    identifiers: tuple[Identifier, ...]
    last_name: str
    first_name: str
    middle_name: str | None
    dob: dt.date | None
    sex_at_birth: str | None
    address_line1: str | None
    address_line2: str | None
    city: str | None
    state: str | None
    postal_code: str | None
    country: str | None
    phone: str | None
    email: str | None


# HL7 table 0001 -> sex at birth: the codes hpms writes read back as written; O (other) and N
# (not applicable) say nothing hpms records
SEX_OF_CODE = {code: sex for sex, code in SEX.items()} | {"O": "unknown", "N": "unknown"}


def _date(text: str) -> dt.date | None:
    digits = text[:8]
    if len(digits) != 8 or not digits.isdigit():
        return None
    try:
        return dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        return None


def adt_patient(p: Parsed) -> AdtPatient:
    """The patient of an ADT message. Raises ParseError when it has no PID or the PID no name."""
    if p.first("PID") is None:
        raise ParseError("it has no PID segment")
    ids = []
    for index in (3, 2):  # PID-3, then the older PID-2 (external id)
        for comps in p.repetitions("PID", index):
            value = comps[0].strip() if comps else ""
            if value:
                authority = comps[3].strip() if len(comps) > 3 else ""
                kind = comps[4].strip() if len(comps) > 4 else ""
                ids.append(Identifier(value, authority, kind))
    names = p.repetitions("PID", 5)
    name = names[0] if names else []
    last = name[0].strip() if name else ""
    first = name[1].strip() if len(name) > 1 else ""
    if not last or not first:
        raise ParseError("its PID-5 has no family and given name")
    addresses = p.repetitions("PID", 11, join=" ")
    addr = addresses[0] if addresses else []

    def part(comps: list[str], i: int) -> str | None:
        return (comps[i].strip() or None) if len(comps) > i else None

    phone = email = None
    for comps in p.repetitions("PID", 13):
        use = part(comps, 2)
        if use == "Internet" or part(comps, 1) == "NET":
            email = email or part(comps, 3)
        elif phone is None:
            phone = part(comps, 0) or part(comps, 11)
    middle = name[2].strip() if len(name) > 2 and name[2].strip() else None
    sex = p.value("PID", 8).strip().upper()
    country = (part(addr, 5) or "").upper()
    return AdtPatient(
        identifiers=tuple(ids),
        last_name=last,
        first_name=first,
        middle_name=middle,
        dob=_date(p.value("PID", 7)),
        sex_at_birth=SEX_OF_CODE.get(sex),
        address_line1=part(addr, 0),
        address_line2=part(addr, 1),
        city=part(addr, 2),
        state=part(addr, 3),
        postal_code=part(addr, 4),
        country=country if country and len(country) == 2 else None,
        phone=phone,
        email=email,
    )


@dataclass(frozen=True)
class Ack:
    code: str  # MSA-1: AA, AE, AR (or CA, CE, CR)
    control_id: str  # MSA-2: the message it answers
    text: str  # MSA-3, else ERR-8, else ""


def ack(text: str) -> Ack:
    """The acknowledgement in `text`. Raises ParseError when it is not one."""
    p = split(text)
    if p.first("MSA") is None:
        raise ParseError("the answer has no MSA segment")
    code = p.value("MSA", 1).strip().upper()
    if code not in ("AA", "AE", "AR", "CA", "CE", "CR"):
        raise ParseError(f"the answer's MSA-1 {code!r} is not an acknowledgement code")
    said = p.value("MSA", 3).strip() or p.value("ERR", 8).strip() or p.value("ERR", 3, 2).strip()
    return Ack(code, p.value("MSA", 2).strip(), said)
