"""Steady-state grading time of real-sized models: a correct U-Net (dls_c4w3a2) and a
correct ResNet50 (dls_c4w2a1) course notebook, and the memory it takes.

    python bench/model_speed_bench.py [--k 3] [--warmup 1] [--baseline-ref REV] [--only unet|resnet] [--vary] [--json]

For each assignment, one measured process (a fresh Python, like one grading process of
`grader grade`) starts one sandbox worker, grades the course-layout notebook once to warm
up (imports, reference models, the model pool; `--warmup N` grades it N times: a model
the pool lends is traced on its second use of a batch shape, so a ResNet50's calls reach
their steady state on the third submission), then grades it `--k` more times and
records per submission: wall time, CPU of the grading process and of the sandbox (worker
and children), and the peak proportional set size of grading process + worker + child,
sampled every 0.05 s, and the grading process's exact high-water mark (VmHWM, which a
loaded machine cannot blur). Each timed submission is listed; medians (wall, CPU, each side's
CPU) and the highest peak are compared. Wall time is what the targets are about, but on
a machine shared with other jobs it follows the load: CPU and the ratios are what to read
then (the 1-minute load is given per arm).

Targets (issue 19, section 7; reported, never asserted): U-Net <= 3 s and ResNet50 <= 2 s
per submission in the steady state on 2 cores, peak <= 1.5 GiB.

With `--baseline-ref REV` the same measurement runs with the grader as it was at git
revision REV (`git archive` into a temporary folder, same virtual environment), in the same
run, and the report gives this checkout's times as ratios of the baseline's: on a shared
machine absolute times follow the load, ratios much less. An assignment the baseline does
not have (dls_c4w3a2 before it existed) is copied into the exported tree, with the spec
keys that grader does not know removed; when the baseline then does not give the notebook
full marks (it lacks checks the tests call), its arm is marked "not comparable".

The notebooks come from tests/dls_c4w3a2_notebooks.py and tests/dls_c4w2a1_notebooks.py,
the same ones the tests grade. By default the same notebook is graded every time, so a
hidden test's inputs (drawn from the submission's content) repeat and the reference's
remembered outputs answer them (grader/frameworks/keras/reference_outputs.py); `--vary`
adds a constant `VARIANT = i` cell per grade, so each is another submission with other
hidden inputs, as in a class.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TARGETS = {"unet": 3.0, "resnet": 2.0}  # seconds per submission, steady state
TARGET_PEAK_MIB = 1536.0
ARMS = {"unet": ("dls_c4w3a2", "dls_c4w3a2_notebooks"), "resnet": ("dls_c4w2a1", "dls_c4w2a1_notebooks")}


def _bench(name: str):
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _notebooks(module: str):
    """The test suite's notebook builders, from this checkout (the baseline grades the same
    notebooks)."""
    spec = importlib.util.spec_from_file_location(module, REPO / "tests" / f"{module}.py")
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else 0.0


def _worker(worker_class, assignment, isolation: str):
    """The sandbox worker as the measured checkout starts it: a baseline from before the
    sandbox named no framework (568c0ef and older) takes `keras=`."""
    try:
        from grader.frameworks.sandbox_side import sandbox_side
    except ImportError:
        return worker_class(keras=assignment.keras, isolation=isolation)
    return worker_class(framework=sandbox_side(assignment.framework, assignment.keras), isolation=isolation)


def _status_mib(field: str) -> float:
    """This process's line of /proc/self/status in MiB: VmHWM is the kernel's exact
    high-water mark of the grading process, which the sampled peak can miss under load."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


def measure(arm: str, k: int, isolation: str, warmup: int = 1, vary: bool = False) -> dict:
    """Runs in the measured process: `warmup` grades, then `k` timed ones."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sb = _bench("sandbox_bench")
    name, builder = ARMS[arm]
    notebook = _notebooks(builder).course_notebook("course" if arm == "unet" else "current")
    import nbformat
    from grader.frameworks.keras.tensorflow_import import import_quietly
    from grader.assignment.spec import load_assignment
    from grader.run.grading import grade_submission
    from grader.sandbox.client import Worker
    assignment = load_assignment(name)
    import_quietly(assignment.keras)
    rows = []
    with tempfile.TemporaryDirectory(prefix=f"grader-{arm}-") as tmp:
        path = Path(tmp) / f"{arm}.ipynb"
        nbformat.write(notebook, str(path))
        worker = _worker(Worker, assignment, isolation).start()
        sandbox = sb._sandbox_python(worker)
        try:
            for i in range(k + warmup):  # the first ones warm the grading process up
                if vary:
                    varied = nbformat.from_dict(notebook)
                    varied.cells.append(nbformat.v4.new_code_cell(f"VARIANT = {i}\n"))
                    nbformat.write(varied, str(path))
                cpu0, box0 = sb._own_cpu(), sb._cpu_ticks(sandbox) if sandbox else 0
                with sb.PeakMemory(interval=0.05) as peak:
                    started = time.perf_counter()
                    result = grade_submission(path, assignment, worker)
                    wall = time.perf_counter() - started
                box = (sb._cpu_ticks(sandbox) - box0) / sb.TICKS if sandbox else 0.0
                rows.append({"warmup": i < warmup, "wall": round(wall, 3), "hwm_mib": _status_mib("VmHWM"),
                             "grading_cpu": round(sb._own_cpu() - cpu0 - peak.cpu, 3), "sandbox_cpu": round(box, 3),
                             "peak_mib": round(peak.peak_kib / 1024, 1), "score": result.score,
                             "max_score": result.max_score, "errors": list(result.errors)[:3]})
        finally:
            worker.stop()
    steady = [r for r in rows if not r["warmup"]] or rows
    return {"arm": arm, "assignment": name, "k": k, "isolation": worker.level, "runs": rows,
            "wall_median": round(_median([r["wall"] for r in steady]), 3),
            "cpu_median": round(_median([r["grading_cpu"] + r["sandbox_cpu"] for r in steady]), 3),
            "grading_cpu_median": round(_median([r["grading_cpu"] for r in steady]), 3),
            "sandbox_cpu_median": round(_median([r["sandbox_cpu"] for r in steady]), 3),
            "peak_mib": max(r["peak_mib"] for r in rows), "grading_hwm_mib": max(r["hwm_mib"] for r in rows),
            "full_marks": all(r["score"] == r["max_score"] and not r["errors"] for r in rows)}


def _measured(checkout: Path, arm: str, k: int, isolation: str, warmup: int = 1, vary: bool = False) -> dict:
    env = {**os.environ, "PYTHONPATH": str(checkout), "TF_CPP_MIN_LOG_LEVEL": "3"}
    load = os.getloadavg()[0]
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--part", arm, "--checkout", str(checkout),
                           "--k", str(k), "--isolation", isolation, "--warmup", str(warmup)]
                          + (["--vary"] if vary else []),
                          capture_output=True, text=True, env=env, cwd=str(checkout))
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        return {"arm": arm, "unavailable": tail[0][:300], "load_1min": round(load, 2)}
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "load_1min": round(load, 2)}


def _unknown_keys(checkout: Path) -> set[str]:
    """The spec keys this checkout's grader does not know: read from its source, since
    importing two graders into one process would mix them."""
    known = set(re.findall(r'^\s*Key\("(\w+)"', _spec_source(checkout), flags=re.M))
    ours = set(re.findall(r'^\s*Key\("(\w+)"', _spec_source(REPO), flags=re.M))
    return ours - known if known else set()


def _spec_source(checkout: Path) -> str:
    """The spec module's text: grader/assignment/spec.py since the modules were gathered
    into folders, grader/spec/assignment.py for a day, grader/assignment.py before."""
    for path in (checkout / "grader" / "assignment" / "spec.py", checkout / "grader" / "spec" / "assignment.py",
                 checkout / "grader" / "assignment.py"):
        if path.is_file():
            return path.read_text(encoding="utf-8")
    return ""


def _without_tables(spec: str, tables: set[str]) -> str:
    """The spec text without the `[table]` sections named (they run to the next table or
    the end); top-level keys are left alone."""
    kept, skipping = [], False
    for line in spec.splitlines():
        header = re.match(r"^\s*\[+\s*([\w.]+)\s*\]+\s*$", line)
        if header:
            skipping = header.group(1) in tables
        if not skipping:
            kept.append(line)
    return "\n".join(kept) + "\n"


def bring_assignment(checkout: Path, name: str) -> str:
    """Make `name` gradable by the grader in `checkout` when that tree lacks it: copy it and
    its reference in, without the spec tables that grader would refuse. Returns what was
    done, for the report."""
    if (checkout / "assignments" / name).is_dir():
        return "its own copy"
    shutil.copytree(REPO / "assignments" / name, checkout / "assignments" / name)
    (checkout / "reference").mkdir(exist_ok=True)
    shutil.copy2(REPO / "reference" / f"{name}.py", checkout / "reference" / f"{name}.py")
    spec_path = checkout / "assignments" / name / "assignment.toml"
    unknown = _unknown_keys(checkout)
    if unknown:
        spec_path.write_text(_without_tables(spec_path.read_text(encoding="utf-8"), unknown), encoding="utf-8")
    dropped = f", without {', '.join(sorted(unknown))}" if unknown else ""
    return f"copied from this checkout{dropped}"


def main(argv: list[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--k", type=int, default=3, help="timed submissions per assignment, after one warm-up")
    parser.add_argument("--warmup", type=int, default=1, help="untimed submissions first (default 1)")
    parser.add_argument("--only", choices=tuple(ARMS), default=None, help="measure one assignment only")
    parser.add_argument("--baseline-ref", default=None, help="also measure the grader at this git revision")
    parser.add_argument("--isolation", default="auto", help="the sandbox worker's isolation (default: auto)")
    parser.add_argument("--vary", action="store_true", help="another submission each grade (other hidden inputs)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out")
    parser.add_argument("--part", choices=tuple(ARMS), default=None, help=argparse.SUPPRESS)
    parser.add_argument("--checkout", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.part is not None:  # the measured process
        _bench("sandbox_bench")  # it puts this checkout on sys.path: before the measured checkout goes first
        sys.path.insert(0, str(args.checkout or REPO))
        result = measure(args.part, args.k, args.isolation, max(1, args.warmup), args.vary)
        import grader
        print(json.dumps({**result, "grader_from": str(Path(grader.__file__).resolve().parent.parent)}))
        return None
    arms = [args.only] if args.only else list(ARMS)
    current = {arm: _measured(REPO, arm, args.k, args.isolation, args.warmup, args.vary) for arm in arms}
    baseline: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="grader-models-base-") as tmp:
        if args.baseline_ref:
            base = _bench("class_bench").export(args.baseline_ref, Path(tmp) / "baseline")
            for arm in arms:
                how = bring_assignment(base, ARMS[arm][0])
                baseline[arm] = {**_measured(base, arm, args.k, args.isolation, args.warmup, args.vary),
                                 "assignment_from": how}
    report = {"benchmark": "model_speed", "when": time.strftime("%Y-%m-%dT%H:%M:%S"), "cpus": os.cpu_count(),
              "k": args.k, "warmup": args.warmup, "vary": args.vary, "baseline_ref": args.baseline_ref,
              "current": current, "baseline": baseline,
              "ratios": {arm: _ratios(current[arm], baseline.get(arm)) for arm in arms},
              "targets": {arm: _verdict(current[arm], TARGETS[arm]) for arm in arms}}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"model_speed_bench-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(report, indent=2))
    if args.json:
        print(json.dumps(report))
    else:
        _print(report)
    return report


def _ratios(now: dict, base: dict | None) -> dict | None:
    """This checkout's medians and peak over the baseline's; None when either is missing or
    the baseline did not grade the notebook fully (its time would be of less work)."""
    if not base or "unavailable" in base or "unavailable" in now:
        return None
    if not base.get("full_marks"):
        return {"comparable": False, "why": "the baseline does not give this notebook full marks"}
    def ratio(key):
        return round(now[key] / base[key], 2) if base.get(key) else None
    return {"comparable": True, "wall": ratio("wall_median"), "cpu": ratio("cpu_median"), "peak": ratio("peak_mib"),
            "grading_cpu": ratio("grading_cpu_median"), "sandbox_cpu": ratio("sandbox_cpu_median")}


def _verdict(now: dict, target_seconds: float) -> dict:
    if "unavailable" in now:
        return {"seconds": target_seconds, "peak_mib": TARGET_PEAK_MIB, "time_met": None, "peak_met": None}
    return {"seconds": target_seconds, "peak_mib": TARGET_PEAK_MIB,
            "time_met": now["wall_median"] <= target_seconds, "peak_met": now["peak_mib"] <= TARGET_PEAK_MIB}


def _print(report: dict) -> None:
    warmups = report.get("warmup", 1)
    print(f"model speed benchmark, {report['cpus']} CPUs, {report['k']} timed submissions after "
          f"{warmups} warm-up{'s' if warmups != 1 else ''}, one grading process + one sandbox worker")
    print(f"{'grader':<22}{'assignment':<13}{'wall':>7}{'CPU':>7}{'peak MiB':>10}{'marks':>8}{'load':>7}")
    verdict = {True: "met", False: "NOT met", None: "not measured"}
    for arm in report["current"]:
        for label, row in (("this checkout", report["current"][arm]),
                           (f"baseline {report['baseline_ref']}", report["baseline"].get(arm))):
            if not row:
                continue
            if "unavailable" in row:
                print(f"{label:<22}{ARMS[arm][0]:<13} unavailable: {row['unavailable']}")
                continue
            marks = "full" if row["full_marks"] else "partial"
            print(f"{label:<22}{row['assignment']:<13}{row['wall_median']:>7.2f}{row['cpu_median']:>7.2f}"
                  f"{row['peak_mib']:>10.0f}{marks:>8}{row['load_1min']:>7.2f}")
            for k, run in enumerate(row["runs"]):
                what = f"warm-up {k + 1}" if run["warmup"] else f"submission {k + 1}"
                print(f"    {what:<14} wall {run['wall']:6.2f} s, CPU {run['grading_cpu']:5.2f} grading + "
                      f"{run['sandbox_cpu']:5.2f} sandbox, peak {run['peak_mib']:6.0f} MiB, "
                      f"grading process VmHWM {run.get('hwm_mib', 0):6.0f} MiB")
        ratios, target = report["ratios"][arm], report["targets"][arm]
        if ratios and ratios.get("comparable"):
            print(f"  {ARMS[arm][0]}: this checkout / baseline: wall x{ratios['wall']}, CPU x{ratios['cpu']} "
                  f"(grading x{ratios.get('grading_cpu')}, sandbox x{ratios.get('sandbox_cpu')}), "
                  f"peak x{ratios['peak']}")
        elif ratios:
            print(f"  {ARMS[arm][0]}: not comparable with the baseline: {ratios['why']}")
        print(f"  target: <= {target['seconds']:g} s ({verdict[target['time_met']]}), peak <= "
              f"{target['peak_mib']:g} MiB ({verdict[target['peak_met']]})")


if __name__ == "__main__":
    main()
