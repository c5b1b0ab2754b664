"""ICD-10-CM: every code of the CDC release shipped by the `simple-icd-10-cm` package, with its
description and whether it is billable (a leaf code, valid on a claim).

Importing `simple_icd_10_cm` costs seconds and ~190 MB (it parses the whole tabular XML), so it is
imported only to build a compact table once: a gzip TSV in the cache directory
(`$HPMS_CACHE_DIR`, else the user cache dir), named with the package version, written
atomically (temp file + rename). Lookups load that table lazily into memory on first use.
"""

from __future__ import annotations

import bisect
import gzip
import os
import re
import threading
import zlib
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "simple-icd-10-cm"
FORMAT = 1  # the layout of the cache file; bump to force a rebuild
_MAGIC = "# hpms icd10cm"

_CODE = re.compile(r"[A-Z][0-9][0-9A-Z]{1,5}")
_PREFIX = re.compile(r"[A-Z][0-9A-Z]{0,6}")


@dataclass(frozen=True)
class Icd10:
    code: str  # without the dot, as stored and sent on claims: E119
    dotted: str  # as printed: E11.9
    description: str
    billable: bool  # a leaf code, valid on a claim; categories and headers are not


class CacheError(Exception):
    """The cache file is missing, truncated or not in the expected layout."""


def normalize(code: str) -> str:
    """Strip spaces, drop the dot, upper-case: ' e11.9 ' -> 'E119'."""
    return "".join(str(code).split()).replace(".", "").upper()


def dotted(code: str) -> str:
    """The printed form: 'e119' -> 'E11.9' (codes of three characters have no dot)."""
    code = normalize(code)
    return f"{code[:3]}.{code[3:]}" if len(code) > 3 else code


# --- the cache file ---------------------------------------------------------------------------


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(PACKAGE)
    except PackageNotFoundError:  # pragma: no cover - a declared dependency
        raise CacheError(f"the {PACKAGE} package is not installed (pip install {PACKAGE})") from None


def cache_dir() -> Path:
    configured = os.environ.get("HPMS_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("hpms"))


def cache_path() -> Path:
    return cache_dir() / f"icd10cm-{package_version()}-f{FORMAT}.tsv.gz"


def _source_rows() -> Iterator[tuple[str, str, bool]]:
    """(code without dot, description, billable) for every category and subcategory of the
    release in the package (chapters and blocks are ranges, not codes)."""
    import warnings

    with warnings.catch_warnings():  # its use of importlib.resources' legacy API
        warnings.simplefilter("ignore", DeprecationWarning)
        import simple_icd_10_cm as icd  # the only import of it: seconds and ~190 MB

    for plain, with_dot in zip(icd.get_all_codes(with_dots=False), icd.get_all_codes(with_dots=True), strict=True):
        if icd.is_category_or_subcategory(with_dot):
            yield plain, icd.get_description(with_dot), icd.is_leaf(with_dot)


def _render() -> str:
    """The table as text: a header line, then `code<TAB>billable 0/1<TAB>description` lines
    sorted by code."""
    rows: dict[str, tuple[str, bool]] = {}
    for code, description, billable in _source_rows():
        rows.setdefault(normalize(code), (" ".join(description.split()), bool(billable)))
    lines = [f"{_MAGIC} {package_version()} format={FORMAT} rows={len(rows)}\n"]
    lines += [f"{code}\t{int(billable)}\t{desc}\n" for code, (desc, billable) in sorted(rows.items())]
    return "".join(lines)


def build_cache(path: Path | None = None) -> Path:
    """Write the table from the package to `path` (default: cache_path()) atomically."""
    path = path or cache_path()
    data = gzip.compress(_render().encode("utf-8"), compresslevel=6, mtime=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    from hpms.fileio import write_atomically

    write_atomically(path, data, field="HPMS_CACHE_DIR", mode=0o644)  # public data: a shared cache dir
    return path


class _Table:
    """The loaded table, kept compact: the decompressed text itself (one string), the sorted
    codes with an index, and where each description starts in the text."""

    __slots__ = ("text", "codes", "starts", "billable", "index", "_folded")

    def __init__(self, text: str, codes: list[str], starts: array, billable: bytearray) -> None:
        self.text = text
        self.codes = codes
        self.starts = starts
        self.billable = billable
        self.index = {c: i for i, c in enumerate(codes)}
        self._folded: str | None = None

    def description(self, i: int) -> str:
        start = self.starts[i]
        return self.text[start : self.text.index("\n", start)]

    def folded(self) -> str:
        """The text lower-cased, made on the first text search."""
        if self._folded is None:
            self._folded = self.text.lower()
        return self._folded

    def item(self, i: int) -> Icd10:
        code = self.codes[i]
        return Icd10(code=code, dotted=dotted(code), description=self.description(i), billable=bool(self.billable[i]))


_LINE = re.compile(r"^([A-Z0-9]+)\t([01])\t", re.M)


def _read(path: Path) -> _Table:
    try:
        with gzip.open(path, "rb") as fh:
            text = fh.read().decode("utf-8")
    except FileNotFoundError:
        raise CacheError(f"no cache file {path}") from None
    except (OSError, EOFError, UnicodeDecodeError, zlib.error) as exc:
        raise CacheError(f"{path}: unreadable ({exc})") from None
    return _parse(text, str(path))


def _parse(text: str, path: str) -> _Table:
    header_end = text.find("\n")
    match = re.fullmatch(rf"{_MAGIC} \S+ format={FORMAT} rows=(\d+)", text[: max(header_end, 0)])
    if not match:
        raise CacheError(f"{path}: not an hpms ICD-10-CM table")
    rows = int(match.group(1))
    codes: list[str] = []
    starts = array("L")
    billable = bytearray()
    for m in _LINE.finditer(text, header_end + 1):
        codes.append(m.group(1))
        billable.append(m.group(2) == "1")
        starts.append(m.end())
    if not (len(codes) == rows == text.count("\n") - 1) or not text.endswith("\n"):
        raise CacheError(f"{path}: {len(codes)} well-formed rows, the header says {rows}")
    return _Table(text, codes, starts, billable)


_table: _Table | None = None
_lock = threading.Lock()


def _build_locked(path: Path) -> None:
    """Build under an exclusive lock file so that concurrent first uses build only once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: atomic rename still keeps readers safe
        build_cache(path)
        return
    with open(path.parent / f".{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            _read(path)  # another process built it while this one waited
        except CacheError:
            build_cache(path)


def load() -> _Table:
    """The table, loaded once per process; built first when missing, rebuilt when corrupt."""
    global _table
    if _table is not None:
        return _table
    with _lock:
        if _table is None:
            path = cache_path()
            try:
                table = _read(path)
            except CacheError:
                try:
                    _build_locked(path)
                    table = _read(path)
                except OSError:  # no writable cache dir: build in memory, for this process only
                    table = _parse(_render(), "memory")
            _table = table
    return _table


def ensure_cache() -> Path:
    """Build the cache file now unless it is there and sound (for `hpms init`)."""
    load()
    return cache_path()


def reset() -> None:
    """Forget the loaded table (tests; after a package upgrade in a long-running process)."""
    global _table
    with _lock:
        _table = None


# --- lookups ----------------------------------------------------------------------------------


def lookup(code: str) -> Icd10 | None:
    """The code (dotted or not, any case), or None when ICD-10-CM has no such code."""
    key = normalize(code)
    if not _CODE.fullmatch(key):
        return None
    table = load()
    i = table.index.get(key)
    return None if i is None else table.item(i)


def looks_like_code(text: str) -> bool:
    """Whether `text` has the shape of an ICD-10-CM code or a prefix of one."""
    key = normalize(text)
    return bool(_PREFIX.fullmatch(key)) and (len(key) == 1 or key[1].isdigit())


def _prefixed(table: _Table, prefix: str) -> Iterator[int]:
    i = bisect.bisect_left(table.codes, prefix)
    while i < len(table.codes) and table.codes[i].startswith(prefix):
        yield i
        i += 1


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[^\w]+", text.lower()) if w]


def _matching(table: _Table, words: list[str]) -> Iterator[int]:
    """Rows (in code order) whose description has a word starting with each of `words`: the
    longest word is looked for in the whole text at once, the others in each candidate."""
    folded = table.folded()
    first = max(words, key=len)
    if first not in folded:
        return
    others = [re.compile(r"\b" + re.escape(w)) for w in words if w is not first]
    last = -1
    for m in re.finditer(r"\b" + re.escape(first), folded):
        i = bisect.bisect_right(table.starts, m.start()) - 1
        if i <= last or i < 0:
            continue
        start = table.starts[i]
        end = folded.index("\n", start)
        if m.start() >= end:  # in the code column of the next row
            continue
        last = i
        desc = folded[start:end]
        if all(p.search(desc) for p in others):
            yield i


def search(text: str, limit: int = 20) -> list[Icd10]:
    """Codes starting with `text` (dotted or not), then codes whose description has words
    starting with each word of `text`; case-insensitive, in code order, at most `limit`."""
    if limit <= 0 or not text.strip():
        return []
    table = load()
    found: list[int] = []
    seen: set[int] = set()

    def take(indexes: Iterable[int]) -> bool:
        for i in indexes:
            if i not in seen:
                seen.add(i)
                found.append(i)
                if len(found) >= limit:
                    return True
        return False

    if looks_like_code(text) and take(_prefixed(table, normalize(text))):
        return [table.item(i) for i in found]
    words = _words(text)
    codes = [w for w in words if len(w) > 1 and w[1].isdigit() and looks_like_code(w)]
    if len(codes) == 1 and len(words) > 1:  # "e11 kidney": words within a code's family
        patterns = [re.compile(r"\b" + re.escape(w)) for w in words if w != codes[0]]
        folded = table.folded()
        take(
            i
            for i in _prefixed(table, normalize(codes[0]))
            if all(p.search(folded, table.starts[i], folded.index("\n", table.starts[i])) for p in patterns)
        )
    elif words:
        take(_matching(table, words))
    return [table.item(i) for i in found]


def descendants(code: str, *, billable_only: bool = True, limit: int | None = None) -> list[Icd10]:
    """The more specific codes under `code` (billable ones only by default)."""
    table = load()
    key = normalize(code)
    out = []
    for i in _prefixed(table, key):
        if table.codes[i] == key or (billable_only and not table.billable[i]):
            continue
        out.append(table.item(i))
        if limit is not None and len(out) >= limit:
            break
    return out
