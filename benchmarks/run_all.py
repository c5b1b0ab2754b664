"""Every benchmark of this folder in one run, written to docs/performance.md.

Runs the scripts of BENCHMARKS one after another, each as a subprocess of the interpreter running
this script, on SQLite and, where the script takes a backend option, on PostgreSQL; captures what
each prints and writes the document (temp file + rename): the machine and the date, the load
average around each run, a summary of every judged line (a line with PASS or MISS), then each
benchmark's output in full. The section between KEPT_START and KEPT_END (the test suite's times)
is hand-kept: it is read from the document being replaced and written back unchanged.

    python benchmarks/run_all.py [--quick] [--only NAME,...] [-o PATH] [--postgres URL]

`--quick` runs every benchmark at small sizes to try the runner in minutes; its document
says so, and goes to a temp file unless `-o` is given: it is not the document of record.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import shlex
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
DOC = REPO / "docs" / "performance.md"
QUICK_DOC = Path(tempfile.gettempdir()) / "hpms-performance-quick.md"
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
KEPT_START = "<!-- run_all: kept section (written back unchanged by benchmarks/run_all.py) -->"
KEPT_END = "<!-- run_all: end of kept section -->"
BACKENDS = ("sqlite", "postgresql")
LIBRARIES = ("SQLAlchemy", "SQLModel", "Textual", "psycopg", "typer", "pydantic")


@dataclass(frozen=True)
class Benchmark:
    name: str  # the script is benchmarks/NAME.py
    title: str
    about: str  # what it measures and its bound, for the reader of the document
    quick: tuple[str, ...] | None = None  # small sizes through the script's own options; None: not in --quick
    full: tuple[str, ...] = ()  # options of the run of record beyond the script's defaults
    # none (no database option: run once), sqlite (SQLite only), url (--postgres URL selects
    # PostgreSQL), choice (--backend sqlite|postgresql, and --postgres URL)
    backends: str = "none"


BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark(
        "startup",
        "Start-up of the `hpms` command",
        "Each command in a fresh interpreter, round-robin, median wall and CPU time. The bound is "
        '`python -c "import typer"` measured in the same run: `hpms --help` <= 1.5x, each `hpms GROUP '
        "--help` <= 1.6x; a one-patient lookup under 600 ms, judged scaled to the reference machine "
        "(66 ms / import typer here).",
        quick=("--runs", "2"),
    ),
    Benchmark(
        "patients",
        "Patients: import and search",
        "CSV import of synthetic patients through the service in one transaction, against the same "
        "normalised rows loaded into an identical table (COPY on PostgreSQL, executemany on SQLite): "
        "<= 1.5x. Search by name prefix against the bare indexed prefix SELECT: <= 2x at every size and "
        "flat (largest / smallest <= 1.5x); the other keys <= 2 ms.",
        quick=("--rows", "2000", "--sizes", "1000,3000", "--queries", "20"),
        backends="url",
    ),
    Benchmark(
        "scheduling",
        "Scheduling: slot search, day sheet, booking",
        "50 providers and 1,000,000 appointments. find-slot < 30 ms and the busiest day sheet < 50 ms, "
        "scaled to the reference machine; booking >= 500/s scaled; one booking in its own transaction "
        "<= 4x the raw bound on the bare driver (BEGIN IMMEDIATE, overlap check, INSERT, COMMIT) measured "
        "interleaved in the same run, and <= 4.5 ms on PostgreSQL.",
        quick=("--appointments", "20000", "--patients", "1000", "--runs", "3", "--bookings", "30", "--batch", "50"),
        backends="choice",
    ),
    Benchmark(
        "billing",
        "Billing run",
        "`billing.run` end to end over signed encounters (claims, work list, 837P files) in a fresh "
        "process: claims/s scaled to the reference machine >= 5,000/s; the ratio to a bare loop writing "
        "the same segments with f-strings is printed; memory must not grow with the size.",
        quick=("--sizes", "1000", "--no-tracemalloc"),
        backends="choice",
    ),
    Benchmark(
        "tui",
        "The front-desk scheduler (`hpms tui`)",
        "A location of 40 providers x 30 visits a day over 1,000,000 appointments, headless and in a "
        "pty. First frame against a bare Textual app measured the same way; first paint of the day "
        "< 1 s, day switch median < 100 ms and p95 < 150 ms, scaled to the reference machine.",
        quick=(
            "--appointments",
            "20000",
            "--patients",
            "1000",
            "--first-runs",
            "1",
            "--cold-runs",
            "1",
            "--switches",
            "3",
            "--moves",
            "5",
            "--polls",
            "5",
        ),
        backends="sqlite",
    ),
    Benchmark(
        "remits",
        "Remittances (835 posting)",
        "Posting an 835 of 10,000 claims x 3 lines in a fresh process (parse, match, ledger, statuses, "
        "denials, audit): under 10 s; a second import posts nothing.",
        quick=("--claims", "500"),
        backends="choice",
    ),
    Benchmark(
        "fhir_import",
        "FHIR import",
        "A bulk export of 2,000 patients and 6,000 visits imported through `fhir_import.import_files`: "
        "<= 1.5x registering the same patients through `patients.register`; a second import <= 2x "
        "reading and validating the files alone.",
        quick=("--patients", "100"),
        backends="url",
    ),
    Benchmark(
        "fhir_export",
        "FHIR export",
        "NDJSON export of 200,000 appointments and 10,000 patients against raw rows written as flat JSON "
        "objects: <= 3x per object written; peak Python memory of the export < 100 MB.",
        quick=("--appointments", "5000", "--patients", "500", "--runs", "1"),
        backends="url",
    ),
    Benchmark(
        "reports",
        "Reports",
        "CSV of 1,000,000 appointment rows through `reports.run` + `export.write` against a raw cursor "
        "and csv.writer: <= 1.5x, peak Python memory < 100 MB; XLSX of 100,000 rows against openpyxl "
        "write-only: <= 1.2x; the KPI report over 3 years of money history under 2 s.",
        quick=("--appointments", "10000", "--patients", "500", "--xlsx-rows", "2000", "--kpi-claims", "3000"),
        backends="url",
    ),
    Benchmark(
        "messages",
        "The outbox sender (reminder emails)",
        "Reminder emails queued with `outbox.enqueue`, then sent by `sender.send_due` to an aiosmtpd "
        "server in its own process, alternating in rounds with a bare aiosmtplib loop sending the same "
        "messages without a database: the sender <= 2x the bound.",
        quick=("--messages", "200", "--rounds", "2"),
        backends="choice",
    ),
    Benchmark(
        "portal",
        "The patients' portal",
        "The portal's pages served through the application, against a bare response measured in the "
        "same run (see the script's docstring for its bounds).",
        backends="choice",
    ),
)


@dataclass
class Run:
    benchmark: Benchmark
    backend: str  # sqlite, postgresql, or "-" for a benchmark without a database option
    command: list[str]
    output: str = ""
    code: int | None = None  # None: not run
    seconds: float = 0.0
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    note: str = ""


@dataclass
class Judged:
    """One line a benchmark judged: what it measures, its figure, its bound, PASS or MISS."""

    measure: str
    figure: str
    bound: str
    verdict: str
    line: str = field(default="", compare=False)


# --- reading a benchmark's output -------------------------------------------------------------

VERDICT = re.compile(r"(?<![\w/])(PASS|MISS)(?![\w/])")
NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?(?:x|/s|%)?")
COMPARATOR = re.compile(r"(?:<=|>=|<|>)\s*[\d,.]+\s*(?:x|ms|s|MB|/s)?")
TARGET = re.compile(r"\btarget\b\s*(?:<=|>=|<|>)[^;]*")
GLUED = re.compile(r"(?<!\S)(\d\S*(?: [a-z]+)?) ((?:<=|>=|<|>) ?[\d,.]+ ?(?:x|ms|s|MB|/s)?)\s*$")
FIGURE_COLUMNS = ("scaled", "median ms", "median")  # the column a table judges, in this order


def _fields(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def _is_number(text: str) -> bool:
    return NUMBER.fullmatch(text.strip()) is not None


def _header_column(header: str, line: str) -> tuple[str, str] | None:
    """(column name, value) of the judged column of a table row, by position under its header."""
    for name in FIGURE_COLUMNS:
        at = re.search(rf"(?<!\S){re.escape(name)}(?!\S)", header)
        if at is None:
            continue
        best: tuple[int, str] | None = None
        for m in NUMBER.finditer(line):
            if m.start() == 0 or line[m.start() - 1] == " ":  # a whole number, not the end of a word
                distance = abs(m.end() - at.end())
                if best is None or distance < best[0]:
                    best = (distance, m.group())
        if best is not None and best[0] <= 3:
            return name, best[1]
    return None


def judge_line(line: str, header: str = "") -> Judged:
    """Split one judged line into measure, figure, bound and verdict, as printed.

    `header` is the table header above the line, if any: it names the column judged when the
    line has no figure of its own before its bound, and gives the bound of a table whose rows
    do not repeat it."""
    verdicts = list(VERDICT.finditer(line))
    body = line[: verdicts[-1].start()].strip()
    for backend in BACKENDS:  # a row that starts with its backend's name (the run says it)
        if body.startswith(backend + " "):
            body = body[len(backend) :].strip()
    first = _fields(body)[0] if body else ""
    measure, text = first, body[len(first) :].strip()
    label, _, tail = first.rpartition(": ")
    if label and tail and _is_number(tail.split()[0]):  # "name prefix at 300,000 / at 10,000: 0.72x"
        measure, text = label, f"{tail}  {text}".strip()
    inline = TARGET.search(measure)
    if inline:  # all on one line: "book one, own txn (PostgreSQL) median 2.94 ms, target <= 4.5 ms"
        text = f"{measure[inline.start() :]}  {text}".strip()
        measure = measure[: inline.start()].rstrip(" ,;")
        split = re.match(r"^(.*?)\s+((?:[a-z]+ )?\d[\d,.]*(?:\s*\S+)?)$", measure)
        if split:
            measure, text = split.group(1), f"{split.group(2)}  {text}"

    figure = bound = ""
    target = TARGET.search(text)
    glued = GLUED.search(text)
    if target:
        bound = target.group()
        figure = text[: target.start()].strip().rstrip(",;")
        if len(figure) > 40 and ": " in figure:
            figure = figure.rsplit(": ", 1)[1]
    elif glued:
        figure, bound = glued.group(1), glued.group(2)
    else:
        comparator = COMPARATOR.search(text)
        if comparator is not None:  # the rest of the line: "< 100 ms, p95 < 150"
            bound = text[comparator.start() :]
            text = text[: comparator.start()].strip()
        column = _header_column(header, line) if header else None
        number = NUMBER.search(text)
        figure = f"{column[1]} ({column[0]})" if column else number.group() if number else text
        if not bound and header:
            in_header = TARGET.search(header)
            bound = in_header.group() if in_header else ""
    words = re.match(r"^([A-Za-z][^\d(]*?)\s+(\d.*)$", figure)
    if words:  # "ratio" + "sender / bound 1.34x": the words belong to what is measured
        measure, figure = f"{measure} {words.group(1)}", words.group(2)
    if _is_number(measure) and header:  # a row of numbers: its first column names it
        measure = f"{_fields(header)[0]} {measure}"
    return Judged(
        measure=" ".join(measure.split()),
        figure=" ".join(figure.split()),
        bound=" ".join(bound.split()).rstrip(",;:"),
        verdict=verdicts[-1].group(),
        line=line.rstrip(),
    )


def _is_header(line: str) -> bool:
    """A table's header: three columns or more, none of them a number, one a column judged."""
    fields = _fields(line)
    return (
        len(fields) >= 3
        and not any(_is_number(f) for f in fields)
        and any(f in FIGURE_COLUMNS or f.startswith("target") for f in fields)
    )


def judged_lines(output: str) -> list[Judged]:
    """Every line of a benchmark's output that says PASS or MISS, read by judge_line."""
    found: list[Judged] = []
    header = ""
    for line in output.splitlines():
        if VERDICT.search(line):
            found.append(judge_line(line, header))
        elif not line.strip():
            header = ""
        elif _is_header(line):
            header = line
    return found


# --- the kept section ---------------------------------------------------------------------------

DEFAULT_KEPT = f"""{KEPT_START}
## Test suite time

The whole suite (`pytest -n 2`, both backends, the browser tests included) on this 2-core machine,
pytest's own time of a clean-clone `.ci/run`:

- before: 16-21 minutes;
- after (2026-12-07): 302 s for 4,560 tests with `pytest -n 2`.
{KEPT_END}"""


def kept_section(text: str | None) -> str:
    """The hand-kept section of a document, markers included, or the default when it has none."""
    if text and KEPT_START in text and KEPT_END in text.split(KEPT_START, 1)[1]:
        body = text.split(KEPT_START, 1)[1].split(KEPT_END, 1)[0]
        return f"{KEPT_START}{body}{KEPT_END}"
    return DEFAULT_KEPT


# --- the machine --------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def postgres_version(url: str) -> str | None:
    """The server's version, or None when it cannot be reached."""
    try:
        import sqlalchemy as sa

        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                return str(conn.exec_driver_sql("SHOW server_version").scalar())
        finally:
            engine.dispose()
    except Exception:
        return None


def machine(pg: str | None) -> list[tuple[str, str]]:
    libraries = []
    for name in LIBRARIES:
        try:
            libraries.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            libraries.append(f"{name} (not installed)")
    return [
        ("CPUs (nproc)", f"{len(os.sched_getaffinity(0))} of {os.cpu_count()}"),
        ("CPU", _cpu_model()),
        ("memory", _memory()),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", f"{platform.python_version()} ({sys.executable})"),
        ("SQLite", sqlite3.sqlite_version),
        ("PostgreSQL", pg or "not reachable: its runs were skipped"),
        ("libraries", ", ".join(libraries)),
    ]


# --- running ------------------------------------------------------------------------------------


def plan(names: list[str], quick: bool, postgres: str, pg_up: bool) -> list[Run]:
    runs = []
    for b in BENCHMARKS:
        if b.name not in names:
            continue
        script = HERE / f"{b.name}.py"
        if not script.exists():
            runs.append(Run(b, "-", [], note=f"benchmarks/{b.name}.py does not exist"))
            continue
        if quick and b.quick is None:
            runs.append(Run(b, "-", [], note="no quick sizes are set for it in run_all.py"))
            continue
        base = [sys.executable, str(script.relative_to(REPO)), *((b.quick or ()) if quick else b.full)]
        if b.backends in ("none", "sqlite"):
            variants = [("-" if b.backends == "none" else "sqlite", base)]
        elif b.backends == "url":
            variants = [("sqlite", base), ("postgresql", [*base, "--postgres", postgres])]
        else:
            variants = [
                ("sqlite", [*base, "--backend", "sqlite"]),
                ("postgresql", [*base, "--backend", "postgresql", "--postgres", postgres]),
            ]
        for backend, command in variants:
            run = Run(b, backend, command)
            if backend == "postgresql" and not pg_up:
                run.note = f"PostgreSQL not reachable at {postgres}"
            runs.append(run)
    return runs


def execute(run: Run) -> None:
    """Run one benchmark, echoing its output to stderr as it comes and keeping it."""
    print(f"run_all: {shlex.join(run.command)}", file=sys.stderr, flush=True)
    run.load_before = os.getloadavg()
    t0 = time.perf_counter()
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        run.command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        sys.stderr.write(line)
        lines.append(line)
    run.code = proc.wait()
    run.seconds = time.perf_counter() - t0
    run.load_after = os.getloadavg()
    run.output = "".join(lines)


# --- writing ------------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ") or " "


def _load(load: tuple[float, float, float]) -> str:
    return " / ".join(f"{x:.2f}" for x in load)


def render(
    runs: list[Run],
    *,
    quick: bool,
    command: str,
    started: dt.datetime,
    machine_rows: list[tuple[str, str]],
    kept: str,
) -> str:
    out: list[str] = ["# Performance", ""]
    if quick:
        out += [
            "**QUICK RUN: every benchmark at small sizes (`--quick`), to try the runner. These figures "
            "are not the ones of record: do not commit this file as docs/performance.md.**",
            "",
        ]
    out += [
        "What hpms measures of itself on large synthetic data, regenerated from one run of every script "
        "of `benchmarks/` (see `benchmarks/README.md`) by `benchmarks/run_all.py`. Each target is a "
        "ratio to a bound measured in the same run, or a figure scaled to the reference machine of "
        "`../shared/PERFORMANCE.md`; every line a benchmark judged is in the summary with the figure "
        "and the bound as it printed them. Only the section between the run_all markers at the end is "
        "kept by hand.",
        "",
        f"Run of {started:%Y-%m-%d %H:%M} UTC, {sum(r.seconds for r in runs) / 60:.1f} minutes of benchmarks.",
        "",
        "| machine | |",
        "|---|---|",
        *(f"| {k} | {_cell(v)} |" for k, v in machine_rows),
        "",
        "The command:",
        "",
        "<!-- docs-test: skip (runs every benchmark, many minutes) -->",
        "```sh",
        command,
        "```",
        "",
        "Each run, with the load average (1, 5 and 15 minutes) before and after it:",
        "",
        "| benchmark | backend | seconds | load before | load after | result |",
        "|---|---|---|---|---|---|",
    ]
    for r in runs:
        if r.code is None:
            out.append(f"| {r.benchmark.name} | {r.backend} | | | | skipped: {_cell(r.note)} |")
        else:
            result = "ok" if r.code == 0 else f"failed (exit {r.code})"
            out.append(
                f"| {r.benchmark.name} | {r.backend} | {r.seconds:.0f} | {_load(r.load_before)} | "
                f"{_load(r.load_after)} | {result} |"
            )
    judged = [(r, j) for r in runs for j in judged_lines(r.output)]
    passed = sum(j.verdict == "PASS" for _, j in judged)
    failed = [r for r in runs if r.code not in (None, 0)]
    out += [
        "",
        "## Summary",
        "",
        f"{passed} PASS, {len(judged) - passed} MISS"
        + (
            f"; {len(failed)} run(s) failed: {', '.join(f'{r.benchmark.name} ({r.backend})' for r in failed)}"
            if failed
            else ""
        )
        + ".",
        "",
        "| benchmark | backend | measure | figure | bound | |",
        "|---|---|---|---|---|---|",
    ]
    for r, j in judged:
        out.append(
            f"| {r.benchmark.name} | {r.backend} | {_cell(j.measure)} | {_cell(j.figure)} | {_cell(j.bound)} "
            f"| {j.verdict} |"
        )
    for b in dict.fromkeys(r.benchmark for r in runs):
        out += ["", f"## {b.title}", "", b.about]
        for r in (r for r in runs if r.benchmark == b):
            out += ["", f"### {b.name}, {r.backend}" if r.backend != "-" else f"### {b.name}", ""]
            if r.code is None:
                out.append(f"Skipped: {r.note}.")
                continue
            out += [
                f"`{shlex.join(['python', *r.command[1:]])}`: {r.seconds:.0f} s, load average "
                f"{r.load_before[0]:.2f} before, {r.load_after[0]:.2f} after"
                + (f"; **failed with exit code {r.code}**" if r.code else "")
                + ".",
                "",
                "```text",
                r.output.rstrip("\n").replace("```", "'''"),
                "```",
            ]
    out += ["", kept, ""]
    return "\n".join(out)


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, to try the runner (not the doc of record)")
    parser.add_argument(
        "--only", metavar="NAME,...", help="only these benchmarks: " + ", ".join(b.name for b in BENCHMARKS)
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        help=f"document to write (default {DOC.relative_to(REPO)}; with --quick {QUICK_DOC})",
    )
    parser.add_argument(
        "--postgres", metavar="URL", default=DEFAULT_POSTGRES, help="PostgreSQL server (default %(default)s)"
    )
    args = parser.parse_args(argv)
    known = [b.name for b in BENCHMARKS]
    names = known
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in known]
        if unknown:
            parser.error(f"--only: no benchmark {', '.join(unknown)} (known: {', '.join(known)})")
    output: Path = args.output or (QUICK_DOC if args.quick else DOC)
    # The kept section comes from the document being replaced; a quick run's scratch file is
    # no such document, so it takes the one of docs/performance.md.
    sources = [DOC] if args.quick else [output, DOC]
    kept = kept_section(next((t for t in map(_read, sources) if t and KEPT_START in t), None))
    started = dt.datetime.now(dt.UTC)
    pg = postgres_version(args.postgres)
    machine_rows = machine(pg)
    command = shlex.join(["python", "benchmarks/run_all.py", *(sys.argv[1:] if argv is None else argv)])
    runs = plan(names, args.quick, args.postgres, pg is not None)
    for r in runs:
        if r.note:
            print(f"run_all: {r.benchmark.name} ({r.backend}) skipped: {r.note}", file=sys.stderr, flush=True)
        else:
            execute(r)
    text = render(runs, quick=args.quick, command=command, started=started, machine_rows=machine_rows, kept=kept)
    write_atomically(output, text)
    judged = [j for r in runs for j in judged_lines(r.output)]
    passed = sum(j.verdict == "PASS" for j in judged)
    print(
        f"run_all: {output}: {len(runs)} run(s) in {sum(r.seconds for r in runs) / 60:.1f} min, "
        f"{passed} PASS, {len(judged) - passed} MISS",
        file=sys.stderr,
    )
    return 1 if any(r.code not in (None, 0) for r in runs) else 0


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.exists() else None


if __name__ == "__main__":
    sys.exit(main())
