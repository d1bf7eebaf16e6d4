"""A student's final grade: the autograder's scores, what people decided, and lateness.

One pure function combines them, so grades.csv, grades.json, the student's feedback,
Gradescope's results.json and the LMS export cannot disagree. People's decisions enter the
result as ordinary test entries (an override changes a test's score and says why; a
written answer is a test a person scored; a late penalty is a negative entry with its
reason), so every renderer shows them without knowing they exist.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timezone

from grader.classroom.decisions import Answer, ManualScore, Override
from grader.assignment.late import Lateness, LatePolicy, lateness
from grader.results import Status, SubmissionResult, TestResult, Visibility
from grader.assignment.written import Question

WRITTEN_EXERCISE = "Written answers"
LATE_NAME = "Late penalty"
OVERRIDE_NOTE = "score changed by your instructor"


@dataclass(frozen=True)
class Decisions:
    """Everything a person decided about one submission, as stored."""
    questions: tuple[Question, ...] = ()
    answers: dict[str, Answer] = dataclasses.field(default_factory=dict)          # question id -> answer
    scores: dict[str, ManualScore] = dataclasses.field(default_factory=dict)      # question id -> latest score
    overrides: dict[str, Override] = dataclasses.field(default_factory=dict)      # nodeid -> latest override
    policy: LatePolicy | None = None
    submitted: datetime | None = None
    extension_days: float = 0.0
    own_due: str = ""
    # False: the notebook's answers were not read for these questions (added to the spec
    # after grading, or an older gradebook); a missing answer is then "not read", never 0.
    answers_read: bool = True
    answers_problem: str = ""  # why they could not be read (the notebook is gone), for the instructor


@dataclass(frozen=True)
class FinalGrade:
    result: SubmissionResult          # the student's view: overrides, written scores, penalty folded in
    autograded: float                 # the tests' scores after overrides
    written: dict[str, float | None]  # question id -> points; None: not scored yet (or stale)
    lateness: Lateness | None
    penalty: float
    attention: tuple[str, ...]        # what an instructor must look at (stale decisions, unscored answers)

    @property
    def total(self) -> float:
        return self.result.score

    @property
    def max_total(self) -> float:
        return self.result.max_score

    @property
    def pending(self) -> tuple[str, ...]:
        return tuple(q for q, p in self.written.items() if p is None)


def _overridden(test: TestResult, o: Override) -> TestResult:
    if o.points is None:
        return test
    was = test.score
    note = (f"Your instructor changed this score from {was:g} to {o.points:g} of {test.max_score:g}: {o.reason}")
    status = Status.PASSED if o.points >= test.max_score else Status.FAILED
    message = f"{test.message}\n\n{note}" if test.message else note
    # Feedback shows a passed test's title only: the title says a person changed it, so a
    # student never wonders why a test that failed before now passes.
    return dataclasses.replace(test, name=f"{test.name} ({OVERRIDE_NOTE})", score=o.points, status=status,
                               message=message)


def _written(q: Question, answer: Answer | None, score: ManualScore | None, *, read: bool = True) -> TestResult:
    nodeid = f"written::{q.id}"
    if answer is None and not read and (score is None or score.stale):
        # "No answer" is said only after reading the notebook: until then it waits.
        return TestResult(q.title, WRITTEN_EXERCISE, 0.0, q.points, Status.NOT_RUN,
                          message="Your written answer has not been read yet.", diagnosis="written_unread",
                          nodeid=nodeid)
    if answer is None or not answer.text.strip():
        msg = ("No answer was found for this question (the cell tagged "
               f"`{q.tag}` is missing or empty).")
        if score is None or score.stale:
            # Nothing to read is nothing to wait for: 0 points at once, so the instructor's
            # queue holds only answers to read (a score given anyway still wins).
            return TestResult(q.title, WRITTEN_EXERCISE, 0.0, q.points, Status.FAILED, message=msg,
                              hint=f"Write your answer in the cell tagged `{q.tag}` below the question.",
                              diagnosis="written_missing", nodeid=nodeid)
    if score is None or score.stale:
        return TestResult(q.title, WRITTEN_EXERCISE, 0.0, q.points, Status.NOT_RUN,
                          message="Your written answer has not been scored yet.", diagnosis="written_pending",
                          nodeid=nodeid)
    message = f"Scored by your instructor: {score.points:g} of {q.points:g}."
    if score.comment.strip():
        message += f"\n\n{score.comment.strip()}"
    return TestResult(q.title, WRITTEN_EXERCISE, score.points, q.points,
                      Status.PASSED if score.points >= q.points else Status.FAILED, message=message,
                      diagnosis="written", nodeid=nodeid)


def final_grade(result: SubmissionResult, decisions: Decisions) -> FinalGrade:
    """Fold what people decided into an autograded result (which is not modified)."""
    attention: list[str] = []
    tests = []
    for test in result.tests:
        o = decisions.overrides.get(test.nodeid)
        if o is not None and not o.applies and o.points is not None:  # a stale withdrawal changes nothing
            attention.append(f"{result.student or result.submission}: the override of {test.title} ({o.reason}) "
                             f"was made on an earlier version of the notebook and is not applied; look again")
            o = None
        tests.append(_overridden(test, o) if o is not None else test)
    autograded = round(sum(t.score for t in tests), 6)
    written: dict[str, float | None] = {}
    if not result.errors:
        if decisions.questions and not decisions.answers_read:
            why = decisions.answers_problem or "they were never read (run `grader grade` again to read them)"
            attention.append(f"{result.student or result.submission}: written answers not read: {why}")
        for q in decisions.questions:
            score = decisions.scores.get(q.id)
            if score is not None and score.stale:
                attention.append(f"{result.submission}: the answer to {q.title!r} changed since it was scored; "
                                 f"score it again")
            entry = _written(q, decisions.answers.get(q.id), score, read=decisions.answers_read)
            written[q.id] = None if entry.status is Status.NOT_RUN else entry.score
            tests.append(entry)
    late, penalty = None, 0.0
    if decisions.policy is not None and decisions.submitted is not None and not result.errors:
        late = lateness(decisions.policy, decisions.submitted, extension_days=decisions.extension_days,
                        own_due=decisions.own_due)
        if late.late:
            earned = round(sum(t.score for t in tests), 6)
            penalty = late.penalty(earned)
            tests.append(TestResult(LATE_NAME, "", -penalty if penalty else 0.0, 0.0, Status.FAILED, Visibility.VISIBLE,
                                    message=late.describe(), diagnosis="late", nodeid="late::penalty"))
    adjusted = dataclasses.replace(result, tests=tests)
    return FinalGrade(adjusted, autograded, written, late, penalty, tuple(attention))


def submission_time(mtime: float, submitted_at: str) -> datetime:
    """A manifest's time when one was given, else the file's modification time."""
    if submitted_at:
        from grader.assignment.late import parse_time
        return parse_time(submitted_at)
    return datetime.fromtimestamp(mtime, tz=timezone.utc)
