"""An assignment's tests, collected by pytest once per grading process and run again for
each submission.

`pytest.main()` configures pytest, loads its plugins, imports and collects the test
modules, then runs them: about 35 ms of a conv_bn submission's grading went to everything
but the tests. Here the configured session and its collected items are kept (per tests
folder and pytest arguments) and each submission runs pytest's own test loop over them,
with its context in the config's stash: the same hooks, fixtures, markers and reports per
test as before, in the same order. A session-scoped fixture is torn down after the last
test, as in any pytest session, so nothing one submission's tests computed reaches the
next; a conftest.py's fixtures, of any scope, are torn down the same way. Anything
unusual falls back to `pytest.main()`: a conftest.py with hooks or plugins (`reusable`:
they may expect a session per submission), a collection error, a run that did not end
cleanly (the kept session is then dropped).
"""
from __future__ import annotations

import ast
import io
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

from grader.run.plugin import CONTEXT, GradingContext, number_items, select_items


@dataclass
class Collected:
    """A configured pytest session with every test of one tests folder collected."""

    config: Any
    session: Any
    items: list = field(default_factory=list)

    def run(self, ctx: GradingContext) -> int:
        """Run the tests `ctx` selects; pytest's exit code, as `pytest.main` gives it."""
        config, session = self.config, self.session
        config.stash[CONTEXT] = ctx
        keep, drop = select_items(ctx, self.items)
        number_items(keep)
        for item in keep:
            _forget_last_run(item)
        session.items, session.testscollected = keep, len(keep)
        session.testsfailed, session.shouldfail, session.shouldstop = 0, False, False
        capture = config.pluginmanager.get_plugin("capturemanager")
        if capture is not None:
            capture.resume_global_capture()
        _import_hook(config, installed=True)
        try:
            if drop:
                config.hook.pytest_deselected(items=drop)
            if keep:
                config.hook.pytest_runtestloop(session=session)
        finally:
            _import_hook(config, installed=False)
            if capture is not None:
                capture.suspend_global_capture(in_=True)
                capture.read_global_capture()  # printed outside any test: nobody's output
            _forget_reports(config)
        if not keep:
            return int(pytest.ExitCode.NO_TESTS_COLLECTED)
        return int(pytest.ExitCode.TESTS_FAILED if session.testsfailed else pytest.ExitCode.OK)

    def close(self) -> None:
        try:
            self.config._ensure_unconfigure()
        except Exception:  # noqa: BLE001 - a session being dropped cannot do more harm
            pass


def _import_hook(config, *, installed: bool) -> None:
    """pytest's assertion-rewriting import hook, in place only while tests run: between
    runs the process (a student's own kernel, for check()) imports as if pytest were gone."""
    try:
        from _pytest.assertion.rewrite import assertstate_key
        hook = config.stash[assertstate_key].hook
    except (ImportError, KeyError, AttributeError):
        return
    if hook is None:
        return
    if installed and hook not in sys.meta_path:
        sys.meta_path.insert(0, hook)
    elif not installed and hook in sys.meta_path:
        sys.meta_path.remove(hook)


def _forget_last_run(item) -> None:
    """What pytest keeps on an item from its last run (its report sections)."""
    item._report_sections = []


def _forget_reports(config) -> None:
    """The terminal reporter keeps every report for its final summary, which a kept session
    never prints: without this a grading process would grow with every submission."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and isinstance(getattr(reporter, "stats", None), dict):
        reporter.stats.clear()
        file = getattr(getattr(reporter, "_tw", None), "_file", None)
        if isinstance(file, io.StringIO):
            file.seek(0)
            file.truncate()


_KEPT: dict[tuple, Collected] = {}


def reusable(tests_dir: Path) -> bool:
    """A conftest.py's hooks (`pytest_sessionstart`, ...) or plugins may have been written
    for one session per submission, so a kept session would call them once for many; its
    fixtures and helpers are torn down per run like the plugin's own and are safe. Decided
    by reading each conftest: one that does not parse is left to `pytest.main` to report."""
    return all(_fixtures_only(path) for path in Path(tests_dir).rglob("conftest.py"))


def _fixtures_only(conftest: Path) -> bool:
    """No name starting with `pytest_` bound anywhere in the file (a hook or `pytest_plugins`,
    however defined, assigned or imported) and no `import *` that could bring one. A name
    made at run time (`globals()[...]`) is beyond a reading; conftests are the instructor's
    own files, so this guards against a slip, not against an adversary."""
    try:
        tree = ast.parse(conftest.read_bytes(), filename=str(conftest))
    except (OSError, SyntaxError, ValueError):
        return False
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names = [node.name]
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names = [node.id]
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [alias.asname or alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.Global):
            names = list(node.names)
        else:
            continue
        if any(name == "*" or name.startswith("pytest_") for name in names):
            return False
    return True


def collected(tests_dir: Path, args: list[str], make_plugin: Callable[[GradingContext], Any],
              ctx: GradingContext) -> Collected | None:
    """The kept session for these tests, collected now if need be; None when the tests
    must run through `pytest.main` (see the module docstring)."""
    key = (str(Path(tests_dir).resolve()), tuple(args))
    found = _KEPT.get(key)
    if found is None and reusable(tests_dir):
        found = _collect(args, make_plugin(ctx.for_collection()))
        if found is not None:
            _KEPT[key] = found
    return found


def drop(tests_dir: Path, args: list[str]) -> None:
    """Forget a kept session (its last run did not end cleanly)."""
    found = _KEPT.pop((str(Path(tests_dir).resolve()), tuple(args)), None)
    if found is not None:
        found.close()


def _collect(args: list[str], plugin: Any) -> Collected | None:
    from _pytest.config import _prepareconfig
    from _pytest.main import Session

    config = _prepareconfig(list(args), plugins=[plugin])
    kept = Collected(config, None)
    try:
        config._do_configure()
        session = Session.from_config(config)
        kept.session = session
        config.hook.pytest_sessionstart(session=session)
        config.hook.pytest_collection(session=session)
        if session.testsfailed or not session.items:
            kept.close()
            return None
        kept.items = list(session.items)
    except BaseException:
        kept.close()
        raise
    _import_hook(config, installed=False)
    capture = config.pluginmanager.get_plugin("capturemanager")
    if capture is not None:  # the grading process gets its own output back between runs
        capture.suspend_global_capture(in_=True)
        capture.read_global_capture()
    _forget_reports(config)
    return kept


__all__ = ["Collected", "collected", "drop", "reusable"]
