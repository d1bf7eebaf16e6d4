"""Grade one submission: open it, run the assignment's pytest tests on it, collect results.

This is the single path every front end takes (CLI, batch, self-check, platform bundles),
so a submission gets the same grade wherever it is graded.
"""
from __future__ import annotations

import gc
import io
import os
import sys
import time
from contextlib import redirect_stdout, redirect_stderr
from pathlib import Path

import pytest

from grader.assignment.spec import Assignment
from grader.run.collected import collected, drop
from grader.run.plugin import CONTEXT, GradingContext, build_result
from grader.results import SubmissionResult
from grader.sandbox.client import Worker
from grader.run.submission import Submission


class _Inject:
    """Hands the prepared context to the plugin before collection starts."""

    def __init__(self, ctx: GradingContext):
        self.ctx = ctx

    @pytest.hookimpl(tryfirst=True)
    def pytest_configure(self, config):
        config.stash[CONTEXT] = self.ctx


def pytest_args(assignment: Assignment) -> list[str]:
    # unraisableexception/threadexception run gc.collect several times per session, which
    # costs over a second with TensorFlow objects alive: too much per submission.
    args = [str(assignment.tests_dir), "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
            "-p", "no:unraisableexception", "-p", "no:threadexception",
            "--import-mode=importlib", f"--rootdir={assignment.tests_dir}", "-o", "addopts=",
            "-o", "python_files=test_*.py", "-W", "ignore::DeprecationWarning"]
    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        args += ["-p", "grader.run.plugin"]
    return args


def _forget_other_test_modules(assignment: Assignment) -> None:
    """pytest's importlib mode names a test module after its file's stem and reuses a
    module of that name already in sys.modules, so in a process that grades several
    assignments, the first one's `tests/test_happy_model.py` would also be run for the
    next. Forget a same-named module that was loaded from another file."""
    for path in [*assignment.tests_dir.rglob("test_*.py"), *assignment.tests_dir.rglob("conftest.py")]:
        module = sys.modules.get(path.stem)
        where = getattr(module, "__file__", None)
        if module is not None and (where is None or Path(where).resolve() != path.resolve()):
            del sys.modules[path.stem]


def _run_tests(assignment: Assignment, ctx: GradingContext) -> int:
    """pytest on the assignment's tests for this submission: the tests collected once per
    process (grader.run.collected) when that is safe, else a whole `pytest.main`."""
    args = pytest_args(assignment)
    _forget_other_test_modules(assignment)
    kept = collected(assignment.tests_dir, args, _Inject, ctx)
    if kept is None:
        _forget_other_test_modules(assignment)
        return pytest.main(args, plugins=[_Inject(ctx)])
    try:
        return kept.run(ctx)
    except (KeyboardInterrupt, pytest.exit.Exception):  # what pytest.main reports as interrupted
        drop(assignment.tests_dir, args)  # a run that did not end cleanly: collect afresh next time
        return int(pytest.ExitCode.INTERRUPTED)
    except Exception as exc:  # noqa: BLE001 - pytest.main would report an internal error
        drop(assignment.tests_dir, args)
        print(f"internal error: {type(exc).__name__}: {exc}")
        return int(pytest.ExitCode.INTERNAL_ERROR)


def grade_submission(path: str | Path, assignment: Assignment, worker: Worker | None, *,
                     include_hidden: bool = True, seed: int = 0,
                     only_exercises: frozenset[str] | None = None,
                     sources: dict[str, str] | None = None, notebook=None) -> SubmissionResult:
    """`sources`, when given, receives each exercise's graded definition as found (""
    when missing) from the program extracted for grading: the class report needs it, and
    a notebook is parsed once per submission. `notebook`: the notebook as the caller
    already read it with `load_notebook` (or its LoadError), for the same reason."""
    started = time.perf_counter()
    submission = Submission(Path(path), assignment, worker, seed=seed, notebook=notebook)
    try:
        submission.open()
        if sources is not None and submission.program is not None:
            from grader.notebook import source_of
            sources.update({name: source_of(submission.program, name) for name in assignment.exercises})
        ctx = GradingContext(assignment, submission, include_hidden=include_hidden, only_exercises=only_exercises)
        if submission.load_error is None:
            sink = io.StringIO()
            with redirect_stdout(sink), redirect_stderr(sink):
                code = _run_tests(assignment, ctx)
            if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) and not ctx.results:
                ctx.warnings.append(f"the assignment's tests did not run (pytest exit {int(code)}): "
                                    f"{sink.getvalue()[-500:]}")
        result = build_result(ctx, time.perf_counter() - started)
        if submission.load_error is None and not ctx.results:
            result.errors.append(f"{path}: no test ran for this submission (see warnings)")
        return result
    finally:
        submission.close()
        release_models()


class _Memory:
    """When to pay for a full garbage collection.

    Keras' `clear_session()` runs `gc.collect()` by default: 0.16 s per submission, a
    quarter of a submission's grading. Python's own generational collector frees the
    submission's cycles anyway; a full collection is forced only every `every`
    submissions, or at once when the process has grown by `grow_mib` since the last one,
    so memory stays flat over a class without paying the collection on every submission.
    """

    every = 50
    grow_mib = 96.0

    def __init__(self) -> None:
        self.since = 0
        self.baseline_mib: float | None = None

    def due(self, rss_mib: float) -> bool:
        self.since += 1
        if self.baseline_mib is None:
            self.baseline_mib = rss_mib
        return self.since >= self.every or rss_mib - self.baseline_mib >= self.grow_mib

    def collected(self, rss_mib: float) -> None:
        self.since, self.baseline_mib = 0, rss_mib


_MEMORY = _Memory()


def _rss_mib() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20
    except (OSError, ValueError, IndexError):
        return 0.0


def release_models() -> None:
    """Drop the Keras graph state this submission's models left behind: without it a
    grading process grows ~1.5 MiB per submission, which adds up over a class.

    Keras 3's `clear_session()` also empties TensorFlow's kernel cache, after which every
    operation and traced function is instantiated again: that doubled the next
    submission's model calls (about 28 ms instead of 10 per call). The cache holds one
    entry per kind of operation, so it is emptied only with the full collection below."""
    full = _MEMORY.due(_rss_mib())
    for name in ("keras", "tf_keras"):
        module = sys.modules.get(name)
        if module is None:
            continue
        if name == "tf_keras":
            module.backend.clear_session()  # tf_keras' never collects
        elif full or not _reset_keras_state():
            module.backend.clear_session(free_memory=False)
    if full:
        gc.collect()
        _MEMORY.collected(_rss_mib())


def _reset_keras_state() -> bool:
    """What Keras 3's `clear_session()` resets (its global state: generated names, the
    functional API's bookkeeping; TensorFlow's default graph), without the kernel cache.
    False when this Keras keeps its state elsewhere: then clear_session() does it all."""
    try:
        import threading

        import tensorflow as tf
        from keras.src.backend.common import global_state
        if not (hasattr(global_state, "GLOBAL_STATE_TRACKER") and hasattr(global_state, "GLOBAL_SETTINGS_TRACKER")):
            return False
        global_state.GLOBAL_STATE_TRACKER = threading.local()
        global_state.GLOBAL_SETTINGS_TRACKER = threading.local()
        tf.compat.v1.reset_default_graph()
        return True
    except Exception:  # noqa: BLE001 - any surprise: the full clear_session()
        return False
