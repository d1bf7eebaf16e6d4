"""How feedback names a cell: as a person finds it in the notebook they have open.

Counting cells from 1 ("cell 7") counts markdown cells too, and Jupyter shows that number
nowhere, so a student scrolls and counts. Two things are on screen instead: the execution
count beside a cell that ran ("In [12]", from the saved file or, in a self-check, from the
kernel), and the cell's own first line. A count names a cell only when no other cell of the
file shows the same one (cells run in an earlier session keep their old counts, and a
restarted kernel counts from 1 again); any other cell is named by its first line, with an
ordinal when several cells start alike ("the 2nd cell starting `import numpy as np`").

The name is made once, where cells are read, and every message, layer location and
traceback takes it from there (a cell's name is also the filename its code is compiled
under in the sandbox, so it must be one per cell, short, on one line and free of the
double quote a traceback's `File "..."` is parsed by).
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

FIRST_LINE_CHARS = 40  # a name stays under the 100 characters a location's label may carry
_FUNCTION = re.compile(r"(.*) \[([A-Za-z_][A-Za-z0-9_]*)\]", re.DOTALL)


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def first_line(source: Any) -> str:
    """The cell's first non-blank line as it reads on screen, cut before anything a name cannot
    hold (a double quote, a backtick, a control character) or at FIRST_LINE_CHARS, with an
    ellipsis: what is left is still a prefix the student can search for."""
    if isinstance(source, list):  # lines, as a damaged or hand-built notebook may hold them
        text = "".join(s if isinstance(s, str) else str(s) for s in source)
    else:
        text = source if isinstance(source, str) else str(source or "")
    line, at = "", 0
    while not line and at < len(text):  # line by line: a cell of pasted data is never split whole
        end = text.find("\n", at)
        end = len(text) if end < 0 else end
        line, at = text[at:end].strip(), end + 1
    if line[:1] in ('"', "`"):  # a docstring opens the cell: quoted the other way, not dropped
        line = line.replace('"', "'").replace("`", "'")
    head = line[: FIRST_LINE_CHARS + 1]
    cut = next((i for i, c in enumerate(head) if c in '"`' or not c.isprintable()), len(head))
    if cut < len(line) or len(line) > FIRST_LINE_CHARS:
        line = line[: min(cut, FIRST_LINE_CHARS - 3)].rstrip() + "..."
    return line if line.strip(".") else ""


def saved_count(cell: Any) -> int | None:
    """The execution count saved with a code cell, when it has a real one."""
    count = cell.get("execution_count") if isinstance(cell, Mapping) else None
    return count if type(count) is int and count > 0 else None


def cell_names(cells: Sequence[Any]) -> list[str]:
    """One name per cell of the notebook (see the module's doc), in order. A self-check
    writes the counts its kernel gave into the copy it grades, so they arrive here as saved."""
    counts: dict[int, int] = {}
    for index, cell in enumerate(cells):
        if isinstance(cell, Mapping) and cell.get("cell_type") == "code":
            count = saved_count(cell)
            if count is not None:
                counts[index] = count
    shown: dict[int, int] = {}
    for count in counts.values():
        shown[count] = shown.get(count, 0) + 1
    lines = [first_line(cell.get("source", "")) if isinstance(cell, Mapping) else "" for cell in cells]
    alike: dict[str, int] = {}  # cells on screen starting with each line, named by it or not
    for line in lines:
        alike[line] = alike.get(line, 0) + 1
    names: list[str] = []
    seen: dict[str, int] = {}
    for index, line in enumerate(lines):
        seen[line] = seen.get(line, 0) + 1
        count = counts.get(index)
        if count is not None and shown[count] == 1:
            names.append(f"cell In [{count}]")
        elif not line:
            names.append(f"the {ordinal(index + 1)} cell")  # empty: nothing else tells it apart
        elif alike[line] > 1:
            names.append(f"the {ordinal(seen[line])} cell starting `{line}`")
        else:
            names.append(f"the cell starting `{line}`")
    return names


def split_label(label: str) -> tuple[str, str]:
    """(cell name, function) from the label a chunk is compiled under: "cell In [12]
    [happyModel]" -> ("cell In [12]", "happyModel"); a chunk that is not a definition has
    no function: "cell In [3]" -> ("cell In [3]", "")."""
    match = _FUNCTION.fullmatch(label)
    return (match.group(1), match.group(2)) if match else (label, "")
