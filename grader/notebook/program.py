"""Select, in notebook order, the statements the sandbox runs (`extract_program`)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from grader.notebook.cells import _cells, _def_pattern, _parse_cell, _segment, _shorten, _start_line, code_cells
from grader.notebook.locate import _select
from grader.notebook.model import Chunk, Program
from grader.notebook.statements import _classify, _is_future, _is_grader_import


def extract_program(nb: Any, exercises: Sequence[str]) -> Program:
    """Select, in notebook order, the statements the sandbox runs, and where each
    exercise's graded definition is.

    Kept: imports (one chunk per statement; `from __future__` becomes `Program.future`),
    `def` / `async def` / `class` (decorators included), and assignments of constants
    to plain names. A constant is a literal (`1e-3`, `(64, 64, 3)`, `{"a": [1, 2]}`),
    cheap number arithmetic (`2**10`, `-1 / 255`), or a dotted name rooted at an
    earlier import (`DTYPE = np.float32`). Everything else (calls, loops, `with`, `if`
    including `if __name__ == "__main__":`, bare expressions, assignments computed at
    run time such as `x = load_data()`) is skipped and counted in `skipped`.

    Each exercise gets exactly one definition: the last top-level `def` in a cell tagged
    for it, else the last top-level `def` anywhere. Every other statement that would
    rebind that name (another `def`, a class, a constant assignment, an import) is
    dropped so that stale code later in the notebook cannot replace the graded one.
    """
    if isinstance(exercises, str):  # a lone name, not its characters
        exercises = [exercises]
    exercises = list(dict.fromkeys(exercises))
    nb_cells = _cells(nb)
    cells = [_parse_cell(i, source) for i, source in code_cells({"cells": nb_cells}) if source.strip()]
    selection = _select(exercises, cells, nb_cells)
    graded = set(exercises)

    warnings_out: list[str] = []
    for cell in cells:
        if cell.index in selection.reported_cells:
            continue
        if cell.problem:
            warnings_out.append(f"{cell.name} skipped: it does not parse ({cell.problem})")
        elif cell.magic and any(_def_pattern(name).search(cell.original) for name in exercises):
            inside = [name for name in exercises if _def_pattern(name).search(cell.original)]
            warnings_out.append(
                f"{cell.name} skipped: it starts with the cell magic `{cell.magic}`; the "
                + ", ".join(f"`def {n}`" for n in inside)
                + " in it is ignored"
            )
    warnings_out.extend(selection.warnings)

    chunks: list[Chunk] = []
    future: list[str] = []
    imported: set[str] = set()
    skipped = 0
    for cell in cells:
        if cell.tree is None:
            continue
        for node in cell.tree.body:
            if _is_future(node):
                future.extend(a.name for a in node.names if a.name not in future)  # type: ignore[union-attr]
                skipped += 1
                continue
            if _is_grader_import(node):
                skipped += 1
                continue
            classified = _classify(node, imported)
            if classified is None:
                skipped += 1
                continue
            kind, names = classified
            line = _start_line(node)
            if id(node) not in selection.chosen:
                clashes = [n for n in names if n in graded]
                if clashes:
                    skipped += 1
                    # A missing exercise's reason already names what binds it instead.
                    if kind != "def" and clashes[0] in selection.located:
                        source = _segment(cell.text, node).split("\n", 1)[0]
                        warnings_out.append(
                            f"{cell.name} (line {line}): `{_shorten(source, 60)}` is not run because it would "
                            f"replace the graded `{clashes[0]}`"
                        )
                    continue
            if kind == "import":
                imported.update(names)
            label = f"{cell.name} [{names[0]}]" if kind in ("def", "class") else cell.name
            chunks.append(Chunk(_segment(cell.text, node), cell.index, line, kind, label))

    return Program(
        chunks=tuple(chunks),
        located={n: selection.located[n] for n in exercises if n in selection.located},
        missing={n: selection.missing[n] for n in exercises if n in selection.missing},
        warnings=tuple(warnings_out),
        skipped=skipped,
        future=tuple(future),
    )
