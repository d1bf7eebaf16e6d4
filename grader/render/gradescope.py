"""Gradescope's `results.json` (the autograder output contract).

Gradescope itself hides or reveals each test by that test's `visibility`, so per-test
`output` carries full details; the top-level `output` is shown to every student at once
and therefore carries only the student-safe summary (header, fatal errors, warnings,
verdict) and never anything from a hidden test.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from grader.results import SubmissionResult, TestResult

from grader.render import _common as c
from grader.render import markdown as md

VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")


def _test(test: TestResult, index: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "score": float(test.score),
        "max_score": float(test.max_score),
        "status": test.status.external,
        "name": c.safe_text(test.title).replace("\n", " "),
        "number": test.number or str(index),
        "output": md.details(test),
        "output_format": "md",
        "tags": [test.exercise] if test.exercise else [],
        "visibility": test.visibility.value,
    }
    if test.diagnosis:
        out["extra_data"] = {"diagnosis": test.diagnosis}
    return out


def _fatal_test(result: SubmissionResult) -> dict[str, Any]:
    """The one test a submission that could not be graded gets, so the reason shows in
    the same place students look for test results."""
    body = "\n\n".join(f"**{md.escape(c.NOT_GRADED)}:** {md.escape(e)}" for e in result.errors)
    return {
        "score": 0.0,
        "max_score": float(result.max_score),
        "status": "failed",
        "name": c.NOT_GRADED,
        "number": "1",
        "output": body,
        "output_format": "md",
        "tags": [],
        "visibility": "visible",
    }


def to_gradescope(result: SubmissionResult, *, stdout_visibility: str = "hidden") -> dict[str, Any]:
    """The results.json content for one submission.

    `score` is given explicitly (Gradescope then ignores the per-test sum) and is 0 for a
    submission that could not be graded. `execution_time` is whole seconds, rounded up so
    that a run that took any time never reads as 0.
    """
    if stdout_visibility not in VISIBILITIES:
        raise ValueError(f"stdout_visibility must be one of {VISIBILITIES}, not {stdout_visibility!r}")
    if result.errors:
        tests = [_fatal_test(result)]
    else:
        tests = [_test(t, i) for i, t in enumerate(result.tests, start=1)]
    return {
        "score": c.final_score(result),
        "execution_time": max(0, math.ceil(result.execution_time)),
        "output": md.summary(result, c.STUDENT),
        "output_format": "md",
        "visibility": "visible",
        "stdout_visibility": stdout_visibility,
        "extra_data": {"assignment": result.assignment, "isolation": result.isolation,
                       "hidden_tests_run": result.hidden_tests_run},
        "tests": tests,
    }


def write_gradescope(result: SubmissionResult, path: str | Path = "/autograder/results/results.json",
                     **kwargs: Any) -> Path:
    """Write results.json (creating its folder); returns the path written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # ASCII-only JSON: a stray surrogate from student output cannot make the write fail.
    path.write_text(json.dumps(to_gradescope(result, **kwargs), indent=2, ensure_ascii=True) + "\n",
                    encoding="utf-8")
    return path
