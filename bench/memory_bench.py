"""Memory over a long run of one grading process, and the cost of ResNet50-sized submissions.

    python bench/memory_bench.py [--n 1000] [--every 50] [--resnet 3] [--baseline-ref REV] [--json]

Part 1 grades `--n` conv_bn submissions (the generated class of bench/submissions.py,
40 distinct notebooks cycled) one after another in ONE grading process with ONE sandbox
worker, as a grading process of `grader grade` does, and samples every `--every`
submissions the grading process's resident set and the proportional set size of the
sandbox worker and its children. Growth is reported per 1,000 submissions from the
samples after the first quarter (the first submissions warm caches up); the peak is the
grading process plus the worker and its children, sampled every 0.2 s all along.
Targets (issue 14, reported, never asserted): flat (under 32 MiB per 1,000 submissions)
and a peak of at most 1 GiB.

Part 2 (`--resnet K`) grades K course-layout `dls_c4w2a1` notebooks (identity block,
convolutional block, ResNet50; tests/dls_c4w2a1_notebooks.py) one after another in one
grading process, after a warm-up, and reports wall, CPU (grading process + sandbox) and
peak memory (grading process + worker + children) per submission.

Each part runs in a fresh Python process; with `--baseline-ref REV` part 1 also runs with
the grader as it was at git revision REV (`git archive`, same virtual environment), in the
same run, side by side.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TARGET_GROWTH_MIB_PER_1000 = 32.0
TARGET_PEAK_MIB = 1024.0


def _bench(name: str):
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _rss_mib(pid: int | str = "self") -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _worker_pss_mib(worker) -> float:
    sb = _bench("sandbox_bench")
    if worker.proc is None:
        return 0.0
    return sum(sb._pss_kib(pid) for pid in sb._tree(worker.proc.pid)) / 1024


def measure_long_run(n: int, every: int) -> dict:
    """Runs in the measured process."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sb = _bench("sandbox_bench")
    from grader.frameworks.keras.tensorflow_import import import_quietly
    from grader.assignment.spec import load_assignment
    from grader.run.grading import grade_submission
    from grader.frameworks.sandbox_side import sandbox_side
    from grader.sandbox.client import Worker
    assignment = load_assignment("conv_bn")
    import_quietly(assignment.keras)
    with tempfile.TemporaryDirectory(prefix="grader-memory-") as tmp:
        paths = [g.path for g in _bench("submissions").generate(Path(tmp), 40)]
        worker = Worker(framework=sandbox_side(assignment.framework, assignment.keras)).start()
        samples, started, cpu0 = [], time.perf_counter(), sb._own_cpu()
        try:
            with sb.PeakMemory(interval=0.2) as peak:
                for i in range(n):
                    grade_submission(paths[i % len(paths)], assignment, worker)
                    if (i + 1) % every == 0 or i + 1 == n:
                        samples.append({"graded": i + 1, "grading_rss_mib": round(_rss_mib(), 1),
                                        "worker_pss_mib": round(_worker_pss_mib(worker), 1)})
        finally:
            worker.stop()
    wall = time.perf_counter() - started
    later = [s for s in samples if s["graded"] > n // 4] or samples
    first, last = later[0], later[-1]
    span = max(last["graded"] - first["graded"], 1)
    growth = (last["grading_rss_mib"] - first["grading_rss_mib"]) / span * 1000
    return {"n": n, "wall_seconds": round(wall, 1), "per_submission_seconds": round(wall / n, 3),
            "cpu_per_submission": round((sb._own_cpu() - cpu0 - peak.cpu) / n, 3),
            "growth_mib_per_1000": round(growth, 1), "peak_mib": round(peak.peak_kib / 1024, 1),
            "grading_rss_first_mib": first["grading_rss_mib"], "grading_rss_last_mib": last["grading_rss_mib"],
            "samples": samples}


def measure_resnet(k: int) -> dict:
    """Runs in the measured process: K course-layout ResNet50 notebooks after a warm-up one."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sb = _bench("sandbox_bench")
    spec = importlib.util.spec_from_file_location("dls_c4w2a1_notebooks", REPO / "tests" / "dls_c4w2a1_notebooks.py")
    notebooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(notebooks)
    import nbformat
    from grader.frameworks.keras.tensorflow_import import import_quietly
    from grader.assignment.spec import load_assignment
    from grader.run.grading import grade_submission
    from grader.frameworks.sandbox_side import sandbox_side
    from grader.sandbox.client import Worker
    assignment = load_assignment("dls_c4w2a1")
    import_quietly(assignment.keras)
    rows = []
    with tempfile.TemporaryDirectory(prefix="grader-resnet-") as tmp:
        path = Path(tmp) / "resnet.ipynb"
        nbformat.write(notebooks.course_notebook("current"), str(path))
        worker = Worker(framework=sandbox_side(assignment.framework, assignment.keras)).start()
        sandbox = sb._sandbox_python(worker)
        try:
            for i in range(k + 1):  # the first warms the grading process up (imports, reference models)
                cpu0, box0 = sb._own_cpu(), sb._cpu_ticks(sandbox) if sandbox else 0
                with sb.PeakMemory(interval=0.05) as peak:
                    t0 = time.perf_counter()
                    result = grade_submission(path, assignment, worker)
                    wall = time.perf_counter() - t0
                box = (sb._cpu_ticks(sandbox) - box0) / sb.TICKS if sandbox else 0.0
                rows.append({"warmup": i == 0, "wall": round(wall, 2), "grading_cpu": round(sb._own_cpu() - cpu0 - peak.cpu, 2),
                             "sandbox_cpu": round(box, 2), "peak_mib": round(peak.peak_kib / 1024, 1),
                             "score": result.score, "max_score": result.max_score, "errors": result.errors})
        finally:
            worker.stop()
    steady = [r for r in rows if not r["warmup"]] or rows
    return {"k": k, "runs": rows, "wall_median": sorted(r["wall"] for r in steady)[len(steady) // 2],
            "cpu_median": sorted(r["grading_cpu"] + r["sandbox_cpu"] for r in steady)[len(steady) // 2],
            "peak_mib": max(r["peak_mib"] for r in rows)}


def _in_process(checkout: Path, part: str, extra: list[str]) -> dict:
    env = {**os.environ, "PYTHONPATH": str(checkout), "TF_CPP_MIN_LOG_LEVEL": "3"}
    load = os.getloadavg()[0]
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--part", part, "--checkout", str(checkout),
                           *extra], capture_output=True, text=True, env=env, cwd=str(checkout))
    if proc.returncode != 0:
        raise SystemExit(f"{part} in {checkout} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "load_1min": round(load, 2)}


def main(argv: list[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="submissions graded by one grading process (0: skip)")
    parser.add_argument("--every", type=int, default=50, help="sample memory every this many submissions")
    parser.add_argument("--resnet", type=int, default=3, help="ResNet50 notebooks to grade (0: skip)")
    parser.add_argument("--baseline-ref", default=None, help="also run the long run with the grader at this revision")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out")
    parser.add_argument("--part", choices=("long", "resnet"), default=None, help=argparse.SUPPRESS)
    parser.add_argument("--checkout", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.part is not None:  # the measured process
        _bench("sandbox_bench")  # it puts this checkout on sys.path: before the measured checkout goes first
        sys.path.insert(0, str(args.checkout or REPO))
        result = measure_long_run(args.n, args.every) if args.part == "long" else measure_resnet(args.resnet)
        import grader
        print(json.dumps({**result, "grader_from": str(Path(grader.__file__).resolve().parent.parent)}))
        return None
    long_args = ["--n", str(args.n), "--every", str(args.every)]
    resnet_args = ["--resnet", str(args.resnet)]
    rows = [{"label": "this checkout", **_in_process(REPO, "long", long_args)}] if args.n > 0 else []
    resnet = _in_process(REPO, "resnet", resnet_args) if args.resnet > 0 else None
    resnet_baseline = None
    with tempfile.TemporaryDirectory(prefix="grader-memory-base-") as tmp:
        if args.baseline_ref:
            base = _bench("class_bench").export(args.baseline_ref, Path(tmp) / "baseline")
            if args.n > 0:
                rows.append({"label": f"baseline {args.baseline_ref}", **_in_process(base, "long", long_args)})
            if args.resnet > 0:
                resnet_baseline = {"ref": args.baseline_ref, **_in_process(base, "resnet", resnet_args)}
    now = rows[0] if rows else None
    report = {"benchmark": "memory", "when": time.strftime("%Y-%m-%dT%H:%M:%S"), "cpus": os.cpu_count(),
              "long_runs": rows, "resnet": resnet, "resnet_baseline": resnet_baseline,
              "targets": {"growth_mib_per_1000": TARGET_GROWTH_MIB_PER_1000, "peak_mib": TARGET_PEAK_MIB,
                          "flat_met": now["growth_mib_per_1000"] <= TARGET_GROWTH_MIB_PER_1000 if now else None,
                          "peak_met": now["peak_mib"] <= TARGET_PEAK_MIB if now else None}}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"memory_bench-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(report, indent=2))
    if args.json:
        print(json.dumps(report))
    else:
        _print(report)
    return report


def _print(report: dict) -> None:
    print(f"memory benchmark, {report['cpus']} CPUs; one grading process + its sandbox worker, conv_bn class cycled")
    print(f"{'grader':<24}{'n':>6}{'s/sub':>8}{'CPU/sub':>9}{'RSS q1':>9}{'RSS end':>9}{'MiB/1000':>10}"
          f"{'peak MiB':>10}{'load':>7}")
    for r in report["long_runs"]:
        print(f"{r['label']:<24}{r['n']:>6}{r['per_submission_seconds']:>8.3f}{r['cpu_per_submission']:>9.3f}"
              f"{r['grading_rss_first_mib']:>9.0f}{r['grading_rss_last_mib']:>9.0f}{r['growth_mib_per_1000']:>10.1f}"
              f"{r['peak_mib']:>10.0f}{r['load_1min']:>7.2f}")
    t = report["targets"]
    verdict = {True: "met", False: "NOT met", None: "not measured"}
    print(f"targets: growth <= {t['growth_mib_per_1000']:g} MiB per 1000 ({verdict[t['flat_met']]}), "
          f"peak <= {t['peak_mib']:g} MiB ({verdict[t['peak_met']]})")
    for label, r in (("this checkout", report["resnet"]), ("baseline", report["resnet_baseline"])):
        if r:
            label = f"baseline {r['ref']}" if label == "baseline" else label
            scores = ", ".join("%g/%g" % (x["score"], x["max_score"]) for x in r["runs"])
            print(f"ResNet50 course notebooks (dls_c4w2a1), {label}, {r['k']} after a warm-up: median wall "
                  f"{r['wall_median']:.2f}s, median CPU {r['cpu_median']:.2f}s (grading + sandbox), peak "
                  f"{r['peak_mib']:.0f} MiB, scores {scores} (load {r['load_1min']:.2f})")


if __name__ == "__main__":
    main()
