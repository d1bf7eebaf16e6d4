"""What one call can cost, and what one test can see: children replaced after a failure,
hidden tests in children of their own, hidden inputs that differ between submissions.

Real notebooks, the real sandbox, the real renderers. Runaway code is stopped by a 3 s
call limit; the assertions are about behaviour (which child ran what, what a student can
read), never about how long anything took.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from conftest import notebook
from student_views import student_views
from grader.assignment.spec import load_assignment
from grader.run.grading import grade_submission
from grader.results import Status
from grader.sandbox import client
from grader.run.submission import Submission

sys.path.insert(0, str(Path(__file__).resolve().parent / "adversarial"))

import attacks  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return load_assignment(attacks.write_assignment(tmp_path_factory.mktemp("tiny"), timeout=3))


def _children(submission: Submission) -> int:
    return sum(channel.children for channel in submission._channels.values())


def _open(tmp_path: Path, tiny, worker, *cells: str) -> Submission:
    return Submission(notebook(tmp_path / "submission.ipynb", *cells), tiny, worker).open()


# ---------------------------------------------------------------- a crash costs only its own calls

def test_a_timed_out_call_costs_only_itself_and_is_not_run_again(tmp_path, tiny, worker):
    sub = _open(tmp_path, tiny, worker, attacks.add_with("while True:\n    pass"), attacks.CORRECT_MODEL)
    try:
        assert _children(sub) == 1
        with pytest.raises(client.SandboxTimeout, match="while running `add`"):
            sub.call("add", 1.0, 2.0)
        # The same call again fails the same way without a new child (it would only loop again).
        with pytest.raises(client.SandboxTimeout, match="while running `add`"):
            sub.call("add", 1.0, 2.0)
        assert _children(sub) == 1
        # Another function gets a fresh child with the same definitions, and works.
        model = sub.model("tiny_model")
        assert [type(layer).__name__ for layer in model.layers] == ["Dense", "ReLU"]
        assert _children(sub) == 2
    finally:
        sub.close()


def test_a_crashed_child_is_replaced_with_the_same_definitions_and_seed(tmp_path, tiny, worker):
    source = ("import numpy as np\nimport os\n\nSTATE = {'calls': 0}\n\n"
              "def noise(k):\n    STATE['calls'] += 1\n    return np.random.rand(3), STATE['calls']\n\n"
              "def add(a, b):\n    os._exit(3)\n")
    sub = _open(tmp_path, tiny, worker, source, attacks.CORRECT_MODEL)
    try:
        first, calls_before = sub.call("noise", 0)
        with pytest.raises(client.SandboxCrashed, match=r"while running `add`.*status 3"):
            sub.call("add", 1, 2)
        again, calls_after = sub.call("noise", 1)
        assert (first == again).all()  # same seed in the fresh child
        assert calls_before == calls_after == 1  # a fresh child: nothing kept from the one that died
        assert _children(sub) == 2
    finally:
        sub.close()


def test_definitions_that_never_load_are_loaded_once(tmp_path, tiny, worker):
    sub = _open(tmp_path, tiny, worker, "class Evil:\n    while True:\n        pass\n",
                attacks.CORRECT_ADD, attacks.CORRECT_MODEL)
    try:
        assert any("could not be loaded" in w for w in sub.warnings)
        for name, channel in [("add", "visible"), ("tiny_model", "visible"), ("add", "hidden")]:
            sub.use_channel(channel)
            with pytest.raises(client.SandboxTimeout, match="loading your notebook's definitions"):
                sub.call(name, 1, 2) if name == "add" else sub.call(name)
        assert _children(sub) == 1
    finally:
        sub.close()


def test_fresh_children_are_bounded(tmp_path, tiny, worker, monkeypatch):
    """A submission whose every call kills its child cannot make the grader fork without end."""
    from grader.sandbox import channel
    monkeypatch.setattr(channel, "MAX_CHILDREN", 3)
    sub = _open(tmp_path, tiny, worker, attacks.add_with("os._exit(1)"), attacks.CORRECT_MODEL)
    try:
        for i in range(3):
            with pytest.raises(client.SandboxCrashed, match="exited with status 1"):
                sub.call("add", i, 0)
        with pytest.raises(client.SandboxCrashed, match="`add` was not run: earlier calls ended 3"):
            sub.call("add", 3, 0)
        assert _children(sub) == 3
    finally:
        sub.close()


@pytest.mark.parametrize("attack", ["loop_in_graded_function", "os_exit", "segfault", "breaks_the_child"])
def test_a_broken_exercise_does_not_zero_the_next(tmp_path, tiny, worker, attack):
    """The graded order is add, then tiny_model: whatever `add` does to its child, the correct
    `tiny_model` graded after it keeps full marks, and `add`'s message names `add`."""
    cells = attacks.attack_cells(attack, repo=Path("/nonexistent"), reference=Path("/nonexistent"))
    result = grade_submission(notebook(tmp_path / f"{attack}.ipynb", *cells), tiny, worker)
    tests = {t.name: t for t in result.tests}
    assert tests["tiny model"].status is Status.PASSED, tests["tiny model"].message
    for name in ("add", "add hidden"):
        assert tests[name].score == 0 and "`add`" in tests[name].message, tests[name].message


# ---------------------------------------------------------------- hidden inputs stay hidden

LEAKY_SPEC = """\
name = "leaky"
exercises = ["batchnorm_forward"]
reference = "reference.py"
call_timeout = 20
secret = "leaky-secret"
"""

LEAKY_REFERENCE = '''\
import numpy as np


def batchnorm_forward(x, gamma, beta, eps=1e-5):
    return gamma * (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + eps) + beta
'''

# The hidden test runs first and writes its eps where the grading test below can read it
# (this is the instructor's code, in the grading process); the visible test runs second.
LEAKY_TESTS = '''\
import os

import numpy as np

from grader.testing import exercise, hidden, points


@points(1)
@exercise("batchnorm_forward")
@hidden
def test_hidden_eps(submission, hidden_rng):
    eps = float(hidden_rng.uniform(1e-4, 1e-2))
    x = hidden_rng.normal(size=(8, 3))
    with open(os.environ["LEAKY_HIDDEN_LOG"], "a") as log:
        log.write(repr(eps) + "\\n")
    got = submission.call("batchnorm_forward", x, np.ones(3), np.zeros(3), eps=eps)
    assert np.allclose(got, (x - x.mean(0)) / np.sqrt(x.var(0) + eps))


@points(1)
@exercise("batchnorm_forward")
def test_visible_after_hidden(submission):
    x = np.arange(6.0).reshape(3, 2)
    got = submission.call("batchnorm_forward", x, np.ones(2), np.zeros(2), eps=0.5)
    assert got.shape == (3, 2)
'''

# Records every eps it is given in a module global; on the visible test's call it prints
# them and raises them, to get them into the student's feedback.
LEAKY_STUDENT = '''\
import numpy as np

SEEN = []
VARIANT = {variant}


def batchnorm_forward(x, gamma, beta, eps=1e-5):
    SEEN.append(repr(float(eps)))
    if eps == 0.5:
        print("recorded eps:", ", ".join(SEEN))
        raise ValueError("recorded eps: " + ", ".join(SEEN))
    return gamma * (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + eps) + beta
'''


@pytest.fixture
def leaky(tmp_path, monkeypatch):
    root = tmp_path / "leaky"
    (root / "tests").mkdir(parents=True)
    (root / "assignment.toml").write_text(LEAKY_SPEC)
    (root / "reference.py").write_text(LEAKY_REFERENCE)
    (root / "tests" / "test_leaky.py").write_text(LEAKY_TESTS)
    log = tmp_path / "hidden-eps.log"
    monkeypatch.setenv("LEAKY_HIDDEN_LOG", str(log))
    return load_assignment(root), log


def test_hidden_inputs_never_reach_a_visible_test(tmp_path, leaky, worker):
    assignment, log = leaky
    path = notebook(tmp_path / "leaky.ipynb", LEAKY_STUDENT.format(variant=1))
    result = grade_submission(path, assignment, worker)
    tests = {t.name: t for t in result.tests}
    assert tests["hidden eps"].status is Status.PASSED
    visible = tests["visible after hidden"]
    # The visible test did show what the student recorded in its own child...
    assert "recorded eps: 0.5" in visible.message and "recorded eps: 0.5" in visible.output
    eps = float(log.read_text().split()[0])
    views = student_views(result)
    assert "recorded eps" in views["text"]  # ...and the views do carry that message,
    for fmt, text in views.items():  # but never the hidden eps.
        for spelling in (repr(eps), f"{eps:.6g}", f"{eps:.4f}"):
            assert spelling not in text, (fmt, spelling)


def test_hidden_inputs_differ_between_submissions_and_repeat_for_one(tmp_path, leaky, worker):
    assignment, log = leaky
    first = notebook(tmp_path / "first.ipynb", LEAKY_STUDENT.format(variant=1))
    second = notebook(tmp_path / "second.ipynb", LEAKY_STUDENT.format(variant=2))
    for path in (first, first, second):
        grade_submission(path, assignment, worker)
    seen = log.read_text().split()
    assert len(seen) == 3
    assert seen[0] == seen[1], "the same submission graded twice must get the same hidden inputs"
    assert seen[0] != seen[2], "two submissions must get different hidden inputs"


# A fixture wider than one test is set up by whichever test asks first; here a hidden test
# whose child has already seen the hidden eps. Its value then reaches the visible test.
WIDE_FIXTURE_TESTS = '''\
import os

import numpy as np
import pytest

from grader.testing import exercise, hidden, points

X = np.arange(6.0).reshape(3, 2)


@pytest.fixture(scope="module")
def at_half(submission):
    return submission.call("batchnorm_forward", X, np.ones(2), np.zeros(2), eps=0.5)


@points(1)
@exercise("batchnorm_forward")
@hidden
def test_hidden_eps(submission, hidden_rng):
    eps = float(hidden_rng.uniform(1e-4, 1e-2))
    with open(os.environ["LEAKY_HIDDEN_LOG"], "a") as log:
        log.write(repr(eps) + "\\n")
    submission.call("batchnorm_forward", X, np.ones(2), np.zeros(2), eps=eps)


@points(1)
@exercise("batchnorm_forward")
@hidden
def test_hidden_uses_the_fixture(at_half):
    assert at_half is not None


@points(1)
@exercise("batchnorm_forward")
def test_visible_uses_the_fixture(at_half):
    expected = (X - X.mean(0)) / np.sqrt(X.var(0) + 0.5)
    assert np.shape(at_half) == expected.shape and np.allclose(at_half, expected), f"your output: {at_half}"
'''

# On the visible test's eps it returns every eps it has seen, to smuggle them into a message.
WIDE_FIXTURE_STUDENT = '''\
import numpy as np

SEEN = []


def batchnorm_forward(x, gamma, beta, eps=1e-5):
    SEEN.append(float(eps))
    if eps == 0.5 and len(SEEN) > 1:
        return np.array(SEEN)
    return gamma * (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + eps) + beta
'''


def test_a_fixture_shared_by_hidden_and_visible_tests_never_carries_hidden_inputs(tmp_path, leaky, worker):
    assignment, log = leaky
    (assignment.tests_dir / "test_leaky.py").write_text(WIDE_FIXTURE_TESTS)
    path = notebook(tmp_path / "wide.ipynb", WIDE_FIXTURE_STUDENT)
    result = grade_submission(path, assignment, worker)
    tests = {t.name: t for t in result.tests}
    assert [t.name for t in result.tests] == ["hidden eps", "hidden uses the fixture", "visible uses the fixture"]
    # Set up on the visible channel, the fixture's call was the first that child saw.
    assert tests["visible uses the fixture"].status is Status.PASSED, tests["visible uses the fixture"].message
    eps = float(log.read_text().split()[0])
    for fmt, text in student_views(result).items():
        for spelling in (repr(eps), f"{eps:.6g}", f"{eps:.4f}"):
            assert spelling not in text, (fmt, spelling)
