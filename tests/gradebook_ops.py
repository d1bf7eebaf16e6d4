"""What people and runs do to a results folder, each through the code that does it for real,
run by a worker process (`python tests/gradebook_ops.py`: one JSON command per line on
stdin, one JSON answer per line on stdout), so tests/test_gradebook_state.py can drive
several processes writing one gradebook at once.

    grade     a grading run's writes for one notebook: Gradebook.record, that student's
              feedback (outputs.feedback_for), then the run's grades.csv/json (export_grades),
              as `grader grade --out` does them
    score     a written answer's score saved from the review page (review.Review.save_score,
              the server's code without the socket), for the answer as stored now
    override  a test's override saved from the review page (Review.save_override), or with
              `grader override` (overrides.record_override) when `cli` is true
    export    the results folder derived again (export_grades)
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from classbook import record  # noqa: E402


def grade(folder: str, student: str, sha: str, order: float, answer: str, fingerprint: str,
          long: bool = False) -> dict:
    """`long`: a diagnosis long enough that rendering this student's feedback takes a while
    (a window for another process's save to land in)."""
    from grader.classroom.gradebook import Gradebook
    from grader.classroom.outputs import export_grades, feedback_for
    message = "a long diagnosis\n" * (3_000 if long else 1)
    with Gradebook(folder, create=False) as book:
        record(book, f"{student}.ipynb", sha=sha, order=order, answer=answer, fingerprint=fingerprint,
               message=message)
        feedback_for(book, student)
        export_grades(book)
    return {"status": 200}


def _current(folder: str, student: str) -> tuple[str, str] | None:
    from grader.classroom.gradebook import Gradebook
    with Gradebook(folder, create=False) as book:
        row = book.row(f"{student}.ipynb")
        if row is None:
            return None
        answer = book.answer(row.submission, "why_bn")
        from grader.classroom.decisions import text_sha256
        return row.sha256, answer.sha256 if answer else text_sha256("")


def score(folder: str, student: str, points: float, grader: str) -> dict:
    from grader.classroom.review import Review
    seen = _current(folder, student)
    if seen is None:
        return {"status": 404}
    body = json.dumps({"submission": f"{student}.ipynb", "question": "why_bn", "points": points,
                       "comment": f"{grader}: {points:g}", "version": seen[1]}).encode()
    response = Review(Path(folder), grader).save_score(body)
    return {"status": response.status, "body": json.loads(response.body)}


def override(folder: str, student: str, points: float | None, grader: str, cli: bool) -> dict:
    seen = _current(folder, student)
    if seen is None:
        return {"status": 404}
    if cli:
        from grader.classroom.decisions import StaleVersion
        from grader.classroom.overrides import record_override
        try:
            record_override(folder, student, "2.1", points, f"{grader} decided", grader, seen=seen[0])
        except StaleVersion as exc:  # graded again between looking and deciding
            return {"status": 409, "body": {"error": str(exc)}}
        return {"status": 200}
    from grader.classroom.review import Review
    body = json.dumps({"submission": f"{student}.ipynb", "test": "t.py::test_order", "points": points,
                       "reason": f"{grader} decided", "version": seen[0]}).encode()
    response = Review(Path(folder), grader).save_override(body)
    return {"status": response.status, "body": json.loads(response.body)}


def export(folder: str) -> dict:
    from grader.classroom.gradebook import Gradebook
    from grader.classroom.outputs import export_grades
    with Gradebook(folder, create=False) as book:
        export_grades(book)
    return {"status": 200}


OPS = {"grade": grade, "score": score, "override": override, "export": export}


def serve() -> None:
    print(json.dumps({"ready": True}), flush=True)
    import time
    for line in sys.stdin:
        command = json.loads(line)
        op = OPS[command.pop("op")]
        time.sleep(command.pop("delay", 0))  # how the test interleaves two processes' steps
        try:
            answer = op(**command)
        except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on it
            import traceback
            answer = {"status": 500, "error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    serve()
