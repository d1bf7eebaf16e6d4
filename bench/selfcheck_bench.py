"""What a student waits for: `grader check` (a fresh sandbox worker per call) against
`check()` in one long-lived process, as in a Jupyter kernel (the first call starts the
kernel's worker, later calls reuse it).

    python bench/selfcheck_bench.py --n 5 --warm 3 --baseline-ref e1e4399
    # writes bench/out/selfcheck_bench-*.json

With `--baseline-ref REV`, `grader check` also runs from that git revision (extracted with
`git archive` into a temporary folder and put first on PYTHONPATH), alternating with this
checkout run by run, so both see the same machine load; the report gives both medians and
their ratio, and which `grader` package each arm imported. Where `perf` works, each run's
CPU seconds (all its processes, sandbox included) are counted too: on a shared machine
the wall time follows the other jobs, the CPU time much less. Every arm is primed with one
untimed run first (`--prime 0` to skip): the extracted baseline has no compiled bytecode
yet, and neither arm should be timed compiling it.

Targets, reported and not asserted: `grader check` cold within 4 s (issue 14), a warm
check() under a second, and the first check() no slower than `grader check` (issue 12).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "assignments" / "conv_bn" / "samples" / "correct.ipynb"
TARGET_WARM = 1.0
TARGET_COLD = 4.0

# Runs in a fresh process, the way a kernel would hold the grader: import, then check() repeatedly.
_SESSION = """
import json, sys, time
t0 = time.perf_counter()
import grader.kit.selfcheck as sc
imported = time.perf_counter() - t0
walls = []
for _ in range(int(sys.argv[2])):
    t = time.perf_counter()
    result = sc.check(sys.argv[4], notebook=sys.argv[1], assignment=sys.argv[3], show=False)
    walls.append(time.perf_counter() - t)
print(json.dumps({"import": imported, "walls": walls, "score": result.score, "max": result.max_score,
                  "isolation": result.isolation, "workers_started": sc.STATS["workers_started"]}))
"""


def _env(checkout: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GRADER_SELF_CHECK", "PYTHONPATH")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    if checkout is not None:
        env["PYTHONPATH"] = str(checkout)
    return env


def _which_grader(checkout: Path | None) -> str:
    """The `grader` package an arm's processes import (a baseline that silently ran this
    checkout would compare it with itself)."""
    return subprocess.run([sys.executable, "-c", "import grader; print(grader.__file__)"], cwd=checkout or REPO,
                          env=_env(checkout), check=True, capture_output=True, text=True).stdout.strip()


def _perf_works() -> bool:
    """Whether `perf stat` can count this user's processes here (it needs the tool and a
    permissive perf_event_paranoid)."""
    if shutil.which("perf") is None:
        return False
    with tempfile.NamedTemporaryFile(suffix=".csv") as out:
        probe = subprocess.run(["perf", "stat", "-e", "task-clock", "-x,", "-o", out.name, "true"],
                               capture_output=True)
        return probe.returncode == 0 and "task-clock" in Path(out.name).read_text()


def _run_cli(checkout: Path | None, perf: bool = False) -> tuple[float, float | None, list[float]]:
    """One cold `grader check`, start to exit: its wall time, the CPU seconds of all its
    processes (sandbox worker and child included; `perf stat` task-clock, None without
    perf) and [score, max]. CPU is what the machine's other load does not change much."""
    root = checkout or REPO
    command = [sys.executable, "-m", "grader", "check", str(root / SAMPLE.relative_to(REPO)),
               "--assignment", "conv_bn", "--format", "json"]
    with tempfile.NamedTemporaryFile(suffix=".csv") as counts:
        if perf:
            command = ["perf", "stat", "-e", "task-clock", "-x,", "-o", counts.name, "--", *command]
        started = time.perf_counter()
        proc = subprocess.run(command, cwd=root, env=_env(checkout), capture_output=True, text=True)
        wall = time.perf_counter() - started
        cpu = _task_clock(Path(counts.name).read_text()) if perf else None
    if proc.returncode != 0:
        raise SystemExit(f"grader check ({root}) failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return wall, cpu, [result["score"], result["max_score"]]


def _task_clock(csv_text: str) -> float | None:
    for line in csv_text.splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[2] == "task-clock":
            try:
                return float(fields[0]) / 1000.0
            except ValueError:
                return None
    return None


def time_cli(n: int, baseline: Path | None = None, prime: int = 1) -> dict:
    """`grader check` n times per arm, the arms alternating run by run."""
    arms = {"current": None, **({"baseline": baseline} if baseline is not None else {})}
    perf = _perf_works()
    for _ in range(prime):
        for checkout in arms.values():
            _run_cli(checkout)
    walls: dict[str, list[float]] = {name: [] for name in arms}
    cpus: dict[str, list[float]] = {name: [] for name in arms}
    scores: dict[str, list[float]] = {}
    loads = [os.getloadavg()[0]]
    for _ in range(n):
        for name, checkout in arms.items():
            wall, cpu, scores[name] = _run_cli(checkout, perf)
            walls[name].append(wall)
            if cpu is not None:
                cpus[name].append(cpu)
        loads.append(os.getloadavg()[0])
    report = {name: {"n": n, "walls": [round(w, 3) for w in walls[name]], "median": statistics.median(walls[name]),
                     "min": min(walls[name]), "score": scores[name], "grader": _which_grader(checkout),
                     "cpu": [round(c, 3) for c in cpus[name]],
                     "cpu_median": statistics.median(cpus[name]) if cpus[name] else None}
              for name, checkout in arms.items()}
    report["load_1min"] = {"min": min(loads), "max": max(loads), "each": [round(x, 2) for x in loads]}
    return report


def time_session(warm: int, *, python: str = sys.executable, notebook: Path = SAMPLE, assignment: str = "conv_bn",
                 exercise: str = "happyModel", cwd: Path = REPO, env: dict[str, str] | None = None) -> dict:
    """One fresh process holding the grader as a kernel does: the first check() and `warm`
    more. `python`, `cwd` and `env` let another install be timed (a student's venv, with
    the kit's notebook: bench/student_install_bench.py)."""
    done = subprocess.run([python, "-c", _SESSION, str(notebook), str(1 + warm), assignment, exercise], cwd=cwd,
                          env=_env() if env is None else env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"check() session failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _extract(ref: str, into: Path) -> None:
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", ref], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2, help="grader check runs per arm (default 2)")
    parser.add_argument("--warm", type=int, default=3, help="check() calls after the first (default 3)")
    parser.add_argument("--baseline-ref", default=None, metavar="REV",
                        help="also time grader check at this git revision, alternating with this checkout")
    parser.add_argument("--prime", type=int, default=1, help="untimed grader check runs per arm first (default 1)")
    parser.add_argument("--out", default=str(REPO / "bench" / "out"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="grader-selfcheck-base-") as tmp:
        baseline = None
        if args.baseline_ref:
            baseline = Path(tmp)
            _extract(args.baseline_ref, baseline)
        cli = time_cli(max(1, args.n), baseline, prime=max(0, args.prime))
    session = time_session(max(1, args.warm))
    first, warm = session["walls"][0], session["walls"][1:]
    current = cli["current"]
    report = {
        "cpu_count": os.cpu_count(), "isolation": session["isolation"],
        "grader_check": current, "load_1min": cli["load_1min"],
        "check_first": first, "check_warm": {"n": len(warm), "walls": warm, "median": statistics.median(warm)},
        "import_seconds": session["import"], "workers_started": session["workers_started"],
        "score": [session["score"], session["max"]],
        "targets": {"cold_under_seconds": TARGET_COLD, "cold_met": current["median"] <= TARGET_COLD,
                    "warm_under_seconds": TARGET_WARM, "warm_met": statistics.median(warm) < TARGET_WARM,
                    "first_not_slower_met": first <= current["median"]},
    }
    if baseline is not None:
        base = cli["baseline"]
        report["baseline"] = {"ref": args.baseline_ref, **base}
        report["speedup"] = base["median"] / current["median"]
        if base["cpu_median"] and current["cpu_median"]:
            report["cpu_ratio"] = base["cpu_median"] / current["cpu_median"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"selfcheck_bench-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(report, indent=2))
    _print(report)
    return report


def _print(report: dict) -> None:
    cli, load = report["grader_check"], report["load_1min"]
    print(f"grader check, cold             median {cli['median']:.2f} s (min {cli['min']:.2f}) over {cli['n']} "
          f"(target <= {TARGET_COLD:.0f} s: {'met' if report['targets']['cold_met'] else 'NOT met'})")
    if cli["cpu_median"]:
        print(f"  CPU, all its processes       median {cli['cpu_median']:.2f} s")
    if "baseline" in report:
        base = report["baseline"]
        print(f"  baseline {base['ref']:<20} median {base['median']:.2f} s (min {base['min']:.2f}) over {base['n']}: "
              f"{report['speedup']:.2f}x as long as now")
        if "cpu_ratio" in report:
            print(f"  baseline CPU                 median {base['cpu_median']:.2f} s: {report['cpu_ratio']:.2f}x now")
    print(f"  load (1 min) {load['min']:.1f}-{load['max']:.1f} on {report['cpu_count']} cores")
    print(f"check() first, in one process  {report['check_first']:.2f} s (isolation {report['isolation']})")
    print(f"check() warm                   median {report['check_warm']['median']:.2f} s over "
          f"{report['check_warm']['n']} (target < {TARGET_WARM:.0f} s: "
          f"{'met' if report['targets']['warm_met'] else 'NOT met'})")
    print(f"workers started in the process: {report['workers_started']}")


if __name__ == "__main__":
    main()
