"""Which of an assignment's tests may go into a student kit, and the visible part of a test file.

A test is kit-safe when it is visible and everything it asks the reference can be answered
from a recording made at export time. That fails when a reference call's arguments come
from the student's answer (`submission`), when it depends on a hidden test (which the kit
does not have), or when the reference returns something that is not data. Two checks find such tests: a reading of the test's code
(`static_problems`), and a comparison of what two correct submissions with different
content asked the reference (`grader.kit.export`).
"""
from __future__ import annotations

import ast
import io
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

# Fixtures whose values differ between submissions: a reference call fed from them cannot
# be recorded once for every student. (`hidden_rng` draws the same inputs for every
# submission in a visible test, so what a visible test gives the reference from it is fixed.)
PER_SUBMISSION = frozenset({"submission"})


@dataclass(frozen=True)
class TestInfo:
    nodeid: str
    path: Path
    function: str  # the test function's name (without parameters)
    visible: bool
    depends: tuple[str, ...]


def collect(assignment) -> list[TestInfo]:
    """The assignment's tests as pytest sees them (markers included), without running any."""
    import pytest

    from grader.run.grading import _forget_other_test_modules, pytest_args
    from grader.run.plugin import _visibility
    from grader.results import Visibility

    found: list[TestInfo] = []

    class Collector:
        @pytest.hookimpl(trylast=True)
        def pytest_collection_modifyitems(self, items):
            for item in items:
                marker = item.get_closest_marker("depends")
                found.append(TestInfo(
                    nodeid=item.nodeid, path=Path(item.path), visible=_visibility(item) is Visibility.VISIBLE,
                    function=getattr(item, "originalname", None) or item.name.split("[")[0],
                    depends=tuple(str(a) for a in (marker.args if marker else ()))))

    _forget_other_test_modules(assignment)
    sink = io.StringIO()
    with redirect_stdout(sink), redirect_stderr(sink):
        code = pytest.main([*pytest_args(assignment), "--collect-only"], plugins=[Collector()])
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        raise ValueError(f"the tests of {assignment.name} could not be collected (pytest exit {int(code)}):\n"
                         f"{sink.getvalue()[-1500:]}")
    return found


# ---------------------------------------------------------------- reading a test's code

def _names_in(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _targets(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


def _tainted_names(func: ast.FunctionDef) -> set[str]:
    """Names whose values may come from a per-submission fixture, followed through
    assignments, loops and `with` until nothing changes."""
    tainted = {a.arg for a in func.args.args if a.arg in PER_SUBMISSION}
    changed = True
    while changed:
        changed = False
        for node in ast.walk(func):
            sources: list[tuple[ast.AST, ast.AST]] = []
            if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                sources = [(t, node.value) for t in targets]
            elif isinstance(node, (ast.For, ast.comprehension)):
                sources = [(node.target, node.iter)]
            elif isinstance(node, ast.withitem) and node.optional_vars is not None:
                sources = [(node.optional_vars, node.context_expr)]
            elif isinstance(node, ast.NamedExpr):
                sources = [(node.target, node.value)]
            for target, value in sources:
                if _names_in(value) & tainted:
                    new = _targets(target) - tainted
                    if new:
                        tainted |= new
                        changed = True
    return tainted


def static_problems(func: ast.FunctionDef) -> list[str]:
    """Why this test's reference calls cannot be recorded, read from its code."""
    params = {a.arg for a in func.args.args}
    if "reference" not in params:
        return []
    tainted = _tainted_names(func)
    problems = []
    for node in ast.walk(func):
        if not isinstance(node, ast.Call):
            continue
        if isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name) \
                and node.func.value.id == "reference":
            used = set()
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                used |= _names_in(arg) & tainted
            if used:
                problems.append(f"line {node.lineno}: reference.{node.func.attr}(...) is given "
                                f"{', '.join(sorted(used))}, which differs between submissions")
        elif any(isinstance(a, ast.Name) and a.id == "reference" for a in [*node.args, *(k.value for k in node.keywords)]):
            problems.append(f"line {node.lineno}: the reference itself is passed to "
                            f"{ast.unparse(node.func)}(...), which the kit cannot follow")
    return problems


def test_function(tree: ast.Module, name: str) -> ast.FunctionDef | None:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            return node
    return None


# ---------------------------------------------------------------- the visible part of a file

def _defined(node: ast.stmt) -> set[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return set().union(*(_targets(t) for t in targets))
    return set()


def _used(nodes: list[ast.stmt]) -> set[str]:
    """Every name the code mentions: loads, parameters (fixtures) and strings (depends)."""
    used: set[str] = set()
    for top in nodes:
        for n in ast.walk(top):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load):
                used.add(n.id)
            elif isinstance(n, ast.arg):
                used.add(n.arg)
            elif isinstance(n, ast.Constant) and isinstance(n.value, str):
                used.add(n.value)
            elif isinstance(n, ast.Attribute):
                used.add(n.attr)
    return used


def visible_source(source: str, keep_tests: set[str], drop_tests: set[str]) -> str:
    """The file without its hidden tests, nor the helpers and constants only they used.

    Whole top-level statements are removed by their line ranges (decorators and comments
    directly above included), so what stays is the instructor's text, unchanged."""
    tree = ast.parse(source)
    body = list(tree.body)
    dropped = [n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name in drop_tests]
    kept = [n for n in body if n not in dropped]
    while True:  # helpers used only by removed code go too, until nothing else does
        removable = []
        for node in kept:
            names = _defined(node)
            if not names or names & keep_tests or "pytestmark" in names or any(n.startswith("__") for n in names):
                continue
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.decorator_list:
                continue  # fixtures and the like are used by name, not by reference
            others = [n for n in kept if n is not node]
            if not names & _used(others):
                removable.append(node)
        if not removable:
            break
        dropped += removable
        kept = [n for n in kept if n not in removable]
    lines = source.splitlines(keepends=True)
    gone: set[int] = set()
    for node in dropped:
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        while start > 1 and lines[start - 2].lstrip().startswith("#"):
            start -= 1  # the comment that explains this statement leaves with it
        gone.update(range(start, (node.end_lineno or node.lineno) + 1))
    text = "".join(line for number, line in enumerate(lines, start=1) if number not in gone)
    while "\n\n\n\n" in text:
        text = text.replace("\n\n\n\n", "\n\n\n")
    return text


__all__ = ["PER_SUBMISSION", "TestInfo", "collect", "static_problems", "test_function", "visible_source"]
