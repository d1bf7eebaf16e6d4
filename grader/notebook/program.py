"""Select, in notebook order, the statements the sandbox runs (`extract_program`)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from grader.notebook.cellnames import cell_names
from grader.notebook.cells import _Cell, _cells, _def_pattern, _parse_cell, _shorten, _size, _start_line, code_cells
from grader.notebook.limits import MAX_CELL_CODE_CHARS, MAX_CELLS, MAX_CODE_CHARS, MAX_STATEMENTS
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

    Time grows linearly with the notebook's size, and the caps in `limits` bound it: a
    cell over the per-cell cap is not parsed, and reading stops at the cell that passes
    the notebook's cap on cells, code or statements. Each is named in `warnings`, and in
    the reason of any exercise then missing.
    """
    if isinstance(exercises, str):  # a lone name, not its characters
        exercises = [exercises]
    exercises = list(dict.fromkeys(exercises))
    nb_cells = _cells(nb)
    shown_as = cell_names(nb_cells)
    cells, cut = _parse_cells(nb_cells, shown_as)
    selection = _select(exercises, cells, nb_cells, shown_as)
    if cut:
        for name in selection.missing:
            selection.missing[name] += f"; {cut}"
    graded = set(exercises)

    warnings_out: list[str] = []
    for cell in cells:
        if cell.index in selection.reported_cells:
            continue
        if cell.unread:
            warnings_out.append(f"{cell.name} skipped: {cell.unread}")
        elif cell.problem:
            warnings_out.append(f"{cell.name} skipped: it does not parse ({cell.problem})")
        elif cell.magic and any(_def_pattern(name).search(cell.original) for name in exercises):
            inside = [name for name in exercises if _def_pattern(name).search(cell.original)]
            warnings_out.append(
                f"{cell.name} skipped: it starts with the cell magic `{cell.magic}`; the "
                + ", ".join(f"`def {n}`" for n in inside)
                + " in it is ignored"
            )
    warnings_out.extend(selection.warnings)
    if cut:
        warnings_out.append(cut)

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
                        source = cell.segment(node).split("\n", 1)[0]
                        warnings_out.append(
                            f"{cell.name} (line {line}): `{_shorten(source, 60)}` is not run because it would "
                            f"replace the graded `{clashes[0]}`"
                        )
                    continue
            if kind == "import":
                imported.update(names)
            label = f"{cell.name} [{names[0]}]" if kind in ("def", "class") else cell.name
            chunks.append(Chunk(cell.segment(node), cell.index, line, kind, label))

    return Program(
        chunks=tuple(chunks),
        located={n: selection.located[n] for n in exercises if n in selection.located},
        missing={n: selection.missing[n] for n in exercises if n in selection.missing},
        warnings=tuple(warnings_out),
        skipped=skipped,
        future=tuple(future),
    )


def _parse_cells(nb_cells: list[Any], names: list[str] | None = None) -> tuple[list[_Cell], str]:
    """The non-empty code cells, parsed in order until a cap in `limits` is reached, and
    a one-line note naming the cells left unread and why ("" when all were read). Each
    cell carries its name (`names`, from `cellnames.cell_names`, computed when not given).

    Stopping at a cap (rather than rejecting the notebook) still grades what comes
    before it: the definitions an assignment needs are usually near the top."""
    code = code_cells({"cells": nb_cells})
    if names is None:
        names = cell_names(nb_cells)
    cells: list[_Cell] = []
    chars = statements = 0
    for index, source in code:
        if not source.strip():
            continue
        if index >= MAX_CELLS:
            reason = f"the notebook has {len(nb_cells):,} cells, more than the {MAX_CELLS:,} the grader reads"
        elif chars + len(source) > MAX_CODE_CHARS:
            reason = f"its code cells hold more than the {_size(MAX_CODE_CHARS)} of code the grader reads"
        else:
            cell = _parse_cell(index, source, max_chars=MAX_CELL_CODE_CHARS, name=names[index])
            count = len(cell.tree.body) if cell.tree is not None else 0
            if statements + count <= MAX_STATEMENTS:
                chars += len(source)
                statements += count
                cells.append(cell)
                continue
            reason = f"the notebook has more than the {MAX_STATEMENTS:,} top-level statements the grader reads"
        last = code[-1][0]
        where = f"{names[index]} was" if last == index else f"{names[index]} and the cells below it were"
        return cells, f"{where} not read: {reason}; nothing defined there is graded"
    return cells, ""
