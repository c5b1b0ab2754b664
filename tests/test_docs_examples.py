"""The guides run as written: every shell example in docs/*.md runs, in order, against a fresh
copy of the demo clinic (one demo build for the whole test run), and no command in it fails
unless the example shows its exit code (`echo $?` on the next line).

A block that cannot run here says so just above its fence, with the reason:

    <!-- docs-test: skip (installs packages) -->

The script runs in a directory of its own holding a copy of examples/, which is also its HOME;
paths the guides write to (/tmp/..., /var/spool/hpms/..., /srv/...) are taken under it. `hpms`
in the script is the real command line run inside the test's process (a small client on the
script's PATH hands it its arguments, environment, directory and input over a UNIX socket):
the same commands, without a Python start-up for each of the guides' few hundred lines."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO, demo_env

DOCS = REPO / "docs"
GENERATED = {"cli-reference.md"}  # the generated reference quotes every command's own example
FENCE = re.compile(r"^```(sh|bash|console)\s*$")
SKIP = re.compile(r"<!--\s*docs-test:\s*skip\s*\((?P<why>[^)]+)\)\s*-->")
SCRATCH = ("/tmp/", "/var/spool/hpms/", "/srv/", "/var/backups/hpms/")
ERR = "__docs_test_err"
WHOLLY_SKIPPED = {  # guides none of whose examples can run here, and why
    "performance.md": "its examples are benchmarks of several minutes each",
    "tui.md": "its examples open the full-screen scheduler, which tests/tui drive with Pilot",
}


@dataclass
class Block:
    line: int  # of the first command line in the guide
    text: str
    skip: str | None


def blocks(path: Path) -> list[Block]:
    """The guide's shell blocks with the line their body starts at, and the skip reason if any."""
    out: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        if FENCE.match(lines[i]):
            before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
            why = SKIP.search(before)
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            out.append(Block(i + 2, "\n".join(lines[i + 1 : j]), why.group("why") if why else None))
            i = j
        i += 1
    return out


def guides() -> list[Path]:
    return [p for p in sorted(DOCS.glob("*.md")) if p.name not in GENERATED and blocks(p)]


def test_every_guide_with_shell_examples_is_run():
    """A skip says why; no guide is left out wholesale."""
    for path in guides():
        for b in blocks(path):
            assert b.skip is None or len(b.skip.strip()) > 5, f"{path.name}:{b.line}: a skip without a reason"
        assert any(b.skip is None for b in blocks(path)) or path.name in WHOLLY_SKIPPED, (
            f"{path.name}: every example is skipped"
        )


CLIENT = """\
import base64, json, os, socket, sys
stdin = b"" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.buffer.read()
env = {k: v for k, v in os.environ.items() if k.startswith("HPMS_")}
ask = {"argv": sys.argv[1:], "env": env, "cwd": os.getcwd(), "stdin": base64.b64encode(stdin).decode()}
s = socket.socket(socket.AF_UNIX)
s.connect(os.environ["DOCS_TEST_SOCKET"])
s.sendall(json.dumps(ask).encode() + b"\\n")
answer = json.loads(s.makefile("rb").readline())
sys.stdout.buffer.write(base64.b64decode(answer["out"]))
sys.stderr.buffer.write(base64.b64decode(answer["err"]))
sys.exit(answer["code"])
"""


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        from typer.testing import CliRunner

        from hpms.cli import app

        ask = json.loads(self.rfile.readline())
        env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("HPMS_")}
        env.update(ask["env"])
        here = os.getcwd()
        os.chdir(ask["cwd"])
        try:
            r = CliRunner().invoke(app, ask["argv"], env=env, input=base64.b64decode(ask["stdin"]))
        finally:
            os.chdir(here)
        code = r.exit_code if r.exception is None or isinstance(r.exception, SystemExit) else 1
        err = r.stderr_bytes or b""
        if code == 1 and r.exception is not None and not isinstance(r.exception, SystemExit):
            err += f"internal: {r.exception!r}\n".encode()
        answer = {"code": code, "out": base64.b64encode(r.stdout_bytes).decode(), "err": base64.b64encode(err).decode()}
        self.wfile.write(json.dumps(answer).encode() + b"\n")


@contextlib.contextmanager
def in_process_hpms(work: Path) -> Iterator[Path]:
    """A bin directory whose `hpms` runs the command line in this process; serving while open."""
    from hpms.db import dispose_engines

    sock = work / ".hpms.sock"
    server = socketserver.UnixStreamServer(str(sock), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    bin_dir = work / ".bin"
    bin_dir.mkdir()
    client = bin_dir / "hpms"
    client.write_text(f"#!{sys.executable} -SE\n{CLIENT}", encoding="utf-8")
    client.chmod(0o755)
    try:
        yield bin_dir
    finally:
        server.shutdown()
        server.server_close()
        dispose_engines()


def script(path: Path, work: Path) -> tuple[str, dict[int, int]]:
    """The guide's runnable blocks as one bash script, and script line -> guide line."""
    lines = ["set -o pipefail", f"trap 'echo \"{ERR} $LINENO $?\" >&2' ERR"]
    where: dict[int, int] = {}
    for b in blocks(path):
        if b.skip:
            continue
        text = b.text
        for prefix in SCRATCH:
            text = text.replace(prefix, f"{work}{prefix}")
        for k, line in enumerate(text.splitlines()):
            lines.append(line)
            where[len(lines)] = b.line + k
    return "\n".join(lines) + "\n", where


@pytest.mark.parametrize("guide", [p.name for p in guides()])
def test_the_guide_runs_on_the_demo_clinic(guide, demo_template, tmp_path):
    path = DOCS / guide
    home = tmp_path / "home"
    shutil.copytree(demo_template, home)
    work = tmp_path / "work"
    shutil.copytree(REPO / "examples", work / "examples")
    for prefix in SCRATCH:
        (work / prefix.strip("/")).mkdir(parents=True, exist_ok=True)
    text, where = script(path, work)
    env = demo_env(home) | {"HOME": str(work), "DOCS_TEST_SOCKET": str(work / ".hpms.sock")}
    with in_process_hpms(work) as bin_dir:
        env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
        proc = subprocess.run(
            ["bash", "-c", text],
            env=env,
            cwd=work,
            capture_output=True,
            text=True,
            timeout=600,
            stdin=subprocess.DEVNULL,
        )
    guide_lines = path.read_text(encoding="utf-8").splitlines()
    failures = []
    for m in re.finditer(rf"^{ERR} (\d+) (\d+)$", proc.stderr, re.M):
        line = where.get(int(m.group(1)))
        if line is None:
            continue
        shown = " ".join(guide_lines[line - 1 : line + 1])  # the command or the line after it shows its code
        if "echo $?" in shown:
            continue
        failures.append(f"{guide}:{line}: exit {m.group(2)}: {guide_lines[line - 1].strip()}")
    context = "\n".join(ln for ln in proc.stderr.splitlines() if not ln.startswith(ERR))[-3000:]
    assert not failures, "\n".join(failures) + "\n--- stderr ---\n" + context
