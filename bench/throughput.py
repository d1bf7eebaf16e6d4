"""Grading throughput: submissions per minute with 1, 2 and all cores, and on a Dask cluster.

    python bench/throughput.py [--n 100] [--configs 1,2,all,cluster] [--json]

Grades the same generated class (bench/submissions.py) once per configuration. Two rates
per configuration, since they answer different questions:

* overall: n / wall time from the start of the run to the last result, start-up of the
  grading processes and their sandbox workers included (what a run of n costs);
* steady: results after the first / time from the first result to the last (what one
  more submission costs once everything is warm; this is what scales with n).

"cluster" is a LocalCluster of 2 worker processes (one thread each) on 127.0.0.1; its own
start-up is not counted, as a real cluster is already running, but registering the
grader on its workers (which starts their sandbox workers) is.

Output: a table, or with --json one JSON object per configuration per line.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))  # run as a script from a checkout
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from submissions import generate  # noqa: E402

from grader.assignment.spec import load_assignment  # noqa: E402
from grader.classroom.batch import Options, default_jobs, grade_stream  # noqa: E402


def measure(label: str, stream, n: int) -> dict:
    started = time.perf_counter()
    first = last = None
    scores = {}
    ungraded = 0
    for graded in stream:
        now = time.perf_counter()
        first = now if first is None else first
        last = now
        scores[graded.result.submission] = graded.result.score
        ungraded += bool(graded.result.errors)
    total = (last or time.perf_counter()) - started
    steady = (len(scores) - 1) / (last - first) * 60 if first is not None and last > first else None
    return {"config": label, "n": n, "results": len(scores), "ungraded": ungraded,
            "seconds": round(total, 2), "startup_seconds": round((first or started) - started, 2),
            "per_minute": round(len(scores) / total * 60, 1) if total > 0 else None,
            "steady_per_minute": round(steady, 1) if steady is not None else None,
            "_scores": scores}


def configurations(requested: list[str]) -> list[tuple[str, int | None]]:
    """(label, jobs) per run, jobs None for the cluster. On a 2-core machine "2" and "all"
    are the same run: measured once, labelled as both."""
    cores = default_jobs()
    runs: dict[int | None, str] = {}
    for name in requested:
        if name == "cluster":
            runs[None] = "LocalCluster, 2 workers"
            continue
        jobs = cores if name == "all" else int(name)
        if jobs < 1:
            raise ValueError(f"not a number of cores: {name}")
        runs.setdefault(jobs, f"{jobs} core{'s' * (jobs != 1)}" + (" (all)" if jobs == cores else ""))
    return [(label, jobs) for jobs, label in runs.items()]


def run(n: int, requested: list[str], folder: Path) -> list[dict]:
    paths = [g.path for g in generate(folder, n)]
    options = Options(assignment="conv_bn")
    rows = []
    for label, jobs in configurations(requested):
        if jobs is None:
            from grader.classroom.cluster import grade_on_cluster, local_cluster
            fingerprint = load_assignment("conv_bn").fingerprint
            with local_cluster(n_workers=2) as cluster:
                row = measure(label, grade_on_cluster(paths, options, cluster.scheduler_address,
                                                      fingerprint=fingerprint), n)
            row["jobs"] = 2
        else:
            row = measure(label, grade_stream(paths, options, jobs=jobs), n)
            row["jobs"] = jobs
        rows.append(row)
    reference = rows[0]["_scores"] if rows else {}
    for row in rows:
        row["scores_agree"] = row.pop("_scores") == reference
    return rows


def table(rows: list[dict]) -> str:
    head = f"{'configuration':<26}{'n':>5}{'seconds':>9}{'start-up':>10}{'per min':>9}{'steady/min':>12}  agree"
    lines = [head, "-" * len(head)]
    for r in rows:
        steady = "-" if r["steady_per_minute"] is None else f"{r['steady_per_minute']:.1f}"
        lines.append(f"{r['config']:<26}{r['results']:>5}{r['seconds']:>9.1f}{r['startup_seconds']:>10.1f}"
                     f"{r['per_minute']:>9.1f}{steady:>12}  {'yes' if r['scores_agree'] else 'NO'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100, help="submissions to grade per configuration")
    parser.add_argument("--configs", default="1,2,all,cluster",
                        help="comma-separated: a number of cores, 'all', 'cluster'")
    parser.add_argument("--json", action="store_true", help="one JSON object per configuration per line")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be at least 1")
    requested = [c.strip() for c in args.configs.split(",") if c.strip()]
    try:
        configurations(requested)
    except ValueError as exc:
        parser.error(f"--configs: {exc}")
    with tempfile.TemporaryDirectory(prefix="grader-throughput-") as folder:
        rows = run(args.n, requested, Path(folder))
    if args.json:
        for row in rows:
            print(json.dumps(row), flush=True)
    else:
        print(f"throughput on {default_jobs()} cores, {args.n} generated conv_bn submissions")
        print(table(rows))
    return 0 if all(r["scores_agree"] and r["results"] == args.n for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
