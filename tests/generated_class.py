"""A generated class of conv_bn submissions and its serial grading, shared by the batch,
cluster and report tests of one pytest session (grading the class serially is the
expensive part, and every other path is compared against it).

The serial grading runs in a `grader` subprocess, so the test process never imports
TensorFlow: other tests may fork, and a process forked after a TensorFlow op hangs.

Under pytest-xdist those tests may run on either worker; with `SHARED` (a folder of the
run's, set by tests/conftest.py) the class is generated and graded once per run, under a
lock the other worker waits on, and read back from the folder: every test reads the same
grading, as in a serial run. The tests only read the class and its gradebook.
"""
from __future__ import annotations

import atexit
import fcntl
import importlib.util
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GRADER = str(Path(sys.executable).with_name("grader"))
# Every kind of submission appears among the first ten (bench/submissions.py writes one of
# each before drawing at random), which the cluster test grades; twenty is enough for each
# grading process of a parallel run to grade several, and for the killed run's subset of 12.
CLASS_SIZE = 20


def _bench_module():
    name = "bench_submissions"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / "submissions.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def generate(out: Path, n: int, seed: int = 0):
    return _bench_module().generate(out, n, seed=seed)


@dataclass
class SerialRun:
    submissions: Path  # the generated class
    results: Path  # the gradebook folder of `grader grade --jobs 1 --out`
    json_lines: dict  # key -> the JSON object printed for that submission
    stderr: str
    returncode: int


_cache: dict[int, SerialRun] = {}
# The run's folder for the class and its grading (see the module's docstring); None: this process's own.
SHARED: Path | None = None


def _grade_serially(base: Path, n: int) -> SerialRun:
    submissions, results = base / "submissions", base / "results"
    generate(submissions, n)
    proc = subprocess.run([GRADER, "grade", str(submissions), "-a", "conv_bn", "--jobs", "1", "--out", str(results),
                           "--format", "json"], capture_output=True, text=True, timeout=900, cwd=ROOT)
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    by_key = {Path(d["submission"]).relative_to(submissions).as_posix(): d for d in lines}
    return SerialRun(submissions, results, by_key, proc.stderr, proc.returncode)


def _shared_serial_run(folder: Path, n: int) -> SerialRun:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the other worker grading it: wait, then read its grading
        record, base = folder / f"class-{n}.json", folder / f"class-{n}"
        if record.is_file():
            done = json.loads(record.read_text())
            return SerialRun(base / "submissions", base / "results", done["json_lines"], done["stderr"],
                             done["returncode"])
        shutil.rmtree(base, ignore_errors=True)  # a grading cut short
        run = _grade_serially(base, n)
        record.write_text(json.dumps({"json_lines": run.json_lines, "stderr": run.stderr,
                                      "returncode": run.returncode}))
        return run


def serial_run(n: int = CLASS_SIZE) -> SerialRun:
    if n in _cache:
        return _cache[n]
    if SHARED is not None:
        _cache[n] = _shared_serial_run(SHARED, n)
        return _cache[n]
    base = Path(tempfile.mkdtemp(prefix="grader-class-"))
    atexit.register(shutil.rmtree, base, True)
    _cache[n] = _grade_serially(base, n)
    return _cache[n]


def gradebook_summary(folder: Path, keys=None) -> dict:
    """What must agree between two gradings of the same notebooks: status, score and every
    test's score and status, per submission (hosts, times and messages may differ)."""
    db = sqlite3.connect(f"file:{folder / 'gradebook.sqlite'}?mode=ro", uri=True)
    try:
        out = {}
        for sub, status, score, max_score in db.execute(
                "SELECT submission, status, score, max_score FROM submissions"):
            if keys is None or sub in keys:
                out[sub] = {"status": status, "score": score, "max_score": max_score, "tests": {}, "code": {}}
        for sub, exercise, name, test_status, score in db.execute(
                "SELECT submission, exercise, name, status, score FROM tests"):
            if sub in out:
                out[sub]["tests"][f"{exercise} · {name}"] = (test_status, score)
        for sub, exercise, normalized in db.execute("SELECT submission, exercise, normalized FROM code"):
            if sub in out:
                out[sub]["code"][exercise] = normalized
        return out
    finally:
        db.close()


def result_summary(d: dict) -> dict:
    """The same facts from a JSON result line or `SubmissionResult.to_dict()` (statuses as
    the JSON line exports them: a test not run counts as failed)."""
    def external(status: str) -> str:
        return "passed" if status == "passed" else "failed"
    return {"graded": not d["errors"], "score": d["score"],
            "tests": {f"{t['exercise']} · {t['name']}": (external(t["status"]), t["score"]) for t in d["tests"]}}


def copy_subset(run: SerialRun, target: Path, count: int) -> list[str]:
    """The first `count` submissions (by key) copied with their layout; returns their keys."""
    keys = sorted(run.json_lines)[:count]
    for key in keys:
        destination = target / key
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(run.submissions / key, destination)
    return keys


def processes_with_marker(marker: str) -> list[int]:
    """Processes whose environment carries `marker` (inherited from a test's subprocess)."""
    found = []
    needle = marker.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found
