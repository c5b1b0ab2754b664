"""On a terminal, registering a likely duplicate lists the patient on file and asks; "n"
cancels (a usage exit, nothing written), "y" registers all the same."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time

from tests.cli.conftest import subprocess_env
from tests.conftest import REPO

TIMEOUT = 60  # seconds for the whole run; a hang fails instead of blocking
QUESTION = "Register a new patient all the same? [y/N]:"


class Terminal:
    """`python -m hpms ARGS` with stdin, stdout and stderr on one pseudo-terminal."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.master, slave = os.openpty()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hpms", *args],
                env=env,
                cwd=REPO,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                close_fds=True,
            )
        finally:
            os.close(slave)
        self.deadline = time.monotonic() + TIMEOUT
        self.seen = ""

    def _read(self) -> bool:
        """Read what is there (waiting up to the deadline); False at end of output."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out after {TIMEOUT} s; the terminal showed:\n{self.seen}")
        ready, _, _ = select.select([self.master], [], [], min(left, 0.5))
        if not ready:
            return True
        try:
            data = os.read(self.master, 4096)
        except OSError:  # EIO: the child closed its side
            return False
        if not data:
            return False
        self.seen += data.decode("utf-8", "replace").replace("\r\n", "\n")
        return True

    def expect(self, text: str) -> None:
        while text not in self.seen:
            if not self._read():
                raise AssertionError(f"the output ended without {text!r}:\n{self.seen}")

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())

    def finish(self) -> int:
        """Read to the end of the output; the exit code."""
        while self._read():
            pass
        try:
            return self.proc.wait(timeout=max(self.deadline - time.monotonic(), 1))
        finally:
            os.close(self.master)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _run(settings, answer: str) -> tuple[int, str]:
    env = subprocess_env(settings.home, None if settings.is_sqlite else settings.database_url, TERM="dumb")
    args = ["patients", "register", "--first-name", "Anna", "--last-name", "Muller", "--dob", "1985-03-14"]
    term = Terminal(args, env)
    try:
        term.expect(QUESTION)
        shown = term.seen
        term.send(answer + "\n")
        return term.finish(), shown + "\n--- after the answer ---\n" + term.seen[len(shown) :]
    finally:
        term.kill()


def _candidate_shown(out: str, mrn: str) -> None:
    assert "likely the same person as:" in out
    assert f"MRN {mrn}  Müller, Ana  born 1985-03-14  555-201-3344  (same date of birth, similar name)" in out


def test_no_cancels_and_nothing_is_written(settings, patient, counts):
    before = counts("patient")
    code, out = _run(settings, "n")
    _candidate_shown(out, patient)
    after = out.split("--- after the answer ---", 1)[1]
    assert code == 2, out
    assert "cancelled" in after
    assert "registered" not in after
    assert counts("patient") == before


def test_yes_registers_one_patient(settings, patient, counts, raw_sql):
    before = counts("patient")
    code, out = _run(settings, "y")
    _candidate_shown(out, patient)
    assert code == 0, out
    assert counts("patient") == {k: n + 1 for k, n in before.items()}
    [(mrn,)] = raw_sql("SELECT mrn FROM patient WHERE first_name = 'Anna' AND last_name = 'Muller'")
    assert mrn != patient
    assert f"registered Anna Muller as MRN {mrn}" in out.split("--- after the answer ---", 1)[1]
