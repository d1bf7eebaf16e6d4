#!/usr/bin/env python3
"""How fast and how heavy this grader is next to the way nbgrader and otter-grader grade.

    python bench/compare.py                      # the default run: about 11 min on 2 cores
    python bench/compare.py --full               # the executing tools on all 50 too: about 40 min
    python bench/compare.py --no-nbgrader        # never installs anything

Three ways of grading the same conv_bn submissions (the eight samples, repeated):

* **grader**: this project. The CLI once from cold (`grader grade X --format json`), then
  `grade_stream` (what `grade_many` yields) with 1 and 2 grading processes.
* **nbclient**: a fresh Jupyter kernel per notebook executing every cell, which is how
  nbgrader and otter-grader run a submission; with 1 kernel at a time (nbgrader) and 2
  (otter runs several containers side by side). The notebooks' `check(...)` cells run with
  GRADER_SELF_CHECK=off, so they print one line and return: the tool under test grades.
* **nbgrader**: nbgrader's own `autograde` (installed from PyPI into bench/.venv-nbgrader,
  with the same TensorFlow, NumPy and matplotlib as ours) on the notebooks converted to
  its format (see `_nbgrader_course.py`).

Why the executing tools run a *bounded* copy of each notebook: every sample trains a
network in its experiment cell (about 45 s here) and `broken_tags` adds a `model.fit` that
would train for hours. Run as submitted, nbgrader's default 30 s per-cell timeout would
cut both, and a run of 50 would take most of an hour. The bounded copy changes exactly
the edits in BOUNDED_EDITS (1 epoch on 64 images), which makes those tools *faster* than
they are on the real notebooks: their times here are lower bounds, and every time ratio
in the grader's favour is an underestimate. `--unbounded` runs the notebooks as submitted,
with the 30 s per-cell timeout as the only cap. The grader always grades the originals: it
never runs those cells.

Why the executing tools run a subset by default: they start a kernel and import
TensorFlow for every notebook, so each of the 50 costs about the same as the same sample
did once. The default measures one copy of each sample (`--exec-submissions 8`) and
projects larger classes from those per-sample times; projected cells are marked `*`.
`--full` measures them on every submission instead.

Memory is the peak of what the measured process tree would need on a machine of its own,
sampled from /proc every 0.2 s (see TreeSampler for why neither summed RSS nor PSS is that).

Writes bench/out/compare.json (everything measured), compare.md (the tables and the
command, for the README) and compare.png; prints the tables to stdout. Not a test: its
numbers depend on the machine and on what else runs on it (the load average is recorded).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
ASSIGNMENT = ROOT / "assignments" / "conv_bn"
SAMPLES = ASSIGNMENT / "samples"
# `correct` first: the cold start of every tool is measured on the first submission.
KINDS = ("correct", "bn_missing", "broken_tags", "eps_outside_sqrt", "mixed", "relu_before_bn", "template",
         "test_stats_leak")
CELL_TIMEOUT = 30  # nbgrader's default per-cell timeout; the same for the nbclient arm
MIB = 1024 * 1024


# ---------------------------------------------------------------- the submissions

@dataclass(frozen=True)
class Edit:
    old: str
    new: str
    why: str


BOUNDED_EDITS = (
    Edit("model.fit(train_images, y_train, epochs=10,", "model.fit(train_images[:64], y_train[:64], epochs=1,",
         "experiment cell: 4 trainings of 10 epochs on 480 images become 1 epoch on 64 images"),
    Edit("validation_data=(test_images, y_test)", "validation_data=(test_images[:32], y_test[:32])",
         "experiment cell: validation on 32 of the 120 test images"),
    Edit("load_faces(n_train=20000, n_test=2)", "load_faces(n_train=64, n_test=2)",
         "broken_tags' extra cell: 64 training images instead of 20000"),
    Edit("epochs=200", "epochs=1", "broken_tags' extra cell: 1 epoch instead of 200"),
)


class UnboundedTraining(RuntimeError):
    pass


def bounded(nb, name: str):
    """A copy of `nb` whose training is cut to seconds, refusing any `.fit(` left untouched.

    The refusal matters more than the edits: if the master gains a training cell these
    edits do not know, a silent pass-through would let a benchmark run for hours.
    """
    import copy
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        before = cell.source
        for edit in BOUNDED_EDITS:
            cell.source = cell.source.replace(edit.old, edit.new)
        if ".fit(" in cell.source and cell.source == before:
            raise UnboundedTraining(f"{name}: a cell calls .fit( that no edit in BOUNDED_EDITS bounds; "
                                    f"add one to bench/compare.py:\n{before[:300]}")
    return nb


@dataclass(frozen=True)
class Sub:
    index: int
    kind: str
    student: str
    original: Path  # what the grader grades
    executed: Path  # what the executing tools run (bounded unless --unbounded)


def kinds_for(n: int, kinds=KINDS) -> list[str]:
    return [kinds[i % len(kinds)] for i in range(n)]


def write_submissions(work: Path, n: int, kinds=KINDS, *, unbounded: bool = False) -> list[Sub]:
    """n copies of the samples, cycling through `kinds`, each in a student's folder layout:
    the executing tools run a notebook in its own folder, so faces.py sits beside it."""
    import nbformat
    originals, executed = work / "submissions", work / "executed"
    for folder in (originals, executed):
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
    shutil.copy(ASSIGNMENT / "faces.py", executed / "faces.py")
    notebooks = {kind: nbformat.read(SAMPLES / f"{kind}.ipynb", as_version=4) for kind in set(kinds)}
    runnable = {kind: nb if unbounded else bounded(nb, f"{kind}.ipynb") for kind, nb in notebooks.items()}
    subs = []
    for i, kind in enumerate(kinds_for(n, kinds)):
        student = f"s{i:03d}_{kind}"
        shutil.copy(SAMPLES / f"{kind}.ipynb", originals / f"{student}.ipynb")
        nbformat.write(runnable[kind], executed / f"{student}.ipynb")
        subs.append(Sub(i, kind, student, originals / f"{student}.ipynb", executed / f"{student}.ipynb"))
    return subs


# ---------------------------------------------------------------- measuring a process tree

def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: split after its last ')'.
        fields = stat[stat.rfind(b")") + 2:].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def _tree(root: int) -> list[int]:
    children = _children_map()
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(children.get(pid, ()))
    return pids


_ROLLUP_FIELDS = ("Rss", "Pss", "Shared_Clean", "Shared_Dirty", "Private_Clean", "Private_Dirty")


def _memory_kib(pid: int) -> dict[str, int]:
    """The fields of smaps_rollup we need, in KiB; from statm (RSS only) on kernels without it."""
    values = dict.fromkeys(_ROLLUP_FIELDS, 0)
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in values:
                    values[key] = int(rest.split()[0])
        return values
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open(f"/proc/{pid}/statm") as f:
            rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
        values.update(Rss=rss, Pss=rss, Private_Dirty=rss)
    except OSError:
        pass
    return values


class TreeSampler(threading.Thread):
    """Peak memory of a process and all its descendants, polled from /proc (no cgroup needed).

    The headline figure, `peak_mib`, is the memory the tree would need on a machine of its
    own: every process's private pages, plus the shared pages once (the largest shared set
    of any one process). Summed RSS counts TensorFlow's library pages once per process and
    a forked child's copy-on-write pages twice; PSS avoids that but also gives away the
    share of any page that *another* program on the machine maps (another TensorFlow
    process, on a busy machine), so it reads lower the busier the machine is. Both are
    kept in the JSON for comparison.
    """

    def __init__(self, root: int, interval: float = 0.2):
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.peak = dict.fromkeys(("tree", "pss", "rss", "process_rss", "processes"), 0)
        self._stop_event = threading.Event()

    def sample(self) -> None:
        pids = _tree(self.root)
        private = shared = pss = rss = 0
        for pid in pids:
            m = _memory_kib(pid)
            private += m["Private_Clean"] + m["Private_Dirty"]
            shared = max(shared, m["Shared_Clean"] + m["Shared_Dirty"])
            pss += m["Pss"]
            rss += m["Rss"]
            self.peak["process_rss"] = max(self.peak["process_rss"], m["Rss"])
        for key, value in (("tree", private + shared), ("pss", pss), ("rss", rss), ("processes", len(pids))):
            self.peak[key] = max(self.peak[key], value)

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(self.interval)

    def stop(self) -> dict:
        self._stop_event.set()
        self.join()
        mib = lambda kib: round(kib / 1024, 1)  # noqa: E731
        return {"peak_mib": mib(self.peak["tree"]), "peak_pss_sum_mib": mib(self.peak["pss"]),
                "peak_rss_sum_mib": mib(self.peak["rss"]), "largest_process_rss_mib": mib(self.peak["process_rss"]),
                "peak_processes": self.peak["processes"]}


@dataclass
class Run:
    cmd: list[str]
    returncode: int
    started: float
    ended: float
    memory: dict
    stdout: str
    stderr_lines: list[tuple[float, str]]
    timed_out: bool = False

    @property
    def wall(self) -> float:
        return self.ended - self.started

    def stderr_tail(self, n: int = 25) -> str:
        return "\n".join(line for _, line in self.stderr_lines[-n:])


def run_measured(cmd: list[str], *, cwd: Path | None = None, env: dict | None = None,
                 timeout: float = 3600.0) -> Run:
    """Run a command to completion, timing it and sampling its tree's memory.

    Each stderr line keeps the moment it arrived: nbgrader says when it starts a student
    only in its log, so that is where its per-submission times come from.
    """
    started = time.time()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True)
    sampler = TreeSampler(proc.pid)
    sampler.start()
    out: list[str] = []
    lines: list[tuple[float, str]] = []
    readers = [threading.Thread(target=lambda: out.append(proc.stdout.read()), daemon=True),
               threading.Thread(target=lambda: [lines.append((time.time(), line.rstrip("\n")))
                                                for line in proc.stderr], daemon=True)]
    for reader in readers:
        reader.start()
    timed_out = False
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGKILL)  # our own child's group, started above
        proc.wait()
    except KeyboardInterrupt:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    ended = time.time()
    memory = sampler.stop()
    for reader in readers:
        reader.join(timeout=10)
    return Run(cmd, proc.returncode, started, ended, memory, "".join(out), lines, timed_out)


# ---------------------------------------------------------------- the arms, run in a child process

def _arm_grader(spec: dict) -> dict:
    from grader.classroom.batch import Options, grade_stream
    records = []
    paths = [Path(p) for p in spec["paths"]]
    for graded in grade_stream(paths, Options(assignment=str(ASSIGNMENT)), jobs=spec["jobs"]):
        r = graded.result
        records.append({"name": graded.path.name, "done": time.time(), "service": graded.wall, "worker": graded.host,
                        "score": r.score, "max_score": r.max_score, "errors": r.errors[:2],
                        "isolation": getattr(r, "isolation", "")})
    return {"records": records}


def _arm_nbclient(spec: dict) -> dict:
    import nbformat
    from concurrent.futures import ThreadPoolExecutor
    from nbclient import NotebookClient

    os.environ["GRADER_SELF_CHECK"] = "off"

    def execute(path: str) -> dict:
        nb = nbformat.read(path, as_version=4)
        start = time.time()
        client = NotebookClient(nb, timeout=spec["cell_timeout"], interrupt_on_timeout=True, allow_errors=True,
                                kernel_name="python3", resources={"metadata": {"path": str(Path(path).parent)}},
                                error_on_timeout={"ename": "CellTimeoutError", "evalue": "",
                                                  "traceback": ["CellTimeoutError: no reply before the timeout"]})
        failure = ""
        try:
            client.execute()
        except Exception as exc:  # noqa: BLE001 - a kernel that died is a result, not a crash
            failure = f"{type(exc).__name__}: {str(exc)[:300]}"
        done = time.time()
        errors = [o.get("ename", "") for c in nb.cells if c.cell_type == "code"
                  for o in c.get("outputs", []) if o.get("output_type") == "error"]
        return {"name": Path(path).name, "start": start, "done": done, "service": done - start,
                "error_cells": len(errors), "timeouts": errors.count("CellTimeoutError"), "failure": failure}

    with ThreadPoolExecutor(max_workers=spec["jobs"]) as pool:
        records = list(pool.map(execute, spec["paths"]))
    return {"records": records}


def arm_main(argv: list[str]) -> int:
    """Entry point of a measured child: `compare.py _arm SPEC.json RESULT.json`."""
    spec = json.loads(Path(argv[0]).read_text())
    spec_started = time.time()
    result = {"grader": _arm_grader, "nbclient": _arm_nbclient}[spec["arm"]](spec)
    result["arm_started"] = spec_started
    Path(argv[1]).write_text(json.dumps(result))
    return 0


# ---------------------------------------------------------------- summaries

def _median(values) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 3) if values else None


def _per_min(count: int, seconds: float) -> float | None:
    return round(60.0 * count / seconds, 1) if count > 0 and seconds > 0 else None


@dataclass
class Row:
    """One line of the steady-state table, and everything behind it."""
    tool: str
    how: str
    workers: int
    submissions: int
    per_submission_s: float | None = None  # median
    throughput_per_min: float | None = None  # steady state: one-time start-up excluded
    total_s: float | None = None  # process start to last result
    peak_mib: float | None = None
    projected: bool = False
    available: bool = True
    reason: str = ""
    detail: dict = field(default_factory=dict)

    @property
    def per_worker_mib(self) -> float | None:
        return round(self.peak_mib / self.workers, 1) if self.peak_mib else None


def summarize_grader(run: Run, result: dict, jobs: int) -> dict:
    """Each grading process's first submission also waits for its sandbox worker to finish
    importing TensorFlow: that is start-up, paid once per process, so it is left out of the
    per-submission median and of the steady throughput (and kept in the total)."""
    records = result["records"]
    seen, steady = set(), []
    for rec in records:
        if rec["worker"] in seen:
            steady.append(rec["service"])
        seen.add(rec["worker"])
    done = sorted(rec["done"] for rec in records)
    w = min(jobs, len(done))
    if len(done) > w:
        throughput = _per_min(len(done) - w, done[-1] - done[w - 1])
    else:
        throughput = _per_min(len(done), run.ended - run.started)
    return {"per_submission_s": _median(steady) if steady else _median(r["service"] for r in records),
            "throughput_per_min": throughput, "total_s": round(run.wall, 2),
            "first_result_s": round(done[0] - run.started, 2) if done else None,
            "graded": sum(1 for r in records if not r["errors"]), "count": len(records),
            "isolation": sorted({r["isolation"] for r in records}),
            "scores": {r["name"]: [r["score"], r["max_score"]] for r in records}}


def summarize_nbclient(run: Run, result: dict) -> dict:
    """Every notebook is a cold start by design (a fresh kernel), so none is left out."""
    records = result["records"]
    first_start = min(r["start"] for r in records)
    last_done = max(r["done"] for r in records)
    return {"per_submission_s": _median(r["service"] for r in records),
            "throughput_per_min": _per_min(len(records), last_done - first_start),
            "total_s": round(run.wall, 2), "start_up_s": round(first_start - run.started, 2),
            "per_notebook": {r["name"]: round(r["service"], 2) for r in records},
            "error_cells": {r["name"]: r["error_cells"] for r in records},
            "timeouts": sum(r["timeouts"] for r in records),
            "failures": {r["name"]: r["failure"] for r in records if r["failure"]}}


def nbgrader_students(run: Run) -> dict[str, tuple[float, float]]:
    """(start, end) of each student from nbgrader's log: a student ends where the next starts."""
    import re
    starts = [(t, m.group(1)) for t, line in run.stderr_lines
              if (m := re.search(r"Creating/updating student with ID '([^']+)'", line))]
    spans = {}
    for i, (t, student) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else run.ended
        spans[student] = (t, end)
    return spans


# ---------------------------------------------------------------- the benchmark

class Bench:
    def __init__(self, args):
        self.args = args
        self.out = Path(args.out).resolve()
        self.work = self.out / "work"
        self.python = sys.executable
        self.log_lines: list[str] = []
        self.results: dict = {"cold": [], "steady": [], "scaling": [], "unavailable": {}, "setup": {}}

    def say(self, message: str) -> None:
        line = f"[compare {time.strftime('%H:%M:%S')}] {message}"
        self.log_lines.append(line)
        print(line, file=sys.stderr, flush=True)

    # -- helpers
    def _child_env(self) -> dict:
        env = dict(os.environ)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        env["JUPYTER_PREFER_ENV_PATH"] = "1"  # the environment's own python3 kernel, not a user-wide one
        return env

    def _arm(self, arm: str, paths: list[Path], jobs: int, tag: str) -> tuple[Run, dict]:
        spec_file, result_file = self.work / f"{tag}.spec.json", self.work / f"{tag}.result.json"
        result_file.unlink(missing_ok=True)
        spec_file.write_text(json.dumps({"arm": arm, "paths": [str(p) for p in paths], "jobs": jobs,
                                         "cell_timeout": self.args.cell_timeout}))
        # Generous, only to stop a hung tool: 120 s per notebook and worker, plus start-up.
        timeout = 300 + 120 * len(paths) / jobs
        run = run_measured([self.python, str(Path(__file__).resolve()), "_arm", str(spec_file), str(result_file)],
                           cwd=ROOT, env=self._child_env(), timeout=timeout)
        if run.returncode != 0 or not result_file.exists():
            raise RuntimeError(f"{arm} arm ({tag}) failed with status {run.returncode}"
                               f"{' (timed out)' if run.timed_out else ''}:\n{run.stderr_tail()}")
        return run, json.loads(result_file.read_text())

    def _grader_cli(self) -> list[str]:
        script = Path(self.python).parent / "grader"
        return [str(script)] if script.exists() else [self.python, "-m", "grader"]

    # -- arms
    def cold_grader(self, sub: Sub) -> None:
        if self.args.cold_repeats < 1:
            return
        walls, memories, load = [], [], _load()
        for i in range(self.args.cold_repeats):
            run = run_measured(self._grader_cli() + ["grade", str(sub.original), "--assignment", "conv_bn",
                                                     "--format", "json"], cwd=ROOT, env=self._child_env(), timeout=600)
            lines = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
            if run.returncode not in (0, 1) or len(lines) != 1 or "score" not in lines[0]:
                raise RuntimeError(f"`grader grade` did not print one JSON result (status {run.returncode}):\n"
                                   f"{run.stdout[-500:]}\n{run.stderr_tail()}")
            walls.append(run.wall)
            memories.append(run.memory["peak_mib"])
            self.say(f"grader cold start {i + 1}/{self.args.cold_repeats}: {run.wall:.1f} s, "
                     f"score {lines[0]['score']:g}/{lines[0]['max_score']:g}")
        self.results["cold"].append({"tool": "grader", "command": "grader grade X --assignment conv_bn --format json",
                                     "seconds": _median(walls), "runs": [round(w, 2) for w in walls],
                                     "peak_mib": max(memories), "load": load})

    def cold_nbclient(self, sub: Sub) -> None:
        script = Path(self.python).parent / "jupyter-execute"
        cmd = ([str(script)] if script.exists() else [self.python, "-c", "from nbclient.cli import main; main()"])
        cmd += [str(sub.executed), f"--timeout={self.args.cell_timeout}", "--allow-errors", "--kernel_name=python3"]
        env = {**self._child_env(), "GRADER_SELF_CHECK": "off"}
        if self.args.exec_cold_repeats < 1:
            return
        walls, memories, load = [], [], _load()
        for _ in range(self.args.exec_cold_repeats):
            run = run_measured(cmd, cwd=sub.executed.parent, env=env, timeout=900)
            if run.returncode != 0:
                raise RuntimeError(f"jupyter execute failed (status {run.returncode}):\n{run.stderr_tail()}")
            walls.append(run.wall)
            memories.append(run.memory["peak_mib"])
        self.say(f"nbclient cold start (jupyter execute): {statistics.median(walls):.1f} s")
        self.results["cold"].append({"tool": "nbclient", "command": "jupyter execute X --allow-errors "
                                     f"--timeout={self.args.cell_timeout}", "seconds": _median(walls),
                                     "runs": [round(w, 2) for w in walls], "peak_mib": max(memories),
                                     "load": load})

    def steady_grader(self, subs: list[Sub], jobs: int) -> Row:
        load = _load()
        run, result = self._arm("grader", [s.original for s in subs], jobs, f"grader-j{jobs}-n{len(subs)}")
        summary = summarize_grader(run, result, jobs)
        if summary["graded"] != summary["count"]:
            self.say(f"warning: {summary['count'] - summary['graded']} submission(s) not graded")
        self.say(f"grader jobs={jobs} n={len(subs)}: total {summary['total_s']:.1f} s, "
                 f"median {summary['per_submission_s']:.2f} s, {summary['throughput_per_min']:.0f}/min, "
                 f"peak {run.memory['peak_mib']:.0f} MiB")
        return Row("grader", "grade_many", jobs, len(subs), summary["per_submission_s"],
                   summary["throughput_per_min"], summary["total_s"], run.memory["peak_mib"],
                   detail={**summary, "memory": run.memory, "load": load})

    def steady_nbclient(self, subs: list[Sub], jobs: int) -> Row:
        load = _load()
        run, result = self._arm("nbclient", [s.executed for s in subs], jobs, f"nbclient-j{jobs}-n{len(subs)}")
        summary = summarize_nbclient(run, result)
        self.say(f"nbclient jobs={jobs} n={len(subs)}: total {summary['total_s']:.1f} s, "
                 f"median {summary['per_submission_s']:.2f} s, peak {run.memory['peak_mib']:.0f} MiB"
                 + (f", {summary['timeouts']} cell timeout(s)" if summary["timeouts"] else ""))
        how = "fresh kernel per notebook" if jobs == 1 else f"{jobs} fresh kernels side by side"
        return Row("nbclient", how, jobs, len(subs), summary["per_submission_s"], summary["throughput_per_min"],
                   summary["total_s"], run.memory["peak_mib"],
                   detail={**summary, "memory": run.memory, "load": load})

    # -- nbgrader: install and set up, then a one-student cold start, then the batch.
    # Any failure marks the arm unavailable, with the reason, instead of ending the benchmark.
    def _nbgrader_unavailable(self, reason: str) -> None:
        self.say(f"nbgrader arm unavailable: {reason.splitlines()[0]}")
        self.results["unavailable"]["nbgrader"] = reason
        self._nbgrader_call = None

    def nbgrader_prepare(self, exec_subs: list[Sub]) -> None:
        import nbformat

        import _nbgrader_course as course
        import _nbgrader_env as nbenv

        self._nbgrader_call = None
        if self.args.no_nbgrader:
            return self._nbgrader_unavailable("skipped (--no-nbgrader)")
        self.say("preparing the nbgrader environment ...")
        env_or_reason = nbenv.ensure(Path(self.args.nbgrader_venv), nbgrader_spec=self.args.nbgrader_spec,
                                     log=self.out / "nbgrader-install.log", echo=self.say)
        if isinstance(env_or_reason, nbenv.Unavailable):
            return self._nbgrader_unavailable(env_or_reason.reason)
        nbg = env_or_reason
        self.results["setup"]["nbgrader"] = {"version": nbg.version, "requirements": list(nbg.requirements),
                                             "install_s": nbg.install_seconds}
        master = nbformat.read(ASSIGNMENT / "source" / "conv_bn.ipynb", as_version=4)
        if not self.args.unbounded:
            master = bounded(master, "source/conv_bn.ipynb")  # autograde restores locked cells from it
        submitted = [(s.student, nbformat.read(s.executed, as_version=4)) for s in exec_subs]
        root = course.build_course(self.work / "nbgrader-course", master, submitted, _exercises(),
                                   support=[ASSIGNMENT / "faces.py"], cell_timeout=self.args.cell_timeout)
        # An activated venv: nbgrader runs `alembic` from PATH.
        env = {**self._child_env(), "PATH": f"{nbg.venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
               "VIRTUAL_ENV": str(nbg.venv), "GRADER_SELF_CHECK": "off"}
        env.pop("PYTHONPATH", None)

        def call(*words: str, timeout: float = 600) -> Run:
            return run_measured(nbg.nbgrader + list(words), cwd=root, env=env, timeout=timeout)

        generate = call("generate_assignment", course.ASSIGNMENT_ID, "--force")
        if generate.returncode != 0:
            return self._nbgrader_unavailable(f"nbgrader generate_assignment failed:\n{generate.stderr_tail()}")
        self.results["setup"]["nbgrader"]["generate_assignment_s"] = round(generate.wall, 2)
        self._nbgrader_call, self._nbgrader_root, self._nbgrader_version = call, root, nbg.version

    def nbgrader_cold(self, sub: Sub) -> None:
        if self._nbgrader_call is None:
            return
        load = _load()
        cold = self._nbgrader_call("autograde", "conv_bn", "--student", sub.student, "--force", timeout=900)
        if cold.returncode != 0:
            return self._nbgrader_unavailable(f"nbgrader autograde failed on {sub.student}:\n{cold.stderr_tail()}")
        self.say(f"nbgrader cold start (autograde --student {sub.student}): {cold.wall:.1f} s")
        self.results["cold"].append({"tool": "nbgrader", "command": "nbgrader autograde conv_bn --student X",
                                     "seconds": round(cold.wall, 2), "runs": [round(cold.wall, 2)],
                                     "peak_mib": cold.memory["peak_mib"], "load": load})

    def nbgrader_batch(self, exec_subs: list[Sub]) -> Row:
        unavailable = Row("nbgrader", "autograde", 1, len(exec_subs), available=False)
        if self._nbgrader_call is None:
            unavailable.reason = self.results["unavailable"].get("nbgrader", "")
            return unavailable
        load = _load()
        batch = self._nbgrader_call("autograde", "conv_bn", "--force", timeout=300 + 150 * len(exec_subs))
        spans = nbgrader_students(batch)
        if batch.returncode != 0 or len(spans) != len(exec_subs):
            self._nbgrader_unavailable(f"nbgrader autograde failed (status {batch.returncode}, {len(spans)} of "
                                       f"{len(exec_subs)} students started):\n{batch.stderr_tail()}")
            unavailable.reason = self.results["unavailable"]["nbgrader"]
            return unavailable
        per_student = {student: round(end - start, 2) for student, (start, end) in spans.items()}
        first_start = min(start for start, _ in spans.values())
        detail = {"per_notebook": per_student, "start_up_s": round(first_start - batch.started, 2),
                  "scores": self._nbgrader_scores(self._nbgrader_call, self._nbgrader_root),
                  "memory": batch.memory, "version": self._nbgrader_version, "load": load}
        row = Row("nbgrader", f"autograde {self._nbgrader_version}", 1, len(exec_subs),
                  _median(per_student.values()), _per_min(len(spans), batch.ended - first_start),
                  round(batch.wall, 2), batch.memory["peak_mib"], detail=detail)
        self.say(f"nbgrader autograde n={len(exec_subs)}: total {batch.wall:.1f} s, "
                 f"median {row.per_submission_s:.2f} s, peak {row.peak_mib:.0f} MiB")
        return row

    def _nbgrader_scores(self, call, root: Path) -> dict:
        """Not timed: only to show that nbgrader really graded (its own scores, out of 4 test cells)."""
        import csv
        run = call("export", timeout=300)
        grades = root / "grades.csv"
        if run.returncode != 0 or not grades.exists():
            return {}
        with open(grades, newline="") as f:
            return {row["student_id"]: [float(row["score"] or 0), float(row["max_score"] or 0)]
                    for row in csv.DictReader(f)}

    # -- the whole run
    def run(self) -> dict:
        args = self.args
        t0 = time.time()
        if self.work.exists():
            shutil.rmtree(self.work)
        self.work.mkdir(parents=True)
        kinds = tuple(args.samples.split(",")) if args.samples else KINDS
        sizes = sorted({int(s) for s in args.sizes.split(",")} | {args.submissions})
        jobs_list = sorted({int(j) for j in args.jobs.split(",")})
        subs = write_submissions(self.work, max(sizes), kinds, unbounded=args.unbounded)
        n = args.submissions
        exec_n = n if args.full else min(args.exec_submissions or len(kinds), n)
        exec_subs = subs[:exec_n]
        self.results["machine"] = machine()
        self.results["settings"] = {
            "submissions": n, "sizes": sizes, "jobs": jobs_list, "exec_submissions": exec_n,
            "kinds": list(kinds), "bounded": not args.unbounded, "cell_timeout_s": args.cell_timeout,
            "cold_repeats": args.cold_repeats,
            "bounded_edits": [] if args.unbounded else [asdict(e) for e in BOUNDED_EDITS]}
        self.say(f"{n} submissions ({', '.join(kinds)} repeated); the executing tools run {exec_n} of them"
                 f"{'' if args.unbounded else ', bounded'}")

        # The install first: it is the step most likely to fail or be slow, and it must not
        # fall between measurements. Then the rows that are compared with each other are
        # measured one after the other, so a change in the machine's load hits them alike.
        self.nbgrader_prepare(exec_subs)
        self.cold_grader(subs[0])
        self.cold_nbclient(subs[0])
        self.nbgrader_cold(subs[0])

        steady, by_size = [], {}
        for jobs in jobs_list:
            by_size[(n, jobs)] = row = self.steady_grader(subs[:n], jobs)
            steady.append(row)
            steady.append(self.steady_nbclient(exec_subs, jobs))
            if jobs == 1:
                steady.append(self.nbgrader_batch(exec_subs))
        if 1 not in jobs_list:
            steady.append(self.nbgrader_batch(exec_subs))
        for jobs in jobs_list:
            for size in sizes:
                if (size, jobs) not in by_size:
                    by_size[(size, jobs)] = self.steady_grader(subs[:size], jobs)
        steady.sort(key=lambda r: (_TOOLS.index(r.tool) if r.tool in _TOOLS else 9, r.workers))
        self.results["steady"] = [_row_dict(r) for r in steady]
        self.results["scaling"] = scaling(sizes, jobs_list, by_size, steady, subs, exec_n)
        self.results["duration_s"] = round(time.time() - t0, 1)
        self.results["machine"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
        self.results["command"] = " ".join(["python", "bench/compare.py"] + [shlex.quote(a) for a in args.argv])
        return self.results


def _load() -> float:
    """The 1-minute load average when a measurement starts: other work on the machine
    slows every tool, so each row says how busy the machine was."""
    return round(os.getloadavg()[0], 2)


def _exercises() -> list[str]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    return list(tomllib.loads((ASSIGNMENT / "assignment.toml").read_text())["exercises"])


def _row_dict(row: Row) -> dict:
    d = asdict(row)
    d["per_worker_mib"] = row.per_worker_mib
    return d


def scaling(sizes, jobs_list, by_size, steady: list[Row], subs: list[Sub], exec_n: int) -> list[dict]:
    """Total time against class size: measured for the grader; for the executing tools,
    measured where they ran that many and otherwise projected from their per-sample times
    (start-up once, then each submission costs what its sample cost, shared by the workers)."""
    points = []
    for (size, jobs), row in sorted(by_size.items()):
        points.append({"tool": "grader", "workers": jobs, "submissions": size, "total_s": row.total_s,
                       "peak_mib": row.peak_mib, "per_worker_mib": row.per_worker_mib, "projected": False})
    for row in steady:
        if row.tool == "grader" or not row.available:
            continue
        per_kind: dict[str, list[float]] = {}
        for name, seconds in row.detail["per_notebook"].items():
            kind = Path(name).stem.split("_", 1)[1]
            per_kind.setdefault(kind, []).append(seconds)
        cost = {kind: statistics.median(v) for kind, v in per_kind.items()}
        typical = statistics.median(cost.values())  # for a sample the tool did not run (tiny runs only)
        start_up = row.detail.get("start_up_s", 0.0)
        for size in sorted(set(sizes) | {exec_n}):
            measured = size == exec_n
            total = row.total_s if measured else round(
                start_up + sum(cost.get(s.kind, typical) for s in subs[:size]) / row.workers, 1)
            points.append({"tool": row.tool, "workers": row.workers, "submissions": size, "total_s": total,
                           "peak_mib": row.peak_mib if measured else None,
                           "per_worker_mib": row.per_worker_mib, "projected": not measured})
    return points


def machine() -> dict:
    def meminfo_gib() -> float | None:
        try:
            with open("/proc/meminfo") as f:
                return round(int(f.readline().split()[1]) / 1024 ** 2, 1)
        except (OSError, ValueError, IndexError):
            return None

    def cpu_model() -> str:
        try:
            with open("/proc/cpuinfo") as f:
                return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
        except OSError:
            return ""

    import importlib.metadata as md

    def version(name: str) -> str:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return ""

    return {"cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "memory_gib": meminfo_gib(), "cpu": cpu_model(),
            "gpu": "yes" if any(Path("/dev").glob("nvidia[0-9]*")) else "none",
            "python": platform.python_version(), "os": platform.platform(),
            "tensorflow_cpu": version("tensorflow-cpu") or version("tensorflow"), "nbclient": version("nbclient"),
            "load_before": [round(x, 2) for x in os.getloadavg()]}


# ---------------------------------------------------------------- output

_TOOLS = ("grader", "nbclient", "nbgrader")


def _fmt(value, spec: str = ".1f", suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def _ratio(value, base) -> str:
    if value is None or base is None or base == 0:
        return "-"
    return f"{value / base:.1f}x"


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in rows])


def render(results: dict) -> str:
    steady = results["steady"]
    grader_rows = {r["workers"]: r for r in steady if r["tool"] == "grader"}
    base1 = grader_rows.get(1) or next(iter(grader_rows.values()), None)

    cold = sorted(results["cold"], key=lambda c: _TOOLS.index(c["tool"]) if c["tool"] in _TOOLS else 9)
    grader_cold = next((c["seconds"] for c in cold if c["tool"] == "grader"), None)
    cold_rows = [[c["tool"], f"`{c['command']}`", _fmt(c["seconds"], ".1f", " s"), _fmt(c["peak_mib"], ".0f"),
                  _ratio(c["seconds"], grader_cold), _fmt(c.get("load"), ".1f")] for c in cold]
    for tool, reason in results["unavailable"].items():
        cold_rows.append([tool, "unavailable", "-", "-", "-", "-"])

    rows = []
    for r in steady:
        if not r["available"]:
            rows.append([r["tool"], r["how"], str(r["workers"]), "-", "-", "-", "-", "-", "-", "-", "-", "-"])
            continue
        base = grader_rows.get(r["workers"]) or base1
        rows.append([r["tool"], r["how"], str(r["workers"]), str(r["submissions"]),
                     _fmt(r["per_submission_s"], ".2f", " s"), _fmt(r["throughput_per_min"], ".1f"),
                     _fmt(r["total_s"], ".1f", " s"), _fmt(r["peak_mib"], ".0f"), _fmt(r["per_worker_mib"], ".0f"),
                     "1.0x" if r["tool"] == "grader" else _ratio(r["per_submission_s"], base and base["per_submission_s"]),
                     "1.0x" if r["tool"] == "grader" else _ratio(base and base["throughput_per_min"],
                                                                 r["throughput_per_min"]),
                     _fmt(r["detail"].get("load"), ".1f")])

    sizes = results["settings"]["sizes"]
    series = sorted({(p["tool"], p["workers"]) for p in results["scaling"]},
                    key=lambda tw: (_TOOLS.index(tw[0]) if tw[0] in _TOOLS else 9, tw[1]))
    scale_rows = []
    for tool, workers in series:
        cells = [tool, str(workers)]
        for size in sizes:
            p = next((p for p in results["scaling"] if p["tool"] == tool and p["workers"] == workers
                      and p["submissions"] == size), None)
            cells.append("-" if p is None else _fmt(p["total_s"], ".0f", " s") + ("*" if p["projected"] else ""))
        grader_mem = [p["per_worker_mib"] for p in results["scaling"] if p["tool"] == tool and p["workers"] == workers
                      and p["per_worker_mib"]]
        cells.append(_fmt(max(grader_mem), ".0f") if grader_mem else "-")
        scale_rows.append(cells)

    m, s = results["machine"], results["settings"]
    if s["exec_submissions"] >= s["submissions"]:
        exec_note = f"The executing tools ran all {s['exec_submissions']} submissions"
    elif s["exec_submissions"] == len(s["kinds"]):
        exec_note = f"The executing tools ran the first {s['exec_submissions']} (one of each sample)"
    else:
        exec_note = f"The executing tools ran the first {s['exec_submissions']}"
    bound_note = ("the bounded copies (training cut to 1 epoch on 64 images: their times are lower bounds)"
                  if s["bounded"] else "the notebooks as submitted")
    parts = [
        f"Machine: {m['cores']} cores, {m['memory_gib']} GiB, GPU {m['gpu']}, Python {m['python']}, "
        f"tensorflow-cpu {m['tensorflow_cpu']}; load average {m['load_before'][0]} before, "
        f"{m.get('load_after', ['?'])[0]} after. Run took {results.get('duration_s', 0) / 60:.1f} min.",
        "",
        "Cold start, one submission (process start to result):",
        "",
        table(["tool", "command", "time", "peak MiB", "vs grader", "load"], cold_rows),
        "",
        f"Steady state on {s['submissions']} submissions. {exec_note}, on {bound_note}, with a "
        f"{s['cell_timeout_s']} s per-cell timeout. Per submission: median; throughput excludes one-time start-up; "
        "total includes it. Ratios are against the grader with the same number of workers. "
        "Load: the machine's 1-minute load average when the row's measurement started.",
        "",
        table(["tool", "how", "workers", "submissions", "per submission", "subs/min", "total", "peak MiB",
               "MiB/worker", "per-sub vs grader", "grader throughput x", "load"], rows),
        "",
        "Total time against class size (* = projected from the per-sample times above):",
        "",
        table(["tool", "workers"] + [f"{size} subs" for size in sizes] + ["largest MiB/worker"], scale_rows),
    ]
    if results["unavailable"]:
        parts += ["", "Unavailable: " + "; ".join(f"{tool}: {reason.splitlines()[0]}"
                                                  for tool, reason in results["unavailable"].items())]
    return "\n".join(parts)


def plot(results: dict, path: Path) -> Path | None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    colours = {"grader": "tab:green", "nbclient": "tab:orange", "nbgrader": "tab:red"}
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    (ax_cold, ax_sub), (ax_scale, ax_mem) = axes

    cold = sorted(results["cold"], key=lambda c: _TOOLS.index(c["tool"]) if c["tool"] in _TOOLS else 9)
    ax_cold.bar([c["tool"] for c in cold], [c["seconds"] for c in cold],
                color=[colours.get(c["tool"], "grey") for c in cold])
    ax_cold.set(title="Cold start: one submission, process start to result", ylabel="seconds")

    steady = [r for r in results["steady"] if r["available"]]
    labels = [f"{r['tool']}\n{r['workers']} worker{'s' if r['workers'] > 1 else ''}" for r in steady]
    bars = ax_sub.bar(labels, [r["per_submission_s"] for r in steady],
                      color=[colours.get(r["tool"], "grey") for r in steady])
    for bar, r in zip(bars, steady):
        ax_sub.annotate(f"{r['throughput_per_min']:.0f}/min", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=8)
    ax_sub.set_yscale("log")
    ax_sub.set(title="Per submission (median), with throughput", ylabel="seconds (log scale)")

    for tool, workers in sorted({(p["tool"], p["workers"]) for p in results["scaling"]}):
        pts = sorted((p for p in results["scaling"] if p["tool"] == tool and p["workers"] == workers),
                     key=lambda p: p["submissions"])
        ax_scale.plot([p["submissions"] for p in pts], [p["total_s"] for p in pts],
                      ls="-" if workers == 1 else "--", color=colours.get(tool, "grey"),
                      label=f"{tool}, {workers} worker{'s' if workers > 1 else ''}")
        measured = [p for p in pts if not p["projected"]]
        ax_scale.scatter([p["submissions"] for p in measured], [p["total_s"] for p in measured],
                         color=colours.get(tool, "grey"), zorder=3, s=18)
    ax_scale.set_xscale("log")
    ax_scale.set_yscale("log")
    ax_scale.set(title="Total time against class size (dots measured, rest projected)",
                 xlabel="submissions", ylabel="seconds")
    ax_scale.legend(fontsize=8)

    ax_mem.bar(labels, [r["per_worker_mib"] for r in steady], color=[colours.get(r["tool"], "grey") for r in steady])
    ax_mem.set(title="Peak memory per worker (process tree / workers)", ylabel="MiB")
    m = results["machine"]
    fig.suptitle(f"conv_bn, {results['settings']['submissions']} submissions - {m['cores']} cores, "
                 f"{m['memory_gib']} GiB, Python {m['python']}, tensorflow-cpu {m['tensorflow_cpu']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ---------------------------------------------------------------- command line

def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--submissions", type=int, default=50, help="class size of the steady-state table")
    p.add_argument("--sizes", default="10,50,200", help="class sizes for the scaling table (grader measured)")
    p.add_argument("--jobs", default="1,2", help="numbers of workers to measure")
    p.add_argument("--exec-submissions", type=int, default=0,
                   help="how many submissions the executing tools run (default: one of each sample)")
    p.add_argument("--full", action="store_true", help="the executing tools run every submission")
    p.add_argument("--samples", default="", help="comma-separated sample names to use (default: all eight)")
    p.add_argument("--unbounded", action="store_true",
                   help="execute the notebooks as submitted (training capped only by the per-cell timeout)")
    p.add_argument("--cell-timeout", type=int, default=CELL_TIMEOUT, help="per-cell timeout of the executing tools")
    p.add_argument("--cold-repeats", type=int, default=3, help="cold starts of the grader CLI (median reported)")
    p.add_argument("--exec-cold-repeats", type=int, default=1, help="cold starts of jupyter execute")
    p.add_argument("--no-nbgrader", action="store_true", help="skip the nbgrader arm (never installs anything)")
    p.add_argument("--nbgrader-venv", default=str(BENCH / ".venv-nbgrader"))
    p.add_argument("--nbgrader-spec", default="nbgrader==0.9.6", help="what pip installs for the nbgrader arm")
    p.add_argument("--out", default=str(BENCH / "out"))
    args = p.parse_args(argv)
    args.argv = argv
    unknown = [k for k in args.samples.split(",") if k and k not in KINDS]
    if unknown:
        p.error(f"unknown sample(s): {', '.join(unknown)}; choose from {', '.join(KINDS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_arm"]:
        return arm_main(argv[1:])
    args = parse_args(argv)
    sys.path.insert(0, str(BENCH))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    bench = Bench(args)
    results = bench.run()
    text = render(results)
    (out / "compare.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "compare.md").write_text(f"Command: `{results['command']}`\n\n{text}\n")
    png = plot(results, out / "compare.png")
    print(text)
    print(f"\nwrote {out / 'compare.json'}, {out / 'compare.md'}" + (f", {png}" if png else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
