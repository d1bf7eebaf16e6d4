"""The sample-building edits every assignment's build.py uses (grader.authoring.samples): an
edit that no longer matches the master must stop the build, never write a 'mistaken' sample
that is the correct notebook."""
from __future__ import annotations

import nbformat
import pytest

from grader.authoring.samples import answer_cell, edit_cell, graded_cell, write_notebook


def _master():
    nb = nbformat.v4.new_notebook()
    code = nbformat.v4.new_code_cell("def f(x):\n    return x + 1\n")
    code.metadata["grader"] = {"exercise": "f"}
    answer = nbformat.v4.new_markdown_cell("YOUR ANSWER HERE")
    answer.metadata["tags"] = ["written:why"]
    nb.cells = [nbformat.v4.new_code_cell("import numpy as np"), code, answer]
    return nb


def test_an_edit_applies_once_and_writes_the_sample(tmp_path):
    nb = edit_cell(_master(), "f", "x + 1", "x - 1")
    assert graded_cell(nb, "f").source == "def f(x):\n    return x - 1\n"
    nb = answer_cell(nb, "why", "Because the test set must stay unseen.")
    path = write_notebook(nb, tmp_path / "samples" / "minus.ipynb")
    again = nbformat.read(path, as_version=4)
    assert again.cells[1].source.endswith("x - 1\n") and again.cells[2].source.startswith("Because")


@pytest.mark.parametrize("old, count", [("x + 2", 1), ("x", 1), ("x + 1", 2)])
def test_an_edit_that_no_longer_matches_the_master_stops_the_build(old, count):
    nb = _master()
    with pytest.raises(RuntimeError, match="update build.py to the new master"):
        edit_cell(nb, "f", old, "y", count)
    assert graded_cell(nb, "f").source == "def f(x):\n    return x + 1\n"  # nothing half-written


def test_a_missing_exercise_or_question_is_named():
    with pytest.raises(LookupError, match="'g'"):
        edit_cell(_master(), "g", "x", "y")
    with pytest.raises(RuntimeError, match="written:other"):
        answer_cell(_master(), "other", "text")
