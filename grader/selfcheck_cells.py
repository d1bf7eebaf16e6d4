"""Cells named as the student sees them in Jupyter, in a self-check's feedback.

The grader names a place as "cell 7, line 14", counting every cell of the notebook from 1,
markdown included: a number Jupyter shows nowhere. In a self-check the grading process
knows more: a cell the kernel ran is "cell In [12]" (its execution count, the number beside
it on screen), and any other code cell is "the cell starting `def happyModel():`" (its first
line, which the student can find). The numbers are rewritten in the check's own words
(messages, hints, tables, warnings), never in what the student's code printed.
"""
from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

from grader.results import SubmissionResult, Table

_CELL = re.compile(r"\bcell (\d+)\b")
_FIRST_LINE_CHARS = 48
_MAX_NOTEBOOK_BYTES = 64 * 2**20


def first_line(source: str) -> str:
    line = next((l.strip() for l in str(source).splitlines() if l.strip()), "")
    return line if len(line) <= _FIRST_LINE_CHARS else line[: _FIRST_LINE_CHARS - 3].rstrip() + "..."


def saved_cells(path: Path | None) -> list:
    """The cells of the notebook file as saved (what Jupyter shows when it opens it)."""
    if path is None:
        return []
    try:
        # Never through a link, and never a file too big to be a notebook (both refused by grading).
        if Path(path).is_symlink() or Path(path).stat().st_size > _MAX_NOTEBOOK_BYTES:
            return []
        cells = json.loads(Path(path).read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [c for c in cells if isinstance(c, dict)] if isinstance(cells, list) else []


def cell_labels(cells, counts: dict[int, int]) -> dict[int, str]:
    """1-based cell number -> how the student finds it: `counts` maps a cell's 0-based index
    to the execution count the kernel gave it (cells taken from the kernel's history)."""
    labels = {}
    for index, cell in enumerate(cells):
        if index in counts:
            labels[index + 1] = f"cell In [{counts[index]}]"
        elif cell.get("cell_type") == "code" and first_line(cell.get("source", "")):
            labels[index + 1] = f"the cell starting `{first_line(cell.get('source', ''))}`"
    return labels


def _rename(text: str, labels: dict[int, str]) -> str:
    if not text or "cell " not in text:
        return text
    return _CELL.sub(lambda m: labels.get(int(m.group(1)), m.group(0)), text)


def name_cells_as_jupyter(result: SubmissionResult, cells, counts: dict[int, int]) -> None:
    """Rewrite "cell N" in the result's own words to what Jupyter shows (see module doc)."""
    labels = cell_labels(cells, counts)
    if not labels:
        return
    for i, test in enumerate(result.tests):
        table = test.table
        if table is not None:
            table = Table(table.headers, tuple(tuple(_rename(c, labels) for c in row) for row in table.rows),
                          table.marked)
        result.tests[i] = replace(test, message=_rename(test.message, labels), hint=_rename(test.hint, labels),
                                  table=table)
    result.warnings = [_rename(w, labels) for w in result.warnings]
    result.errors = [_rename(e, labels) for e in result.errors]
