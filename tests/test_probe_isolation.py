"""Student code that runs at definition time can neither read the instructor's probes nor
break them into "the grader's own check failed" (issue 20).

A class body, a decorator or a default argument runs while the notebook's definitions
load. Here it wraps `builtins.compile` and `builtins.exec` to record what they are given,
replaces `__import__`, `sys.modules` entries and the import hooks, or patches a module the
probes use: through the real sandbox, the probes load and answer as for an honest
student, nothing of their source reaches the student's code, and a failure the student's
own code caused is reported as theirs.
"""
from __future__ import annotations

import re

import pytest

from conftest import notebook
from grader.assignment.spec import load_assignment
from grader.run.grading import grade_submission
from grader.sandbox.errors import ProbeBlocked, ProbeError
from grader.run.submission import Submission

MARKER = "probe-source-marker-7f3a"

SPEC = """\
name = "probe_guard"
exercises = ["double"]
reference = "reference.py"
probes = "probes.py"
call_timeout = 20
secret = "probe-guard-secret"
"""

REFERENCE = "def double(x):\n    return 2 * x\n"

PROBES = f'''\
import inspect as _inspect
import json as _json

_SHAPE = _inspect.signature(lambda x: x)  # the probes use a module while they load
# {MARKER}


def doubled(x):
    """{MARKER}"""
    return _json.loads(_json.dumps(double(x)))
'''

TESTS = '''\
from grader.testing import exercise, points


@points(1)
@exercise("double")
def test_doubled_through_the_probe(submission):
    assert submission.probe("doubled", 3) == 6
'''

HONEST = "def double(x):\n    return 2 * x\n"

SPY = '''\
import builtins

SEEN = []


class _Spy:
    _compile, _exec = builtins.compile, builtins.exec

    def _seen_compile(source, *args, _real=_compile, **kwargs):
        SEEN.append(str(source)[:20000])
        return _real(source, *args, **kwargs)

    def _seen_exec(code, *args, _real=_exec, **kwargs):
        SEEN.append(repr(getattr(code, "co_consts", code))[:20000])
        return _real(code, *args, **kwargs)

    builtins.compile, builtins.exec = _seen_compile, _seen_exec


def double(x):
    return 2 * x


def seen():
    return "\\n".join(SEEN)
'''

BREAKER = '''\
import builtins
import sys


class _Breaker:
    _real_import = builtins.__import__

    def _no_import(name, *args, _real=_real_import, **kwargs):
        if name in ("inspect", "json"):
            raise ImportError("no " + name + " for the grader")
        return _real(name, *args, **kwargs)

    builtins.__import__ = _no_import
    builtins.compile = None
    builtins.exec = None
    sys.modules["inspect"] = None
    sys.modules["json"] = None
    sys.path_hooks.insert(0, None)


def double(x):
    return 2 * x
'''

PATCHER = '''\
import inspect


def _boom(*args, **kwargs):
    raise ValueError("inspect is mine now")


def _patch(signature=setattr(inspect, "signature", _boom)):
    return signature


def double(x):
    return 2 * x
'''


@pytest.fixture(scope="module")
def guard(tmp_path_factory):
    root = tmp_path_factory.mktemp("probe_guard")
    (root / "tests").mkdir()
    (root / "assignment.toml").write_text(SPEC)
    (root / "reference.py").write_text(REFERENCE)
    (root / "probes.py").write_text(PROBES)
    (root / "tests" / "test_guard.py").write_text(TESTS)
    return load_assignment(root)


def _open(tmp_path, guard, worker, source: str) -> Submission:
    return Submission(notebook(tmp_path / "student.ipynb", source), guard, worker).open()


def test_code_run_at_definition_time_never_sees_the_probes(tmp_path, guard, worker):
    sub = _open(tmp_path, guard, worker, SPY)
    try:
        assert sub.probe("doubled", 3) == 6
        seen = sub.call("seen")
    finally:
        sub.close()
    assert MARKER not in seen and "_SHAPE" not in seen and "doubled" not in seen


def test_code_run_at_definition_time_cannot_stop_the_probes_loading(tmp_path, guard, worker):
    sub = _open(tmp_path, guard, worker, BREAKER)
    try:
        assert sub.probe("doubled", 21) == 42
    finally:
        sub.close()


def test_a_probe_failure_the_students_code_caused_is_the_students(tmp_path, guard, worker):
    sub = _open(tmp_path, guard, worker, PATCHER)
    try:
        with pytest.raises(ProbeBlocked, match=re.escape("your `_boom` (the cell starting `import inspect`, line 5) "
                                                         "raised ValueError: inspect is mine")):
            sub.probe("doubled", 3)
    finally:
        sub.close()
    result = grade_submission(notebook(tmp_path / "graded.ipynb", PATCHER), guard, worker)
    (test,) = result.tests
    assert test.score == 0 and "_boom" in test.message, test.message
    assert "not your fault" not in test.message and test.diagnosis != "grader_error"


def test_an_honest_student_still_gets_the_instructors_errors(tmp_path, guard, worker):
    broken = guard.root / "probes.py"
    good = broken.read_text()
    try:
        broken.write_text(good + "\n_BROKEN = 1 / 0\n")
        sub = _open(tmp_path, guard, worker, HONEST)
        try:
            with pytest.raises(ProbeError, match="ZeroDivisionError"):
                sub.probe("doubled", 3)
        finally:
            sub.close()
    finally:
        broken.write_text(good)
    result = grade_submission(notebook(tmp_path / "honest.ipynb", HONEST), guard, worker)
    assert result.score == result.max_score == 1
