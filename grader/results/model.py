"""The result model: what grading a submission produced, independent of how it is shown.

Every renderer reads these objects and nothing else, so a fact exists in one place and
the terminal, HTML, Gradescope, JUnit and Coursera outputs cannot disagree about it.
Grades live only here, in the grading process; nothing in this module is ever filled in
from data the student's process claims about itself.
"""
from __future__ import annotations

from dataclasses import dataclass, field, asdict
from enum import Enum
from typing import Any


class Status(str, Enum):
    PASSED = "passed"
    FAILED = "failed"
    # Not run because a check it depends on failed: shown as such instead of piling
    # a second failure on top of the first. Exported as "failed" where a format only
    # knows passed/failed (the score is 0 either way).
    NOT_RUN = "not_run"

    @property
    def external(self) -> str:
        return "passed" if self is Status.PASSED else "failed"


class Visibility(str, Enum):
    """Gradescope's vocabulary, which the other platforms' needs fit inside."""

    VISIBLE = "visible"
    HIDDEN = "hidden"
    AFTER_DUE_DATE = "after_due_date"
    AFTER_PUBLISHED = "after_published"


@dataclass(frozen=True)
class Table:
    """Expected and found side by side, one row per aligned item.

    `marked` is the index of the row holding the first difference (or None).
    """

    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    marked: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"headers": list(self.headers), "rows": [list(r) for r in self.rows], "marked": self.marked}


@dataclass
class TestResult:
    __test__ = False  # a result, not a pytest test class

    name: str  # what is checked, e.g. "layer order"; shown as "<exercise> · <name>"
    exercise: str  # the graded function's name, e.g. "happyModel"
    score: float
    max_score: float
    status: Status
    visibility: Visibility = Visibility.VISIBLE
    message: str = ""  # what was expected, what was found, why it matters
    hint: str = ""  # what to change ("Fix: ...")
    table: Table | None = None
    student_traceback: str = ""  # only the student's own frames, when their code raised
    output: str = ""  # captured stdout/stderr of the student's code during this check (capped)
    number: str = ""  # stable ordinal such as "3.1", for formats that want one
    duration: float = 0.0
    diagnosis: str = ""  # short machine-readable mistake label ("relu_before_bn"), for class reports
    nodeid: str = ""  # the pytest node id, for instructors
    # Teaching notes a check left while grading (`note`): something accepted that the student
    # should still know about ("bias=True before BatchNorm: accepted, but it has no effect").
    # Shown with the test's details, passed or not, under the same visibility rules.
    notes: tuple[str, ...] = ()

    @property
    def title(self) -> str:
        return f"{self.exercise} · {self.name}" if self.exercise else self.name

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["status"] = self.status.value
        d["visibility"] = self.visibility.value
        d["table"] = self.table.to_dict() if self.table else None
        d["notes"] = list(self.notes)
        return d


@dataclass
class SubmissionResult:
    submission: str  # path of the notebook as given
    assignment: str
    tests: list[TestResult] = field(default_factory=list)
    # Fatal problems: the notebook could not be read or graded at all. Each names the
    # file and the problem in one line.
    errors: list[str] = field(default_factory=list)
    # Problems that did not stop grading: a helper import that failed, a cell skipped
    # because it does not parse, a graded function found without its tag.
    warnings: list[str] = field(default_factory=list)
    execution_time: float = 0.0
    isolation: str = ""  # "full" (bubblewrap), "namespace" (unshare), "process"
    # Whether hidden tests were run at all (a student's self-check does not run them).
    hidden_tests_run: bool = True
    student: str = ""
    # For the instructor only, never rendered for a student: e.g. a course module the spec
    # declares missing that the notebook imports.
    notes: list[str] = field(default_factory=list)
    # Which code was graded, for everyone (a self-check: the kernel's, or the saved file and
    # why); shown under the header, since a student acts on it.
    graded_code: str = ""

    @property
    def score(self) -> float:
        return round(sum(t.score for t in self.tests), 6)

    @property
    def max_score(self) -> float:
        return round(sum(t.max_score for t in self.tests), 6)

    @property
    def graded(self) -> bool:
        return not self.errors

    def visible_tests(self) -> list[TestResult]:
        return [t for t in self.tests if t.visibility is Visibility.VISIBLE]

    def to_dict(self) -> dict[str, Any]:
        return {
            "submission": self.submission,
            "assignment": self.assignment,
            "student": self.student,
            "score": self.score,
            "max_score": self.max_score,
            "execution_time": round(self.execution_time, 3),
            "isolation": self.isolation,
            "tests": [t.to_dict() for t in self.tests],
            "errors": list(self.errors),
            "warnings": list(self.warnings),
            "hidden_tests_run": self.hidden_tests_run,
            "notes": list(self.notes),
            "graded_code": self.graded_code,
        }


def test_result_from_dict(d: dict[str, Any]) -> TestResult:
    table = d.get("table")
    return TestResult(
        name=d["name"], exercise=d.get("exercise", ""), score=float(d["score"]), max_score=float(d["max_score"]),
        status=Status(d["status"]), visibility=Visibility(d.get("visibility", "visible")),
        message=d.get("message", ""), hint=d.get("hint", ""),
        table=Table(tuple(table["headers"]), tuple(tuple(r) for r in table["rows"]), table.get("marked"))
        if table else None,
        student_traceback=d.get("student_traceback", ""), output=d.get("output", ""), number=d.get("number", ""),
        duration=float(d.get("duration", 0.0)), diagnosis=d.get("diagnosis", ""), nodeid=d.get("nodeid", ""),
        notes=tuple(str(n) for n in d.get("notes", ()) or ()))


def submission_result_from_dict(d: dict[str, Any]) -> SubmissionResult:
    """The inverse of `SubmissionResult.to_dict`, for results crossing between our own processes
    or read back from the gradebook (never for anything a student's process produced)."""
    return SubmissionResult(
        submission=d["submission"], assignment=d.get("assignment", ""),
        tests=[test_result_from_dict(t) for t in d.get("tests", [])], errors=list(d.get("errors", [])),
        warnings=list(d.get("warnings", [])), execution_time=float(d.get("execution_time", 0.0)),
        isolation=d.get("isolation", ""), hidden_tests_run=bool(d.get("hidden_tests_run", True)),
        student=d.get("student", ""), notes=list(d.get("notes", [])),
        graded_code=str(d.get("graded_code", "")))
