"""One code cell, parsed: its text, its syntax tree or why it has none, and its statements' source."""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from grader.notebook.ipython import _neutralize_ipython


@dataclass
class _Cell:
    index: int
    original: str  # as the student wrote it, for quoting lines back
    text: str  # IPython lines neutralized; what statements are sliced from
    tree: ast.Module | None = None
    problem: str = ""  # why it does not parse
    magic: str = ""  # the cell magic that makes the whole cell IPython's, e.g. "%%time"

    @property
    def name(self) -> str:
        return f"cell {self.index + 1}"


def _parse_cell(index: int, source: str) -> _Cell:
    cell = _Cell(index, source, source)
    first = next((line.strip() for line in source.split("\n") if line.strip()), "")
    if first.startswith("%%"):
        cell.magic = first.split()[0]
        return cell
    cell.text = _neutralize_ipython(source)
    try:
        cell.tree = ast.parse(cell.text)
    except SyntaxError as exc:
        cell.problem = _syntax_problem(exc, source)
    except ValueError:
        cell.problem = "it contains a null byte (was the file damaged?)"
    except (RecursionError, MemoryError):
        cell.problem = "it is nested too deeply for Python to parse"
    return cell


def _syntax_problem(exc: SyntaxError, source: str) -> str:
    lines = source.split("\n")
    number = exc.lineno or 0
    if 1 <= number <= len(lines):
        code = lines[number - 1].strip()
    else:
        code = (exc.text or "").strip()
    message = exc.msg or "invalid syntax"
    if code:
        return f"{message} at line {number}: `{_shorten(code)}`"
    return f"{message} at line {number}"


def _shorten(code: str, limit: int = 80) -> str:
    return code if len(code) <= limit else code[: limit - 1] + "…"


def _def_pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"^(?:async[ \t]+)?def[ \t]+{re.escape(name)}\b", re.MULTILINE)


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _start_line(node: ast.stmt) -> int:
    decorators = getattr(node, "decorator_list", None) or []
    return min([node.lineno] + [d.lineno for d in decorators])


def _segment(text: str, node: ast.stmt) -> str:
    """The statement exactly as written, decorators included (ast puts a decorated
    def's position at the `def` keyword, and columns are UTF-8 byte offsets, so
    ast.get_source_segment does the byte arithmetic on a widened span)."""
    start = _start_line(node)
    span = SimpleNamespace(
        lineno=start,
        col_offset=0 if start != node.lineno else node.col_offset,
        end_lineno=node.end_lineno,
        end_col_offset=node.end_col_offset,
    )
    segment = ast.get_source_segment(text, span)
    return segment if segment is not None else ast.unparse(node)


def code_cells(nb: Any) -> list[tuple[int, str]]:
    """(index in nb.cells, source) of every code cell, tolerating list-of-lines sources
    so it also works on notebooks that did not come through load_notebook."""
    out = []
    for index, cell in enumerate(_cells(nb)):
        if cell.get("cell_type") == "code":
            out.append((index, _text(cell.get("source", ""))))
    return out


def _cells(nb: Any) -> list[Any]:
    cells = nb.get("cells", []) if isinstance(nb, dict) else getattr(nb, "cells", [])
    return [c for c in cells if isinstance(c, dict)]


def _text(source: Any) -> str:
    text = "".join(source) if isinstance(source, list) else str(source or "")
    return text.replace("\r\n", "\n").replace("\r", "\n")
