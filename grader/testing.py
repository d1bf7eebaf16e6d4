"""The authoring API for an assignment's tests: plain pytest markers with friendly names.

    from grader.testing import points, exercise, hidden, depends, note, CheckFailed

    pytestmark = exercise("happyModel")

    @points(4)
    def test_layer_order(submission, reference): ...

    @points(3)
    @hidden
    @depends("test_layer_order")
    def test_output_on_hidden_inputs(submission, reference, hidden_rng): ...

A test's display name is its function name without `test_` ("layer order"). A passing
test can still teach: `note("...")` (also left by checks such as `expect_architecture`)
adds a note that every feedback format shows with the test.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import pytest

from grader.checks import CheckFailed, partial
from grader.results import Status, TestResult, Visibility, note


def points(value: float):
    return pytest.mark.points(float(value))


def exercise(name: str):
    return pytest.mark.exercise(name)


def visibility(value: str):
    Visibility(value)  # fail early on a typo
    return pytest.mark.visibility(value)


hidden = visibility("hidden")
after_due_date = visibility("after_due_date")
after_published = visibility("after_published")


def title(text: str):
    """The check's name in feedback, when the function name cannot say it well."""
    return pytest.mark.title(text)


def depends(*test_names: str, exercise: str | Sequence[str] = ()):
    """Not run (and say why) unless these tests passed: `"test_x"` in the same file,
    `"test_other_file.py::test_x"` in another file of the tests folder, and with
    `exercise="name"` every test of that exercise. Tests run in the spec's order of
    exercises, so depend on tests that come before; a dependency that does not run in this
    grade at all (a self-check of one exercise, hidden tests for a student) does not block."""
    for name in test_names:
        if not isinstance(name, str) or not name.split("::")[-1]:
            raise TypeError(f"depends() takes test function names such as \"test_layer_graph\", not {name!r}")
    exercises = (exercise,) if isinstance(exercise, str) else tuple(exercise)
    return pytest.mark.depends(*test_names, exercises=exercises)


def unmet_dependency(marker, results: Iterable[TestResult]) -> str:
    """Why a test may not run for its dependencies outside its own file (`results`: the tests
    that ran before it in this grade), or "" when nothing blocks it. Same-file names are
    the plugin's to check."""
    results = list(results)
    if marker is None:
        return ""
    for needed in marker.args:
        if "::" not in needed:
            continue
        file, _, name = needed.rpartition("::")
        ran = [r for r in results if _same_test(r.nodeid, file, name)]
        failed = [r for r in ran if r.status is not Status.PASSED]
        if failed:
            return f"fix `{failed[0].name}` first"
    for exercise in marker.kwargs.get("exercises", ()):
        failed = [r for r in results if r.exercise == exercise and r.status is not Status.PASSED]
        if failed:
            return f"fix `{exercise}` first (its test `{failed[0].name}` did not pass)"
    return ""


def _same_test(nodeid: str, file: str, name: str) -> bool:
    path, _, function = nodeid.partition("::")
    function = function.split("::")[-1].split("[")[0]
    return function == name and (path == file or path.endswith("/" + file))


__all__ = ["points", "exercise", "title", "visibility", "hidden", "after_due_date", "after_published", "depends",
           "CheckFailed", "partial", "note"]
