"""Putting one graded submission into the gradebook and its student's feedback on disk.

Whatever goes wrong there belongs to that submission alone: a text no database or file
can hold (a lone surrogate in a file name or in what a student wrote), a feedback folder
that cannot be made, a failure of the gradebook itself. It becomes that submission's
error line, naming the file, and the class goes on; what could not be stored is stored
as a failure of the grader (tried again on the next run) so that grades.csv shows the
student as not graded, with the reason, instead of skipping or stopping at them.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

from grader.classroom.names import fs_name, printable
from grader.classroom.process import Graded, failed_result
from grader.classroom.submissions import Task
from grader.results import SubmissionResult


@dataclass
class Recorded:
    """What the run shows of one submission: its result (as stored, or the failure that
    replaced it) and the lines to print, each naming the file."""
    result: SubmissionResult
    problems: list[str] = field(default_factory=list)


def storable(graded: Graded) -> Graded:
    """`graded` under a path that can be stored (a name that is not UTF-8 escaped); the
    gradebook makes the rest of its text storable."""
    path = Path(fs_name(str(graded.path)))
    return graded if path == graded.path else dataclasses.replace(graded, path=path)


def _mtime(task: Task) -> float:
    try:
        return os.lstat(task.path).st_mtime  # never through a link
    except OSError:
        return 0.0


def _describe(exc: BaseException) -> str:
    return printable(f"{type(exc).__name__}: {exc}")


def record_one(book, task: Task, graded: Graded, *, student_id: str, run_id: int, fingerprint: str,
               submitted_at: str = "") -> Recorded:
    """Store `graded` and rewrite the student's feedback; never raises for one submission's
    trouble (an interrupt still stops the run)."""
    from grader.classroom.outputs import FeedbackRefused, feedback_for

    shown = printable(task.key)
    problems: list[str] = []
    clean = storable(graded)
    result = clean.result
    try:
        book.record(submission=task.key, student_key=task.student, graded=clean, run_id=run_id,
                    mtime=_mtime(task), fingerprint=fingerprint, submitted_at=submitted_at)
    except Exception as exc:  # noqa: BLE001 - one submission's failure, whatever it is, is its own
        why = (f"the grader could not store its grading ({_describe(exc)}); it is not graded and is tried "
               f"again on the next run")
        problems.append(f"{shown}: {why}")
        result = failed_result(Path(shown), Path(result.assignment or "").name, why)
        fallback = Graded(path=Path(shown), result=result, sha256=graded.sha256, transient=True,
                          host=graded.host, wall=graded.wall, fingerprint=graded.fingerprint, order=graded.order)
        try:
            book.record(submission=task.key, student_key=task.student, graded=fallback, run_id=run_id,
                        mtime=_mtime(task), fingerprint=fingerprint, submitted_at=submitted_at)
        except Exception as again:  # noqa: BLE001
            problems.append(f"{shown}: not even its failure could be stored ({_describe(again)}); it is "
                            f"missing from grades.csv until a run stores it")
            result.student = student_id
            return Recorded(result, problems)
    result.student = student_id
    try:
        feedback_for(book, task.student)
    except FeedbackRefused as exc:
        problems.append(printable(str(exc)))
    except Exception as exc:  # noqa: BLE001
        problems.append(f"{shown}: its student's feedback could not be written ({_describe(exc)}); the grade "
                        f"is stored, and the feedback is written again by the next run")
    return Recorded(result, problems)


def refused(task: Task, assignment: str, why: str) -> Graded:
    """A notebook the run will not grade (e.g. two notebooks of one student handed in at the
    same time), as a failure the next run tries again once the instructor has chosen."""
    from grader.classroom.submissions import file_sha256
    shown = printable(task.key)
    return Graded(path=Path(shown), result=failed_result(Path(shown), Path(assignment).name, why),
                  sha256=file_sha256(task.path), transient=True)
