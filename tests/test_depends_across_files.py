"""`depends` across test files and on whole exercises: a test of one exercise may wait for
another file's test, or for every test of an earlier exercise, and is reported as not run
("fix ... first") when one of them did not pass. Graded through the real grading path."""
from __future__ import annotations

import pytest

from conftest import notebook
from grader.assignment.spec import load_assignment
from grader.run.grading import grade_submission
from grader.results import Status
from grader.testing import depends

FIRST = '''\
from grader.testing import exercise, points

pytestmark = exercise("first")


@points(1)
def test_passes():
    pass


@points(1)
def test_fails():
    assert False, "always"
'''

SECOND = '''\
from grader.testing import depends, exercise, points

pytestmark = exercise("second")


@points(1)
@depends("test_a_first.py::test_passes")
def test_after_a_passing_test_elsewhere():
    pass


@points(1)
@depends("test_a_first.py::test_fails")
def test_after_a_failing_test_elsewhere():
    pass


@points(1)
@depends(exercise="first")
def test_after_the_whole_first_exercise():
    pass


@points(1)
@depends("test_own")
def test_after_its_own_file():
    pass


@points(1)
def test_own():
    pass
'''


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("depends_demo")
    (root / "tests").mkdir()
    (root / "tests" / "test_a_first.py").write_text(FIRST)
    (root / "tests" / "test_b_second.py").write_text(SECOND)
    (root / "reference.py").write_text("def first():\n    return 1\n\n\ndef second():\n    return 2\n")
    # Tests run in the spec's order of exercises: `first`'s tests before those depending on them.
    (root / "assignment.toml").write_text('reference = "reference.py"\nexercises = ["first", "second"]\n')
    path = notebook(root / "nb.ipynb", "def first():\n    return 1\n", "def second():\n    return 2\n")
    result = grade_submission(path, load_assignment(root), None)
    return {t.nodeid.split("::")[-1]: t for t in result.tests}


def test_a_passing_dependency_in_another_file_lets_the_test_run(graded):
    assert graded["test_after_a_passing_test_elsewhere"].status is Status.PASSED


def test_a_failing_dependency_in_another_file_is_named(graded):
    test = graded["test_after_a_failing_test_elsewhere"]
    assert test.status is Status.NOT_RUN and test.score == 0
    assert "fix `fails` first" in test.message, test.message


def test_a_whole_exercise_as_the_dependency(graded):
    test = graded["test_after_the_whole_first_exercise"]
    assert test.status is Status.NOT_RUN
    assert "fix `first` first (its test `fails` did not pass)" in test.message, test.message


def test_same_file_dependencies_work_as_before(graded):
    # `test_own` comes after it in the file: not passed yet when it runs, so it is not run.
    assert graded["test_after_its_own_file"].status is Status.NOT_RUN
    assert graded["test_own"].status is Status.PASSED


def test_depends_refuses_what_is_not_a_test_name():
    with pytest.raises(TypeError, match="test function names"):
        depends("test_a_first.py::")
