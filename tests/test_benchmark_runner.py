"""benchmarks/run_all.py reads what the benchmarks print and keeps the hand-kept section of
docs/performance.md; checked here on printed output kept as text, without running a benchmark."""

from __future__ import annotations

import datetime as dt
import importlib.util
import sys
from pathlib import Path

import pytest

from tests.test_docs_examples import blocks

REPO = Path(__file__).resolve().parent.parent

# Lines as the benchmarks print them (startup, patients, scheduling, billing, messages, remits).
SAMPLE = """\
hpms start-up: 9 runs of each command, round-robin, median; python 3.11.7, 2 CPUs, load average 3.4 -> 3.6
targets (ratios from wall times; CPU-time ratios in brackets):
  hpms --help                     1.03x import typer (1.05x)   target <= 1.5x   PASS
  one-patient lookup, scaled      1044 ms (725 ms CPU) = here x 66 ms / typer here   target < 600 ms   MISS
  import / bound  2.69x   target <= 1.5x   MISS
  search at 10,000         median ms   p95 ms  txn ms   rows   target
  raw prefix SELECT             0.20                           (the bound)
  name prefix ('kow')           1.12     5.23    1.50   49.7    5.69x raw <= 2x   MISS
  DOB ('1933-05-12')            0.37     2.48    0.72    1.3   <= 2 ms            PASS
  name prefix at 300,000 / at 10,000: 1.09x   target <= 1.5x (flat)   PASS

  operation                       median ms  p95 ms  txn ms stmts   scaled   target  verdict
  find-slot normal count=1             1.28    1.39    1.77    13     1.62  < 30 ms  PASS  1 slot(s)
  book, own txn x300                   1.31                    12     806/s >= 500/s  PASS  765/s here
  book one, own txn vs raw bound  median 1.068 ms (12 statements) vs 0.189 ms (bare driver): 5.7x, target <= 4x  MISS
  book one, own txn (PostgreSQL) median 2.94 ms, target <= 4.5 ms  PASS

  encounters   claims      s  claims/s   scaled    bare/s  ratio  MB out  RSS MB   +MB tracemalloc MB  target >= 5,000/s
      20,000   19,851    2.5     7,794    5,442   229,035  0.034     8.6     122    56           30.4  PASS
  sqlite     ratio    sender / bound 1.34x   target <= 2x   PASS
  measure                                        median ms   p95 ms   scaled     target  verdict
  day switch `]`, pilot.press -> drawn (x3)          288.3    301.2     69.0  < 100 ms, p95 < 150  PASS
  postgresql posting 10,000 claims    8.74 s   target < 10 s   MISS
Target: the sender within 2x the bound (PASS/MISS).
"""


@pytest.fixture(scope="module")
def run_all():
    spec = importlib.util.spec_from_file_location("run_all", REPO / "benchmarks" / "run_all.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_all"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    yield module
    del sys.modules["run_all"]


def test_every_judged_line_is_read_with_its_figure_and_bound(run_all):
    got = [(j.measure, j.figure, j.bound, j.verdict) for j in run_all.judged_lines(SAMPLE)]
    assert got == [
        ("hpms --help", "1.03x import typer (1.05x)", "target <= 1.5x", "PASS"),
        (
            "one-patient lookup, scaled",
            "1044 ms (725 ms CPU) = here x 66 ms / typer here",
            "target < 600 ms",
            "MISS",
        ),
        ("import / bound", "2.69x", "target <= 1.5x", "MISS"),
        ("name prefix ('kow')", "5.69x raw", "<= 2x", "MISS"),
        ("DOB ('1933-05-12')", "0.37 (median ms)", "<= 2 ms", "PASS"),
        ("name prefix at 300,000 / at 10,000", "1.09x", "target <= 1.5x (flat)", "PASS"),
        ("find-slot normal count=1", "1.62 (scaled)", "< 30 ms", "PASS"),
        ("book, own txn x300", "806/s", ">= 500/s", "PASS"),
        ("book one, own txn vs raw bound", "5.7x", "target <= 4x", "MISS"),
        ("book one, own txn (PostgreSQL) median", "2.94 ms", "target <= 4.5 ms", "PASS"),
        ("encounters 20,000", "5,442 (scaled)", "target >= 5,000/s", "PASS"),
        ("ratio sender / bound", "1.34x", "target <= 2x", "PASS"),
        ("day switch `]`, pilot.press -> drawn (x3)", "69.0 (scaled)", "< 100 ms, p95 < 150", "PASS"),
        ("posting 10,000 claims", "8.74 s", "target < 10 s", "MISS"),
    ]


def _render(run_all, output: str, kept: str) -> str:
    bench = run_all.Benchmark("demo", "A demo", "What it measures.")
    run = run_all.Run(bench, "sqlite", ["python", "benchmarks/demo.py"], output=output, code=0, seconds=1.0)
    return run_all.render(
        [run],
        quick=True,
        command="python benchmarks/run_all.py --quick",
        started=dt.datetime(2026, 12, 7, tzinfo=dt.UTC),
        machine_rows=[("CPUs (nproc)", "2 of 2")],
        kept=kept,
    )


def test_the_summary_counts_and_the_output_is_kept_whole(run_all):
    text = _render(run_all, SAMPLE, run_all.DEFAULT_KEPT)
    assert "9 PASS, 5 MISS." in text
    assert "| demo | sqlite | import / bound | 2.69x | target <= 1.5x | MISS |" in text
    assert "QUICK RUN" in text
    assert SAMPLE.rstrip("\n") in text  # the full output, in its fenced block


def test_the_kept_section_survives_a_regeneration(run_all, tmp_path):
    kept = (
        f"{run_all.KEPT_START}\n## Test suite time\n\nWritten by hand | with a pipe, kept as it is.\n{run_all.KEPT_END}"
    )
    before = f"# Performance\n\nold figures\n\n{kept}\n\nafter it\n"
    assert run_all.kept_section(before) == kept
    path = tmp_path / "performance.md"
    run_all.write_atomically(path, _render(run_all, SAMPLE, run_all.kept_section(before)))
    again = path.read_text(encoding="utf-8")
    assert run_all.kept_section(again) == kept
    assert "old figures" not in again
    assert [p.name for p in tmp_path.iterdir()] == ["performance.md"]  # no temp file left behind
    assert run_all.kept_section("# Performance\n\nno markers\n") == run_all.DEFAULT_KEPT
    # The guides' test runs shell blocks: the only one here, the command, says why it is skipped.
    shell = blocks(path)
    assert len(shell) == 1 and shell[0].skip


def test_the_document_of_record_holds_the_kept_section(run_all):
    text = (REPO / "docs" / "performance.md").read_text(encoding="utf-8")
    kept = run_all.kept_section(text)
    assert kept != run_all.DEFAULT_KEPT
    assert "## Test suite time" in kept and "302 s" in kept and "4,560" in kept
