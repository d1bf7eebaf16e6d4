"""Finding each exercise's graded definition (tag first, then the last top-level `def` or
`class`), and, when there is none, the near misses a student actually makes."""
from __future__ import annotations

import ast
import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from grader.notebook.cells import _Cell, _def_pattern, _lines_of, _start_line, _text
from grader.notebook.model import Located
from grader.notebook.statements import _import_names, _is_def, _target_names


def _tags_of(cell: Any) -> set[str]:
    """Exercise names a cell is tagged for, in the three conventions assignments use:
    a plain tag, nbgrader's grade_id, and otter's `exercise:NAME` tag."""
    metadata = cell.get("metadata") or {}
    if not isinstance(metadata, dict):
        return set()
    tags = metadata.get("tags") or []
    if isinstance(tags, str):
        tags = [tags]
    names: set[str] = set()
    for tag in tags if isinstance(tags, list) else []:
        if not isinstance(tag, str):
            continue
        tag = tag.strip()
        names.add(tag)
        if tag.startswith("exercise:"):
            names.add(tag[len("exercise:") :].strip())
    nbgrader = metadata.get("nbgrader")
    if isinstance(nbgrader, dict) and isinstance(nbgrader.get("grade_id"), str):
        names.add(nbgrader["grade_id"].strip())
    return names


@dataclass
class _Candidate:
    cell: _Cell
    line: int
    node: ast.stmt | None  # None when the cell does not parse or is a cell magic
    tagged: bool

    @property
    def where(self) -> str:
        return f"{self.cell.name} (line {self.line})"


def _candidates(name: str, cells: list[_Cell], tagged: set[int]) -> list[_Candidate]:
    found = []
    pattern = _def_pattern(name)
    for cell in cells:
        if cell.tree is not None:
            for node in cell.tree.body:
                # A class is an exercise too: PyTorch assignments grade `class Model(nn.Module)`.
                if (_is_def(node) or isinstance(node, ast.ClassDef)) and node.name == name:
                    found.append(_Candidate(cell, _start_line(node), node, cell.index in tagged))
        else:
            # Unparsable and cell-magic cells are searched as text, so a student whose
            # function has a typo hears about the typo rather than "not found".
            starts = (match.start() for match in pattern.finditer(cell.original))
            for line in _lines_of(cell.original, starts):
                found.append(_Candidate(cell, line, None, cell.index in tagged))
    return found


_CONTAINERS = {
    ast.If: "an `if` block",
    ast.For: "a `for` loop",
    ast.AsyncFor: "a `for` loop",
    ast.While: "a `while` loop",
    ast.With: "a `with` block",
    ast.AsyncWith: "a `with` block",
    ast.Try: "a `try` block",
}


def _container(node: ast.stmt) -> str:
    if _is_def(node):
        return f"the function `{node.name}`"
    if isinstance(node, ast.ClassDef):
        return f"the class `{node.name}`"
    for kind, words in _CONTAINERS.items():
        if isinstance(node, kind):
            return words
    return "another statement"


def _near_misses(cells: list[_Cell]) -> dict[str, list[str]]:
    """Name -> hints about the top-level code that binds or hides that name without
    defining it at the top level, in notebook order. One walk over every statement,
    however many exercises are missing (a walk per missing exercise made the cost
    exercises x notebook size)."""
    hints: dict[str, list[str]] = {}

    def add(name: str, hint: str) -> None:
        hints.setdefault(name, []).append(hint)

    for cell in cells:
        if cell.tree is None:
            continue
        for top in cell.tree.body:
            if isinstance(top, (ast.Assign, ast.AnnAssign)):
                targets = top.targets if isinstance(top, ast.Assign) else [top.target]
                bound = dict.fromkeys(n for t in targets for n in (_target_names(t) or []))
                for name in bound:
                    lambda_ = isinstance(top.value, ast.Lambda)
                    what = f"assigns a lambda to `{name}`" if lambda_ else f"assigns `{name} = ...`"
                    add(name, f"{cell.name} (line {top.lineno}) {what}; the grader needs "
                              f"a function written as `def {name}(...):`")
                continue
            if isinstance(top, (ast.Import, ast.ImportFrom)):
                for name in dict.fromkeys(_import_names(top)):
                    add(name, f"{cell.name} (line {top.lineno}) imports `{name}` instead of defining it "
                              "in the notebook")
                continue
            # A def nested anywhere inside this statement: the first one of each name.
            own = top.name if _is_def(top) or isinstance(top, ast.ClassDef) else None
            seen: set[str] = set()
            for inner in ast.walk(top):
                if inner is not top and _is_def(inner) and inner.name != own and inner.name not in seen:
                    seen.add(inner.name)
                    add(inner.name, f"{cell.name} (line {inner.lineno}) has `def {inner.name}` indented inside "
                                    f"{_container(top)}; it must start at the beginning of a line, outside any block")
    return hints


def _why_not_found(name: str, near_misses: dict[str, list[str]], nb_cells: list[Any], defined: list[str],
                   names: list[str]) -> list[str]:
    """Hints for a missing exercise: the near misses a student actually makes."""
    hints: list[str] = list(near_misses.get(name, []))
    pattern = _def_pattern(name)
    for index, nb_cell in enumerate(nb_cells):
        kind = nb_cell.get("cell_type")
        if kind in ("markdown", "raw") and pattern.search(_text(nb_cell.get("source", ""))):
            hints.append(
                f"{names[index]} contains `def {name}` but is a {kind} cell; change its type to Code"
            )
    if not hints:
        others = [d for d in defined if d != name]
        close = [d for d in others if d.lower() == name.lower()]
        close += difflib.get_close_matches(name, [d for d in others if d not in close], n=1, cutoff=0.75)
        if close:
            hints.append(f"did you rename it? the notebook defines `{close[0]}`")
    return hints


@dataclass
class _Selection:
    located: dict[str, Located]
    missing: dict[str, str]
    warnings: list[str]
    chosen: set[int]  # id() of each chosen def node, for the chunk pass
    reported_cells: set[int]  # cells whose syntax error or magic already appears in `missing`


def _select(exercises: Sequence[str], cells: list[_Cell], nb_cells: list[Any], names: list[str]) -> _Selection:
    tags = {index: _tags_of(cell) for index, cell in enumerate(nb_cells)}
    notebook_uses_tags = any(names & set(exercises) for names in tags.values())
    defined = sorted({node.name for c in cells if c.tree for node in c.tree.body if _is_def(node)})
    result = _Selection({}, {}, [], set(), set())
    near_misses: dict[str, list[str]] | None = None  # built at the first missing exercise
    for name in exercises:
        tagged = {i for i, names in tags.items() if name in names and nb_cells[i].get("cell_type") == "code"}
        found = _candidates(name, cells, tagged)
        pool = [c for c in found if c.tagged] or found
        if not pool:
            if tagged:
                base = f"{names[min(tagged)]} is tagged '{name}' but no code cell has a top-level `def {name}`"
            else:
                base = (
                    f"no cell defines `{name}` (no cell tagged '{name}' and no top-level "
                    f"`def {name}` in any code cell)"
                )
            if near_misses is None:
                near_misses = _near_misses(cells)
            result.missing[name] = "; ".join([base] + _why_not_found(name, near_misses, nb_cells, defined, names))
            continue
        chosen = pool[-1]
        cell = chosen.cell
        if chosen.node is None:
            result.reported_cells.add(cell.index)
            if cell.unread:
                note = f"tagged '{name}'" if chosen.tagged else f"which defines `{name}`"
                result.missing[name] = f"{cell.name} ({note}) was not read: {cell.unread}"
            elif cell.magic:
                result.missing[name] = (
                    f"{cell.name} defines `{name}` but starts with the cell magic `{cell.magic}`, so the "
                    f"grader does not run it; move `{name}` to a cell without `{cell.magic}`"
                )
            else:
                note = f"tagged '{name}'" if chosen.tagged else f"which defines `{name}`"
                result.missing[name] = f"{cell.name} ({note}) does not parse: {cell.problem}"
            continue
        how = "tag" if chosen.tagged else "def"
        result.located[name] = Located(name, cell.index, how, chosen.line)
        result.chosen.add(id(chosen.node))
        if how == "def" and tagged:
            result.warnings.append(
                f"{names[min(tagged)]} is tagged '{name}' but does not define it; grading `def {name}` "
                f"found by name in {cell.name}"
            )
        elif how == "def" and notebook_uses_tags:
            result.warnings.append(f"`{name}` found in {cell.name} by name; its '{name}' tag is missing")
        if len(found) > 1:
            reason = "the tagged one" if chosen.tagged and len(pool) < len(found) else "the last one"
            others = ", ".join(c.where for c in found if c is not chosen)
            result.warnings.append(
                f"`{name}` is defined {len(found)} times; grading {reason}, {chosen.where}, "
                f"and ignoring {others}"
            )
    return result
