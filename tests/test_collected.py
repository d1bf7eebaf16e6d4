"""Tests collected once per grading process (grader.run.collected) grade exactly as a fresh
`pytest.main` per submission does: same results, same numbering, the same selection of
tests per grade, nothing carried from one submission to the next."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from grader.run import collected, grading  # noqa: E402
from grader.spec.assignment import load_assignment  # noqa: E402

SAMPLES = Path(__file__).resolve().parent.parent / "assignments" / "conv_bn" / "samples"
NUMPY_ONLY = frozenset({"standardize", "batchnorm_forward"})  # quick: no model is built


@pytest.fixture(scope="module")
def conv_bn():
    return load_assignment("conv_bn")


@pytest.fixture(scope="module")
def worker(conv_bn):
    from grader.sandbox.client import Worker
    worker = Worker(keras=conv_bn.keras).start()
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


def test_an_assignment_with_a_conftest_is_collected_each_time(tmp_path):
    (tmp_path / "sub").mkdir()
    assert collected.reusable(tmp_path)
    (tmp_path / "sub" / "conftest.py").write_text("def pytest_sessionstart(session):\n    pass\n")
    assert not collected.reusable(tmp_path)
