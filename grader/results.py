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

    `marked` is the index of the row holding the first difference (or None); `notes`
    is a per-row marker column such as "missing" / "extra" / "" that renderers may show.
    """

    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    marked: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"headers": list(self.headers), "rows": [list(r) for r in self.rows], "marked": self.marked}


@dataclass
class TestResult:
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

    @property
    def title(self) -> str:
        return f"{self.exercise} · {self.name}" if self.exercise else self.name

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["status"] = self.status.value
        d["visibility"] = self.visibility.value
        d["table"] = self.table.to_dict() if self.table else None
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
        }
