"""Tests collected once per grading process (grader.run.collected) grade exactly as a fresh
`pytest.main` per submission does: same results, same numbering, the same selection of
tests per grade, nothing carried from one submission to the next."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from conftest import notebook  # noqa: E402
from grader.run import collected, grading  # noqa: E402
from grader.assignment.spec import load_assignment  # noqa: E402

SAMPLES = Path(__file__).resolve().parent.parent / "assignments" / "conv_bn" / "samples"
NUMPY_ONLY = frozenset({"standardize", "batchnorm_forward"})  # quick: no model is built


@pytest.fixture(scope="module")
def conv_bn():
    return load_assignment("conv_bn")


@pytest.fixture(scope="module")
def worker(conv_bn):
    from grader.frameworks.sandbox_side import sandbox_side
    from grader.sandbox.client import Worker
    worker = Worker(framework=sandbox_side(keras=conv_bn.keras)).start()
    yield worker
    worker.stop()


def _shown(result) -> dict:
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ("execution_time", "duration")}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value
    return strip(result.to_dict())


def _grades(conv_bn, worker, plan):
    return [_shown(grading.grade_submission(SAMPLES / f"{name}.ipynb", conv_bn, worker, **kw)) for name, kw in plan]


PLAN = [("mixed", {"only_exercises": NUMPY_ONLY}),
        ("correct", {"only_exercises": NUMPY_ONLY}),
        ("test_stats_leak", {"only_exercises": frozenset({"standardize"})}),
        ("mixed", {"only_exercises": NUMPY_ONLY, "include_hidden": False}),
        ("eps_outside_sqrt", {"only_exercises": NUMPY_ONLY})]


def test_kept_tests_grade_as_a_fresh_pytest_session_does(conv_bn, worker, monkeypatch):
    kept = _grades(conv_bn, worker, PLAN)
    key = (str(conv_bn.tests_dir.resolve()), tuple(grading.pytest_args(conv_bn)))
    session = collected._KEPT[key]
    assert _grades(conv_bn, worker, PLAN[:1]) == kept[:1] and collected._KEPT[key] is session  # collected once
    with monkeypatch.context() as m:
        m.setattr(grading, "collected", lambda *args: None)  # every grade through pytest.main
        fresh = _grades(conv_bn, worker, PLAN)
    assert kept == fresh
    scores = [r["score"] for r in kept]
    assert scores[0] < scores[1] and scores[2] < scores[1]  # the submission of each grade, not the last one's
    for result in kept:
        assert [t["number"] for t in result["tests"]] == [str(n) for n in range(1, len(result["tests"]) + 1)]
    assert {t["exercise"] for t in kept[2]["tests"]} == {"standardize"}
    # pytest's assertion-rewriting import hook is in place only while tests run
    assert all(getattr(hook, "config", None) is not session.config for hook in sys.meta_path)
    assert all(t["visibility"] == "visible" for t in kept[3]["tests"])


HOOKS = {  # each binds a hook or plugin list a kept session would call once for many submissions
    "def": "def pytest_sessionstart(session):\n    pass\n",
    "async def": "async def pytest_sessionfinish(session):\n    pass\n",
    "assigned": "def start(session):\n    pass\n\npytest_sessionstart = start\n",
    "imported": "from somewhere import pytest_configure\n",
    "imported as": "from somewhere import configure as pytest_configure\n",
    "star import": "from somewhere import *\n",
    "plugins": "pytest_plugins = ['somewhere']\n",
    "inside if": "import sys\nif sys.platform:\n    def pytest_configure(config):\n        pass\n",
    "hook class": "class pytest_plugin_like:\n    pass\n",
    "unparsable": "def broken(:\n",
}
FIXTURES_ONLY = """import pytest
from types import SimpleNamespace

LIMIT = 3


def helper(x):
    return x + LIMIT


@pytest.fixture(scope="session")
def helpers():
    return SimpleNamespace(helper=helper)
"""


def test_a_conftest_with_hooks_is_collected_each_time(tmp_path):
    (tmp_path / "sub").mkdir()
    assert collected.reusable(tmp_path)
    conftest = tmp_path / "sub" / "conftest.py"
    conftest.write_text(FIXTURES_ONLY)
    assert collected.reusable(tmp_path)  # fixtures and helpers only: a kept session is safe
    for how, text in HOOKS.items():
        conftest.write_text(FIXTURES_ONLY + "\n" + text)
        assert not collected.reusable(tmp_path), how
    for name in ("conv_bn_torch", "cs231n_pytorch"):  # their conftests hold fixtures and helpers only
        assert collected.reusable(load_assignment(name).tests_dir), name


# A conftest whose fixtures of every scope compute from the submission, and log their set-up
# and teardown: a fixture kept from one grade to the next would hand the second submission
# the first one's value, and the test below would give it the first one's score.
LEAK_CONFTEST = """from pathlib import Path

import pytest

from grader.notebook import source_of

LOG = Path(__file__).with_name("fixture_log.txt")


def _answer(submission):
    return source_of(submission.program, "answer").split("return")[-1].strip()


def _logged(scope, submission):
    value = _answer(submission)
    with LOG.open("a") as f:
        f.write(f"{scope} setup {value}\\n")
    yield value
    with LOG.open("a") as f:
        f.write(f"{scope} teardown {value}\\n")


@pytest.fixture(scope="session")
def session_answer(submission):
    yield from _logged("session", submission)


@pytest.fixture(scope="module")
def module_answer(submission):
    yield from _logged("module", submission)


@pytest.fixture
def answer_now(submission):
    return _answer(submission)
"""
LEAK_TESTS = """from grader.testing import exercise, points

pytestmark = exercise("answer")


@points(1)
def test_session_fixture(session_answer, answer_now):
    assert session_answer == answer_now == "1"


@points(1)
def test_module_fixture(module_answer, answer_now):
    assert module_answer == answer_now == "1"
"""


def test_conftest_fixtures_of_any_scope_never_reach_the_next_submission(tmp_path, monkeypatch):
    root = tmp_path / "conftest_demo"
    (root / "tests").mkdir(parents=True)
    (root / "tests" / "conftest.py").write_text(LEAK_CONFTEST)
    (root / "tests" / "test_answer.py").write_text(LEAK_TESTS)
    (root / "reference.py").write_text("def answer():\n    return 1\n")
    (root / "assignment.toml").write_text('reference = "reference.py"\nexercises = ["answer"]\n')
    right = notebook(tmp_path / "right.ipynb", "def answer():\n    return 1\n")
    wrong = notebook(tmp_path / "wrong.ipynb", "def answer():\n    return 2\n")
    assignment = load_assignment(root)
    log = root / "tests" / "fixture_log.txt"
    order = [right, wrong, right, wrong]

    def grades():
        log.unlink(missing_ok=True)
        return [_shown(grading.grade_submission(path, assignment, None)) for path in order]

    kept = grades()
    key = (str(assignment.tests_dir.resolve()), tuple(grading.pytest_args(assignment)))
    assert key in collected._KEPT  # graded through the kept session, not pytest.main
    assert [r["score"] for r in kept] == [2.0, 0.0, 2.0, 0.0]
    expected_log = []
    for value in ("1", "2", "1", "2"):  # each grade sets its fixtures up and tears them down
        expected_log += [f"session setup {value}", f"module setup {value}",
                         f"module teardown {value}", f"session teardown {value}"]
    assert log.read_text().splitlines() == expected_log
    with monkeypatch.context() as m:
        m.setattr(grading, "collected", lambda *args: None)  # every grade through pytest.main
        assert grades() == kept
    assert log.read_text().splitlines() == expected_log
    collected.drop(assignment.tests_dir, grading.pytest_args(assignment))
