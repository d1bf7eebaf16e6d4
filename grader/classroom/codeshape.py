"""Each graded function's code in the normalized form the class report compares.

It is computed at grading time, from the program the grading already extracted (the
notebook is parsed once per submission), and stored in the gradebook, so the report never
needs the submissions themselves. A failure here never costs a grade, but it is reported
as a value with a message, not swallowed: a report that silently compares nothing looks
like a class that never copies.
"""
from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass, field

class _DropDocstrings(ast.NodeTransformer):
    """Docstrings and other bare string statements (often commented-out code) say nothing
    about what the code does."""

    def generic_visit(self, node):
        super().generic_visit(node)
        for name in ("body", "orelse", "finalbody"):
            body = getattr(node, name, None)
            if isinstance(body, list) and body and all(isinstance(s, ast.stmt) for s in body):
                kept = [s for s in body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)
                                                and isinstance(s.value.value, str))]
                if len(kept) != len(body):
                    setattr(node, name, kept or ([ast.Pass()] if name == "body" else []))
        return node


def _bound_names(function: ast.AST) -> list[str]:
    """Names the function binds itself (parameters, assignments, loop and `with` targets,
    nested definitions, local imports), in order of first appearance; globals such as
    `np` or `tf` are left as they are, since they are part of what the code means."""
    order: dict[str, None] = {}
    declared_global: set[str] = set()

    def add(name: str | None) -> None:
        if name:
            order.setdefault(name, None)

    for node in _in_order(function):
        if node is function:
            continue
        if isinstance(node, ast.arg):
            add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            add(node.name)
        elif isinstance(node, ast.alias):
            add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler):
            add(node.name)
        elif isinstance(node, ast.Global):
            declared_global.update(node.names)
    return [n for n in order if n not in declared_global]


def _in_order(node: ast.AST):
    """Depth first in source order (ast.walk is breadth first), so that two functions that
    differ only in their names number their variables alike."""
    yield node
    for child in ast.iter_child_nodes(node):
        yield from _in_order(child)


class _Rename(ast.NodeTransformer):
    def __init__(self, names: dict[str, str]):
        self.names = names

    def visit_Name(self, node: ast.Name):
        node.id = self.names.get(node.id, node.id)
        return node

    def visit_arg(self, node: ast.arg):
        node.arg = self.names.get(node.arg, node.arg)
        self.generic_visit(node)
        return node

    def visit_ExceptHandler(self, node: ast.ExceptHandler):
        if node.name:
            node.name = self.names.get(node.name, node.name)
        self.generic_visit(node)
        return node

    def visit_alias(self, node: ast.alias):
        bound = (node.asname or node.name).split(".")[0]
        if bound in self.names and (node.asname or "." not in node.name):
            node.asname = self.names[bound]
        return node

    def _rename_def(self, node):
        node.name = self.names.get(node.name, node.name)
        self.generic_visit(node)
        return node

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _rename_def

    def visit_Nonlocal(self, node):
        node.names = [self.names.get(n, n) for n in node.names]
        return node


def normalize_source(source: str) -> str:
    """The code with comments, docstrings and layout gone and each function's own names
    replaced by v0, v1, ... in order of appearance, so that copied code still compares equal
    after cosmetic edits. The graded function keeps its name, globals keep theirs."""
    try:
        tree = ast.parse(textwrap.dedent(source))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return " ".join(source.split())
    tree = _DropDocstrings().visit(tree)
    for top in tree.body:
        if isinstance(top, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names = {name: f"v{i}" for i, name in enumerate(_bound_names(top))}
            keep = top.name
            _Rename(names).visit(top)
            top.name = keep
    try:
        return ast.unparse(tree)
    except (ValueError, RecursionError):  # pragma: no cover - unparse of a parsed tree
        return " ".join(source.split())


@dataclass
class CodeFacts:
    """exercise -> {"source", "normalized"}, and what could not be normalized and why."""

    code: dict[str, dict[str, str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def code_facts(sources: dict[str, str]) -> CodeFacts:
    facts = CodeFacts()
    for name, source in sources.items():
        try:
            normalized = normalize_source(source) if source else ""
        except Exception as exc:  # noqa: BLE001 - reported below, never a reason to lose a grade
            facts.problems.append(f"the code of `{name}` could not be normalized for the class report "
                                  f"({type(exc).__name__}: {exc}); it is left out of the similarity section")
            normalized = ""
        facts.code[name] = {"source": source, "normalized": normalized}
    return facts
