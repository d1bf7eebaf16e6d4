"""A small class in a real gradebook, for tests of what happens after grading: an
assignment spec with one written question and a late policy, results with two tests, and
`record` storing one grading exactly as `grader grade --out` does (Gradebook.record).

Shared by tests/test_gradebook_integrity.py and tests/test_gradebook_state.py (the latter
also imports it in its worker processes, so it must stay importable without TensorFlow).
"""
from __future__ import annotations

from pathlib import Path

from grader.classroom.process import Graded
from grader.late import LatePolicy, parse_time
from grader.results import Status, SubmissionResult, TestResult
from grader.written import Question, RubricLevel

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
           code: dict | None = None):
    """Store one grading of `key` (answer None: the notebook held no answer cell)."""
    run = book.start_run(fingerprint=fingerprint, command="test", backend="local", found=1, to_grade=1)
    answers = {} if answer is None else {"why_bn": {"text": answer, "cell": 7}}
    graded = Graded(Path(key), result(key, order, message=message), sha256=sha, answers=answers,
                    fingerprint=fingerprint, order=1, code=code or {})
    return book.record(submission=key, student_key=Path(key).stem, graded=graded, run_id=run, mtime=mtime,
                       fingerprint=fingerprint)
