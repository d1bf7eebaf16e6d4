"""One code cell, parsed: its text, its syntax tree or why it has none, and its statements' source."""
from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from grader.notebook.cellnames import ordinal
from grader.notebook.ipython import _neutralize_ipython


@dataclass
class _Cell:
    index: int
    original: str  # as the student wrote it, for quoting lines back
    text: str  # IPython lines neutralized; what statements are sliced from
    tree: ast.Module | None = None
    problem: str = ""  # why it does not parse
    magic: str = ""  # the cell magic that makes the whole cell IPython's, e.g. "%%time"
    unread: str = ""  # why the grader did not parse it at all (a cap in grader.notebook.limits)
    label: str = ""  # how the student finds it (grader.notebook.cellnames), given by the notebook's reader
    _source: _Source | None = None

    @property
    def name(self) -> str:
        return self.label or f"the {ordinal(self.index + 1)} cell"

    def segment(self, node: ast.stmt) -> str:
        if self._source is None:
            self._source = _Source(self.text)
        return self._source.segment(node)


def _parse_cell(index: int, source: str, *, max_chars: int | None = None, name: str = "") -> _Cell:
    cell = _Cell(index, source, source, label=name)
    if max_chars is not None and len(source) > max_chars:
        cell.unread = (
            f"it holds {_size(len(source))} of code, more than the {_size(max_chars)} the grader reads "
            "in one cell; split it or remove pasted data"
        )
        return cell
    first = next((line.strip() for line in source.split("\n") if line.strip()), "")
    if first.startswith("%%"):
        cell.magic = first.split()[0]
        return cell
    cell.text = _neutralize_ipython(source)
    try:
        cell.tree = ast.parse(cell.text)
    except SyntaxError as exc:
        cell.problem = _syntax_problem(exc, source)
    except UnicodeEncodeError as exc:  # a lone surrogate, from a \ud800 escape in the JSON
        at = exc.start if isinstance(exc.object, str) and exc.object == cell.text else -1
        where = f" (U+{ord(cell.text[at]):04X} at line {cell.text.count(chr(10), 0, at) + 1})" if at >= 0 else ""
        cell.problem = f"it contains an invalid character{where}; was the file damaged?"
    except ValueError:
        cell.problem = "it contains a null byte (was the file damaged?)"
    except (RecursionError, MemoryError):
        cell.problem = "it is nested too deeply for Python to parse"
    return cell


def _size(chars: int) -> str:
    return f"{chars / 2**20:.1f} MB" if chars >= 2**20 else f"{-(-chars // 1024)} KB"


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
    return re.compile(rf"^(?:(?:async[ \t]+)?def|class)[ \t]+{re.escape(name)}\b", re.MULTILINE)


def _lines_of(text: str, offsets: Iterable[int]) -> Iterator[int]:
    """Line numbers of increasing offsets, counting each newline once: a cell with
    thousands of matches costs one pass over its text, not one pass per match."""
    line, at = 1, 0
    for offset in offsets:
        line += text.count("\n", at, offset)
        at = offset
        yield line


def _start_line(node: ast.stmt) -> int:
    decorators = getattr(node, "decorator_list", None) or []
    return min([node.lineno] + [d.lineno for d in decorators])


class _Source:
    """A cell's text cut into lines once, so each statement's source is sliced out in
    time proportional to its own length (ast.get_source_segment re-splits the whole
    cell for every statement, which made extraction quadratic in the cell's size).
    Columns in the tree are UTF-8 byte offsets; only the first and last line of a
    statement need them, and each line is encoded at most once."""

    def __init__(self, text: str) -> None:
        self.lines = text.split("\n")
        self._encoded: dict[int, bytes] = {}

    def _bytes(self, index: int) -> bytes:
        encoded = self._encoded.get(index)
        if encoded is None:
            encoded = self._encoded[index] = self.lines[index].encode("utf-8", "surrogatepass")
        return encoded

    def segment(self, node: ast.stmt) -> str:
        """The statement exactly as written, decorators included (ast puts a decorated
        def's position at the `def` keyword, so the span is widened to the first
        decorator's line)."""
        start = _start_line(node)
        end, end_col = node.end_lineno, node.end_col_offset
        if end is None or end_col is None or not 1 <= start <= end <= len(self.lines):
            return ast.unparse(node)
        col = 0 if start != node.lineno else node.col_offset
        first, last = start - 1, end - 1
        if first == last:
            return self._bytes(first)[col:end_col].decode("utf-8", "surrogatepass")
        head = self._bytes(first)[col:].decode("utf-8", "surrogatepass")
        tail = self._bytes(last)[:end_col].decode("utf-8", "surrogatepass")
        return "\n".join([head, *self.lines[first + 1 : last], tail])


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
    if not isinstance(cells, (list, tuple)):  # a damaged structure handed in directly: nothing to read
        return []
    return [c for c in cells if isinstance(c, dict)]


def _text(source: Any) -> str:
    if isinstance(source, list):  # notebooks that did not come through load_notebook
        text = "".join(s if isinstance(s, str) else str(s) for s in source)
    else:
        text = source if isinstance(source, str) else str(source or "")
    return text.replace("\r\n", "\n").replace("\r", "\n")
