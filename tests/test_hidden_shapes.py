"""Hidden inputs vary what the exercise lets vary: `convolutional_model(input_shape)` is
also built for another input shape, so a model that hard-codes (64, 64, 3) loses exactly
the points of the test that varies it, in both assignments that have the exercise, on the
real grading path (notebook, sandbox, rebuild, the assignment's tests)."""
from __future__ import annotations

import json

import nbformat
import pytest

from conftest import SAMPLES
from grader.assignment.spec import load_assignment
from grader.run.grading import grade_submission
from grader.results import Status

# conv_bn varies the shape in a hidden test of its own (the shape stays out of its student kit).
HIDDEN_TEST = ("convolutional_model", "output on hidden inputs")  # dls_c4w1a2 keeps the course's title
CONV_BN_HIDDEN_TEST = ("convolutional_model", "output for another input shape")


def hard_code(source: str, exact: str) -> str:
    assert source.count(exact) == 1, source
    return source.replace(exact, "tf.keras.Input(shape=(64, 64, 3))")


def assert_loses_only_the_varied_test(result, total: float, varied=HIDDEN_TEST, points: float = 3) -> None:
    shown = json.dumps(result.to_dict(), indent=1, default=str)[:4000]
    assert not result.errors, shown
    failed = {(t.exercise, t.name): t for t in result.tests if t.status is not Status.PASSED}
    assert set(failed) == {varied}, shown
    test = failed[varied]
    assert result.max_score == total
    assert result.score == total - test.max_score == total - points, shown
    assert test.diagnosis == "input_shape_ignored", shown
    assert "input_shape" in test.message and "still 64x64x3" in test.message, test.message
    for secret in ("48", "32"):  # the hidden shape is not revealed
        assert secret not in test.message + test.hint, test.message


def test_conv_bn_hard_coded_input_shape_loses_the_hidden_shape_points(tmp_path, worker, conv_bn):
    nb = nbformat.read(SAMPLES / "correct.ipynb", as_version=4)
    cell = next(c for c in nb.cells if "convolutional_model" in c.metadata.get("tags", []))
    cell.source = hard_code(cell.source, "tf.keras.Input(shape=input_shape)")
    path = tmp_path / "hard_coded.ipynb"
    nbformat.write(nb, str(path))
    assert_loses_only_the_varied_test(grade_submission(path, conv_bn, worker), 23, CONV_BN_HIDDEN_TEST, 1)


def test_dls_c4w1a2_hard_coded_input_shape_loses_the_hidden_shape_points(tmp_path, keras2_worker):
    from test_dls_c4w1a2 import CONV_OK, course_notebook

    conv = hard_code(CONV_OK, "tf.keras.Input(shape=input_shape)")
    path = tmp_path / "hard_coded.ipynb"
    nbformat.write(course_notebook(conv=conv), str(path))
    assignment = load_assignment("dls_c4w1a2")
    assert_loses_only_the_varied_test(grade_submission(path, assignment, keras2_worker), 14)
    # the same notebook with the argument used gets full marks
    correct = tmp_path / "correct.ipynb"
    nbformat.write(course_notebook(), str(correct))
    result = grade_submission(correct, assignment, keras2_worker)
    assert result.score == result.max_score == 14, [t.message for t in result.tests]
