"""The authoring API for an assignment's tests: plain pytest markers with friendly names.

    from grader.testing import points, exercise, hidden, depends, CheckFailed

    pytestmark = exercise("happyModel")

    @points(4)
    def test_layer_order(submission, reference): ...

    @points(3)
    @hidden
    @depends("test_layer_order")
    def test_output_on_hidden_inputs(submission, reference, hidden_rng): ...

A test's display name is its function name without `test_` ("layer order").
"""
from __future__ import annotations

import pytest

from grader.checks import CheckFailed, partial
from grader.results import Visibility


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


def depends(*test_names: str):
    """Not run (and say why) unless these tests of the same module passed."""
    return pytest.mark.depends(*test_names)


__all__ = ["points", "exercise", "title", "visibility", "hidden", "after_due_date", "after_published", "depends",
           "CheckFailed", "partial"]
