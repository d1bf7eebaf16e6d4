"""A small class in a real gradebook, for tests of what happens after grading: an
assignment spec with one written question and a late policy, results with two tests, and
`record` storing one grading exactly as `grader grade --out` does (Gradebook.record).

Shared by tests/test_gradebook_integrity.py and tests/test_gradebook_state.py (the latter
also imports it in its worker processes, so it must stay importable without TensorFlow).
"""
from __future__ import annotations

from pathlib import Path

from grader.classroom.process import Graded
from grader.assignment.late import LatePolicy, parse_time
from grader.results import Status, SubmissionResult, TestResult
from grader.assignment.written import Question, RubricLevel

WHY = Question("why_bn", "Why BatchNormalization after Conv2D?", 3.0,
               rubric=(RubricLevel(3, "stable input distributions"), RubricLevel(0, "no reason")))
ON_TIME = parse_time("2026-12-01T11:00:00+00:00").timestamp()


class Spec:
    """What Gradebook.bind reads of an assignment."""
    name = "conv_bn"
    title = "Conv + BN"
    root = Path("/nowhere")
    reference = Path("/nowhere/reference.py")
    exercises = ("standardize", "happyModel")
    total_points = None
    fingerprint = "f" * 16
    late = LatePolicy(due=parse_time("2026-12-01T12:00:00+00:00"), per_day=10, cap=30, grace_minutes=15)

    def __init__(self, questions=(WHY,)):
        self.questions = tuple(questions)


def result(key: str, order: float = 0.0, *, message: str = "ReLU comes before BatchNormalization") -> SubmissionResult:
    return SubmissionResult(key, "conv_bn", tests=[
        TestResult("values", "standardize", 2.0, 2.0, Status.PASSED, nodeid="t.py::test_values", number="1.1"),
        TestResult("layer order", "happyModel", order, 4.0, Status.FAILED if order < 4 else Status.PASSED,
                   message=message, nodeid="t.py::test_order", number="2.1")])


def record(book, key: str, *, sha: str = "aaa", order: float = 0.0, answer: str | None = "Stable inputs.",
           mtime: float = ON_TIME, fingerprint: str = "f" * 16, message: str = "ReLU comes before BatchNormalization",
           code: dict | None = None, question: str = "why_bn"):
    """Store one grading of `key` (answer None: the notebook held no answer cell)."""
    run = book.start_run(fingerprint=fingerprint, command="test", backend="local", found=1, to_grade=1)
    answers = {} if answer is None else {question: {"text": answer, "cell": 7}}
    graded = Graded(Path(key), result(key, order, message=message), sha256=sha, answers=answers,
                    fingerprint=fingerprint, order=1, code=code or {})
    return book.record(submission=key, student_key=Path(key).stem, graded=graded, run_id=run, mtime=mtime,
                       fingerprint=fingerprint)


def derived_files(folder: Path) -> dict[str, bytes]:
    """Every derived file of a results folder (grades.csv/json, feedback/**), by relative path."""
    folder = Path(folder)
    out = {}
    for name in ("grades.csv", "grades.json"):
        if (folder / name).is_file():
            out[name] = (folder / name).read_bytes()
    if (folder / "feedback").is_dir():
        for path in sorted((folder / "feedback").rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                out[str(path.relative_to(folder))] = path.read_bytes()
    return out


def fresh_derivation(folder: Path, scratch: Path) -> dict[str, bytes]:
    """What the derived files must hold now: the gradebook copied (SQLite's backup, a
    consistent copy even while others write) and derived from scratch."""
    import shutil
    import sqlite3

    from grader.classroom.gradebook import FILENAME, Gradebook
    from grader.classroom.outputs import export_grades
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    source = sqlite3.connect(Path(folder) / FILENAME)
    target = sqlite3.connect(scratch / FILENAME)
    with target:
        source.backup(target)
    source.close()
    target.close()
    with Gradebook(scratch, create=False) as book:
        export_grades(book)
    return derived_files(scratch)


def differences(folder: Path, scratch: Path) -> list[str]:
    """The derived files of `folder` that differ from a fresh derivation of its gradebook."""
    have, want = derived_files(folder), fresh_derivation(folder, scratch)
    out = [f"missing: {name}" for name in sorted(set(want) - set(have))]
    out += [f"left over: {name}" for name in sorted(set(have) - set(want))]
    out += [f"differs: {name}" for name in sorted(set(want) & set(have)) if want[name] != have[name]]
    return out
