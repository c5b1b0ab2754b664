"""Cold-start times of the `hpms` command, as ratios to `python -c "import typer"`.

Every run is a fresh interpreter (a subprocess), so each figure includes interpreter start-up
and every import the command needs. Commands are measured round-robin (one run of each, then
the next round) so that machine noise spreads evenly; the figures printed are medians of the
wall-clock time and of the child's CPU time (user + system), which moves less on a busy machine.

Targets: `hpms --help` within 1.5x of importing typer (the root help is written from the
command list kept in hpms/cli.py, no command module imported); `hpms GROUP --help` within 1.6x
for each group measured (patients, billing, appointments, reports); `hpms patients show MRN`
under 0.6 s cold on the reference machine, where importing typer takes 66 ms
(../shared/PERFORMANCE.md).
The lookup is also printed scaled by (66 ms / import typer measured here), so a slower machine
is judged fairly.

    python benchmarks/startup.py [--runs 7] [--imports 15]

`--imports N` also prints the N packages that cost most to import in `hpms patients show`
(from `python -X importtime`), to see where the start-up time goes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REFERENCE_IMPORT_TYPER_MS = 66.0
ROOT_HELP_RATIO_TARGET = 1.5
GROUP_HELP_RATIO_TARGET = 1.6
HELP_GROUPS = ("patients", "billing", "appointments", "reports")
LOOKUP_TARGET_MS = 600.0

MINIMAL_TYPER_APP = '''\
import typer

app = typer.Typer(rich_markup_mode=None)


@app.command()
def hello(name: str = "world") -> None:
    """Say hello."""
    typer.echo(f"hello {name}")


@app.command()
def bye() -> None:
    """Say goodbye."""
    typer.echo("bye")


if __name__ == "__main__":
    app()
'''


def hpms_command() -> list[str]:
    """The installed console script next to this interpreter, else `python -m hpms`."""
    script = Path(sys.executable).with_name("hpms")
    if script.exists():
        return [str(script)]
    found = shutil.which("hpms")
    return [found] if found else [sys.executable, "-m", "hpms"]


def clean_env(home: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPMS_")}
    env.pop("PYTHONSTARTUP", None)
    if home is not None:
        env["HPMS_HOME"] = str(home)
    return env


def run_once(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall ms, CPU ms) of one run; fails loudly when the command fails. CPU time (user + system
    of the child) hardly moves when other processes compete for the CPUs; wall time does."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = (time.perf_counter() - t0) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr.decode(errors='replace')}")
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000
    return elapsed, cpu


def build_demo(home: Path, env: dict[str, str]) -> str:
    """A 50-patient demo clinic in `home`; returns the MRN of one patient."""
    hpms = hpms_command()
    proc = subprocess.run(
        [*hpms, "demo", "--home", str(home), "--patients", "50"], env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        sys.exit(f"hpms demo failed ({proc.returncode}):\n{proc.stderr}")
    proc = subprocess.run(
        [*hpms, "patients", "list", "--limit", "1", "--json"], env=clean_env(home), capture_output=True, text=True
    )
    if proc.returncode != 0:
        sys.exit(f"hpms patients list failed ({proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout)[0]["mrn"]


def import_profile(cmd: list[str], env: dict[str, str], top: int) -> tuple[float, float, list[tuple[str, float, int]]]:
    """One run under `python -X importtime`: (wall ms of the run, total import ms, top packages
    as (package, ms, modules)). Packages are summed from *self* times, which add up (cumulative
    times nest); `hpms.models` is shown apart because its time is SQLModel building the tables."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *cmd],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    wall = (time.perf_counter() - t0) * 1000
    per_pkg: dict[str, list] = {}
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _cumulative, name = line.split(":", 1)[1].split("|")
        name = name.strip()
        pkg = "hpms.models" if name.startswith("hpms.models") else name.split(".")[0]
        entry = per_pkg.setdefault(pkg, [0.0, 0])
        entry[0] += int(self_us) / 1000
        entry[1] += 1
    total = sum(ms for ms, _ in per_pkg.values())
    ranked = sorted(per_pkg.items(), key=lambda kv: -kv[1][0])
    return wall, total, [(pkg, ms, n) for pkg, (ms, n) in ranked[:top]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per command (median is printed)")
    parser.add_argument(
        "--imports",
        type=int,
        default=0,
        metavar="N",
        help="also print the N packages costing most to import in `hpms patients show`",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="hpms-startup-") as tmp:
        tmpdir = Path(tmp)
        home = tmpdir / "demo"
        app_file = tmpdir / "minimal_typer_app.py"
        app_file.write_text(MINIMAL_TYPER_APP)
        env = clean_env(tmpdir / "unused-home")
        mrn = build_demo(home, clean_env())
        demo_env = clean_env(home)
        hpms = hpms_command()
        py = sys.executable
        cases = [
            ("python -c pass", [py, "-c", "pass"], env),
            ("import typer", [py, "-c", "import typer"], env),
            ("minimal Typer app --help", [py, str(app_file), "--help"], env),
            ("hpms --help", [*hpms, "--help"], env),
            *((f"hpms {group} --help", [*hpms, group, "--help"], env) for group in HELP_GROUPS),
            (f"hpms patients show {mrn}", [*hpms, "patients", "show", mrn], demo_env),
        ]
        for _, cmd, cenv in cases:  # warm the file cache; not counted
            run_once(cmd, cenv)
        load_before = os.getloadavg()[0]
        walls: dict[str, list[float]] = {name: [] for name, _, _ in cases}
        cpus: dict[str, list[float]] = {name: [] for name, _, _ in cases}
        for _ in range(args.runs):
            for name, cmd, cenv in cases:
                wall, cpu = run_once(cmd, cenv)
                walls[name].append(wall)
                cpus[name].append(cpu)
        load_after = os.getloadavg()[0]
        profile = import_profile([*hpms, "patients", "show", mrn], demo_env, args.imports) if args.imports else None

    med = {name: statistics.median(ts) for name, ts in walls.items()}
    cpu = {name: statistics.median(ts) for name, ts in cpus.items()}
    typer_ms, typer_cpu = med["import typer"], cpu["import typer"]
    print(
        f"hpms start-up: {args.runs} runs of each command, round-robin, median; python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs, load average {load_before:.1f} -> {load_after:.1f}"
    )
    print(f"{'command':30} {'wall ms':>8} {'(min)':>7} {'x typer':>8}   {'CPU ms':>7} {'x typer':>8}")
    for name in walls:
        print(
            f"{name:30} {med[name]:8.0f} {min(walls[name]):7.0f} {med[name] / typer_ms:8.2f}   "
            f"{cpu[name]:7.0f} {cpu[name] / typer_cpu:8.2f}"
        )

    show_name = cases[-1][0]
    print()
    print("targets (ratios from wall times; CPU-time ratios in brackets):")
    helps = [("hpms --help", ROOT_HELP_RATIO_TARGET)]
    helps += [(f"hpms {group} --help", GROUP_HELP_RATIO_TARGET) for group in HELP_GROUPS]
    for name, target in helps:
        ratio, cpu_ratio = med[name] / typer_ms, cpu[name] / typer_cpu
        verdict = "PASS" if ratio <= target else "MISS"
        print(f"  {name:30} {ratio:5.2f}x import typer ({cpu_ratio:.2f}x)   target <= {target}x   {verdict}")
    lookup = med[show_name]
    scaled = lookup * REFERENCE_IMPORT_TYPER_MS / typer_ms
    scaled_cpu = cpu[show_name] * REFERENCE_IMPORT_TYPER_MS / typer_cpu
    print(
        f"  {'one-patient lookup, here':30} {lookup:5.0f} ms   target < {LOOKUP_TARGET_MS:.0f} ms   "
        f"{'PASS' if lookup < LOOKUP_TARGET_MS else 'MISS'}"
    )
    print(
        f"  {'one-patient lookup, scaled':30} {scaled:5.0f} ms ({scaled_cpu:.0f} ms from CPU times) = here x "
        f"{REFERENCE_IMPORT_TYPER_MS:.0f} ms / import typer here   target < {LOOKUP_TARGET_MS:.0f} ms   "
        f"{'PASS' if scaled < LOOKUP_TARGET_MS else 'MISS'}"
    )
    if profile:
        wall, total, top = profile
        print()
        print(
            f"imports of `hpms patients show` (one run under -X importtime, which slows it): {total:.0f} ms of "
            f"the {wall:.0f} ms run ({100 * total / wall:.0f}%); by top-level package (self times summed):"
        )
        for pkg, ms, n in top:
            print(f"  {pkg:20} {ms:7.1f} ms  {100 * ms / total:4.0f}%  {n:4d} modules")


if __name__ == "__main__":
    main()
