"""What the preloading sandbox worker buys: grade N copies of a correct submission with
(a) one worker that imported TensorFlow once and forks a child per submission, and
(b) a fresh worker per submission (a new process that imports TensorFlow, as a grader
    without preloading would start), in the same run, on the same machine.

    python bench/sandbox_bench.py --n 10            # writes bench/out/sandbox_bench-*.json

Per submission it reports wall time, CPU time (the grading process plus every sandbox
process, children included) and peak memory (proportional set size, so pages a child
shares with the worker are not counted twice). Targets, reported and not asserted:
preloading at least 5x faster per submission than a fresh process, and (issue 14)
steady-state grading of happyModel + convolutional_model in at most 0.25 s wall and
0.25 s CPU (grading process plus sandbox child) per submission.

    python bench/sandbox_bench.py --n 20 --n-fresh 0 --baseline-ref 9f2c20b

With `--baseline-ref REV` the preloaded arm also runs, in the same run and on the same
submission, with the grader as it was at git revision REV (exported with `git archive`,
same virtual environment), in a process of its own; both are printed side by side.
`--n-fresh 0` skips the fresh-process arm.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

TICKS = os.sysconf("SC_CLK_TCK")
TARGET_SPEEDUP = 5.0
TARGET_CPU = 0.25
TARGET_WALL = 0.25


# ---------------------------------------------------------------- measuring

def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            kids.setdefault(int(stat[stat.rindex(")") + 2:].split()[1]), []).append(int(entry))
    return kids


def _tree(root: int) -> list[int]:
    kids, found, todo = _children_map(), [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(kids.get(pid, []))
    return found


def _pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu_ticks(pid: int) -> int:
    """utime + stime + the same for reaped children: a worker accumulates its children's."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return 0
    fields = stat[stat.rindex(")") + 2:].split()
    return sum(int(x) for x in fields[11:15])


class PeakMemory:
    """Samples the proportional set size of this process and every process below it."""

    def __init__(self, interval: float = 0.05):
        self.interval = interval
        self.peak_kib = 0
        self.cpu = 0.0  # this sampler's own CPU time: not the grader's, subtracted from it
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        started = time.thread_time()
        while not self._stop.is_set():
            total = sum(_pss_kib(pid) for pid in _tree(os.getpid()))
            self.peak_kib = max(self.peak_kib, total)
            self.cpu = time.thread_time() - started
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _own_cpu() -> float:
    self_ = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return self_.ru_utime + self_.ru_stime + kids.ru_utime + kids.ru_stime


def _sandbox_python(worker) -> int | None:
    """The worker's host pid: under bubblewrap it sits two processes below the one we started."""
    if worker.proc is None:
        return None
    for pid in _tree(worker.proc.pid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and b"python" in argv[0] and any(b"sandbox" in a for a in argv):
            return pid
    return None


# ---------------------------------------------------------------- the submission

def _submission(workdir: Path) -> tuple[Path, str]:
    sample = REPO / "assignments" / "conv_bn" / "samples" / "correct.ipynb"
    if sample.exists():
        return sample, "assignments/conv_bn/samples/correct.ipynb"
    import nbformat
    source = (REPO / "reference" / "conv_bn.py").read_text()
    path = workdir / "correct_from_reference.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)]), str(path))
    return path, "built from reference/conv_bn.py"


def _grade(path: Path, assignment, worker, exercises):
    from grader.run.grading import grade_submission
    return grade_submission(path, assignment, worker, only_exercises=exercises)


def _check(result) -> None:
    if result.errors or not result.tests or result.score != result.max_score:
        raise SystemExit(f"the benchmark submission did not get full marks: {result.score}/{result.max_score} "
                         f"{result.errors} {[(t.name, t.message) for t in result.tests if t.score < t.max_score]}")


def run_preloaded(path, assignment, exercises, n: int, isolation: str) -> dict:
    from grader.frameworks.sandbox_side import sandbox_side
    from grader.sandbox.client import Worker
    started = time.perf_counter()
    worker = Worker(framework=sandbox_side(assignment.framework, assignment.keras), isolation=isolation).start()
    startup = time.perf_counter() - started
    rows = []
    try:
        sandbox = _sandbox_python(worker)
        for i in range(n + 1):  # the first one warms up the grading process (imports, pytest)
            cpu0, box0 = _own_cpu(), _cpu_ticks(sandbox) if sandbox else 0
            with PeakMemory() as mem:
                t0 = time.perf_counter()
                result = _grade(path, assignment, worker, exercises)
                wall = time.perf_counter() - t0
            _check(result)
            box = (_cpu_ticks(sandbox) - box0) / TICKS if sandbox else 0.0
            grading = _own_cpu() - cpu0 - mem.cpu
            rows.append({"wall": wall, "cpu": grading + box, "grading_cpu": grading, "sandbox_cpu": box,
                         "peak_mib": mem.peak_kib / 1024, "warmup": i == 0})
        level = worker.level
    finally:
        worker.stop()
    return {"mode": "preloaded worker", "isolation": level, "startup_seconds": startup, "runs": rows}


def run_fresh(path, assignment, exercises, n: int, isolation: str) -> dict:
    from grader.frameworks.sandbox_side import sandbox_side
    from grader.sandbox.client import Worker
    rows, level = [], ""
    for _ in range(n):
        cpu0 = _own_cpu()
        with PeakMemory() as mem:
            t0 = time.perf_counter()
            worker = Worker(framework=sandbox_side(assignment.framework, assignment.keras), isolation=isolation).start()
            box = 0.0
            try:
                result = _grade(path, assignment, worker, exercises)
                level = worker.level
                sandbox = _sandbox_python(worker)  # its CPU, read before it goes (it is never reaped by us)
                box = _cpu_ticks(sandbox) / TICKS if sandbox else 0.0
            finally:
                worker.stop()
            wall = time.perf_counter() - t0
        _check(result)
        rows.append({"wall": wall, "cpu": _own_cpu() - cpu0 - mem.cpu + box, "peak_mib": mem.peak_kib / 1024,
                     "warmup": False})
    return {"mode": "fresh process per submission", "isolation": level, "runs": rows}


def _summary(block: dict) -> dict:
    steady = [r for r in block["runs"] if not r["warmup"]] or block["runs"]
    split = {}
    if all("sandbox_cpu" in r for r in steady):  # where the CPU goes, for the preloaded worker
        split = {"grading_cpu_median": statistics.median(r["grading_cpu"] for r in steady),
                 "sandbox_cpu_median": statistics.median(r["sandbox_cpu"] for r in steady)}
    return {"n": len(steady), **split,
            "wall_mean": statistics.fmean(r["wall"] for r in steady),
            "wall_median": statistics.median(r["wall"] for r in steady),
            "cpu_mean": statistics.fmean(r["cpu"] for r in steady),
            "cpu_median": statistics.median(r["cpu"] for r in steady),
            "peak_mib": max(r["peak_mib"] for r in steady)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10, help="submissions graded with the preloaded worker")
    parser.add_argument("--n-fresh", type=int, default=None,
                        help="submissions graded with a fresh process each (default: min(n, 5))")
    parser.add_argument("--sandbox", default="auto", help="isolation level, as for `grader grade`")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out")
    parser.add_argument("--baseline-ref", default=None,
                        help="also run the preloaded arm with the grader at this git revision")
    parser.add_argument("--preloaded-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--checkout", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.preloaded_only:  # the baseline's measured process: print the preloaded arm's summary
        sys.path.insert(0, str(args.checkout))
        from grader.assignment.spec import load_assignment
        assignment = load_assignment("conv_bn")
        with tempfile.TemporaryDirectory() as tmp:
            path, _ = _submission(Path(tmp))
            block = run_preloaded(path, assignment, frozenset({"happyModel", "convolutional_model"}), args.n,
                                  args.sandbox)
        import grader
        print(json.dumps({**_summary(block), "startup_seconds": block["startup_seconds"],
                          "grader_from": str(Path(grader.__file__).resolve().parent.parent)}))
        return {}

    from grader.assignment.spec import load_assignment
    assignment = load_assignment("conv_bn")
    exercises = frozenset({"happyModel", "convolutional_model"})
    with tempfile.TemporaryDirectory() as tmp:
        path, origin = _submission(Path(tmp))
        load = os.getloadavg()[0]
        preloaded = run_preloaded(path, assignment, exercises, args.n, args.sandbox)
        n_fresh = min(args.n, 5) if args.n_fresh is None else args.n_fresh
        fresh = run_fresh(path, assignment, exercises, n_fresh, args.sandbox) if n_fresh > 0 else None
        baseline = _baseline(args.baseline_ref, args.n, args.sandbox) if args.baseline_ref else None

    a = _summary(preloaded)
    b = _summary(fresh) if fresh else None
    speedup = b["wall_mean"] / a["wall_mean"] if b and a["wall_mean"] else None
    report = {
        "benchmark": "sandbox", "when": time.strftime("%Y-%m-%dT%H:%M:%S"), "cpus": os.cpu_count(),
        "submission": origin, "exercises": sorted(exercises), "isolation": preloaded["isolation"],
        "load_1min": round(load, 2),
        "preloaded": {**a, "startup_seconds": preloaded["startup_seconds"],
                      "first_wall": preloaded["runs"][0]["wall"], "runs": preloaded["runs"]},
        "fresh": {**b, "runs": fresh["runs"]} if b else None,
        "baseline": baseline,
        "speedup_wall": speedup,
        "targets": {"speedup_wall": TARGET_SPEEDUP, "steady_cpu_seconds": TARGET_CPU,
                    "steady_wall_seconds": TARGET_WALL,
                    "speedup_met": speedup >= TARGET_SPEEDUP if speedup is not None else None,
                    "cpu_met": a["cpu_median"] <= TARGET_CPU, "wall_met": a["wall_median"] <= TARGET_WALL},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"sandbox_bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=2))
    _print(report, out)
    return report


def _baseline(ref: str, n: int, isolation: str) -> dict:
    """The preloaded arm with the grader at git revision `ref`, in a process of its own."""
    import subprocess
    with tempfile.TemporaryDirectory(prefix="grader-sandbox-base-") as tmp:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", ref], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        load = os.getloadavg()[0]
        proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--preloaded-only", "--checkout", tmp,
                               "--n", str(n), "--sandbox", isolation], capture_output=True, text=True, cwd=tmp,
                              env={**os.environ, "PYTHONPATH": tmp})
    if proc.returncode != 0:
        raise SystemExit(f"baseline {ref} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return {"ref": ref, "load_1min": round(load, 2), **json.loads(proc.stdout.strip().splitlines()[-1])}


def _print(report: dict, out: Path) -> None:
    a, b, base = report["preloaded"], report["fresh"], report["baseline"]
    print(f"sandbox benchmark: {report['submission']} ({', '.join(report['exercises'])}), "
          f"isolation {report['isolation']}, {report['cpus']} CPUs, load {report['load_1min']:.2f}")
    print(f"{'mode':<30} {'n':>3} {'wall mean':>10} {'wall med':>9} {'CPU mean':>9} {'CPU med':>8} {'peak MiB':>9}")
    rows = [("preloaded worker (steady)", a)]
    if base:
        rows.append((f"  baseline {base['ref']} (load {base['load_1min']:.1f})", base))
    if b:
        rows.append(("fresh process per submission", b))
    for name, row in rows:
        print(f"{name:<30} {row['n']:>3} {row['wall_mean']:>9.3f}s {row['wall_median']:>8.3f}s "
              f"{row['cpu_mean']:>8.3f}s {row['cpu_median']:>7.3f}s {row['peak_mib']:>9.0f}")
    print(f"preloaded worker start-up {a['startup_seconds']:.2f}s (once); first submission {a['first_wall']:.2f}s; "
          f"steady CPU split: grading process {a['grading_cpu_median']:.3f}s, sandbox child "
          f"{a['sandbox_cpu_median']:.3f}s" + (f" (baseline: {base['grading_cpu_median']:.3f}s + "
                                                 f"{base['sandbox_cpu_median']:.3f}s)" if base else ""))
    t = report["targets"]
    verdict = {True: "met", False: "NOT met", None: "not measured"}
    speedup = "-" if report["speedup_wall"] is None else f"{report['speedup_wall']:.1f}x"
    print(f"speed-up per submission over a fresh process: {speedup} (target >= {t['speedup_wall']:g}x: "
          f"{verdict[t['speedup_met']]}); steady wall {a['wall_median']:.3f}s (target <= {t['steady_wall_seconds']:g}s: "
          f"{verdict[t['wall_met']]}); steady CPU {a['cpu_median']:.3f}s (target <= {t['steady_cpu_seconds']:g}s: "
          f"{verdict[t['cpu_met']]})")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
