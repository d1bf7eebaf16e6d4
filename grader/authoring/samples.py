"""Sample notebooks made from a master by small textual edits, for an assignment's build.py.

A sample is the solved notebook with one mistake students make (or one written answer)
edited in. An edit that no longer matches the master must fail the build: otherwise the
"mistaken" sample is silently the correct notebook, and the tests that grade it prove
nothing. Every assignment's build script needs these same few operations, so they live
here once.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat

from grader.authoring.assign import answer_question


def graded_cell(nb: Any, exercise: str) -> Any:
    """The master's cell graded as `exercise` (its grader metadata, set by `annotate`)."""
    for cell in nb.cells:
        if cell.metadata.get("grader", {}).get("exercise") == exercise:
            return cell
    raise LookupError(f"no graded cell for {exercise!r}")


def edit_cell(nb: Any, exercise: str, old: str, new: str, count: int = 1) -> Any:
    """Replace `old` by `new` in the exercise's cell, refusing unless `old` occurs exactly
    `count` times (the master changed: the sample must be rewritten, not left correct)."""
    cell = graded_cell(nb, exercise)
    found = cell.source.count(old)
    if found != count:
        raise RuntimeError(f"sample edit for {exercise!r} expected {count} match(es) of {old!r}, "
                           f"found {found}: update build.py to the new master")
    cell.source = cell.source.replace(old, new)
    return nb


def answer_cell(nb: Any, question: str, text: str) -> Any:
    """Write `text` as the answer to the written question `question` (one tagged cell)."""
    cells = [c for c in nb.cells if answer_question(c) == question]
    if len(cells) != 1:
        raise RuntimeError(f"sample answer for {question!r}: expected one cell tagged written:{question}, "
                           f"found {len(cells)}: update build.py to the new master")
    cells[0].source = text
    return nb


def write_notebook(nb: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path
