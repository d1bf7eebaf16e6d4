"""docs/authoring.md describes everything an assignment author can use: every spec key,
fixture, `submission` method, marker and check. When one is added without documentation,
this fails and names it."""
from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from grader import testing
from grader.assignment import SPEC_KEYS
from grader.checks import architecture, arrays, batchnorm, models, standardize
from grader.submission import Submission

GUIDE = (Path(__file__).resolve().parent.parent / "docs" / "authoring.md").read_text(encoding="utf-8")


def test_every_spec_key_has_a_row_in_the_keys_table():
    missing = [k.name for k in SPEC_KEYS if f"| `{k.name}` |" not in GUIDE]
    assert not missing, f"document these assignment.toml keys in docs/authoring.md: {missing}"


def test_every_fixture_and_submission_method_is_described():
    for fixture in ("submission", "reference", "hidden_rng"):
        assert f"| `{fixture}` |" in GUIDE, fixture
    public = [n for n, f in inspect.getmembers(Submission, inspect.isfunction)
              if not n.startswith("_") and n not in ("open", "close", "take_output", "use_channel")]
    assert {"call", "call_full", "model", "probe", "probe_model", "source"} <= set(public)
    missing = [n for n in public if f"`{n}(" not in GUIDE]
    assert not missing, f"document these submission methods in docs/authoring.md: {missing}"


def test_every_marker_is_described():
    missing = [n for n in testing.__all__ if n != "CheckFailed" and f"`{n}" not in GUIDE]
    assert not missing, f"document these markers in docs/authoring.md: {missing}"


@pytest.mark.parametrize("module", [architecture, models, arrays, batchnorm, standardize],
                         ids=lambda m: m.__name__)
def test_every_check_is_described(module):
    functions = [n for n in module.__all__ if inspect.isfunction(getattr(module, n))]
    assert functions
    missing = [n for n in functions if f"`{n}(" not in GUIDE]
    assert not missing, f"document these checks of {module.__name__} in docs/authoring.md: {missing}"
