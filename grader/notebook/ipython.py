"""IPython-only syntax (`%magic`, `!shell`, `x = !cmd`, `obj?`) turned into plain Python."""
from __future__ import annotations

import re

_HELP_LINE = re.compile(r"(\?{1,2}\s*[\w.]+(\(\))?|[\w.]+(\(\))?\s*\?{1,2})\s*")
_MAGIC_ASSIGNMENT = re.compile(r"[\w.]+(\s*,\s*[\w.]+)*\s*=\s*[%!]")


def _is_ipython_line(stripped: str) -> bool:
    return (
        stripped.startswith(("%", "!"))
        or bool(_HELP_LINE.fullmatch(stripped))
        or bool(_MAGIC_ASSIGNMENT.match(stripped))
    )


def _neutralize_ipython(text: str) -> str:
    """Replace IPython-only lines (`%magic`, `!shell`, `x = !cmd`, `obj?`) by `pass`.

    Keeps indentation and line count, so the result parses wherever the original ran
    under IPython and line numbers stay those the student sees. Only lines that start
    a logical line are touched: a `%` that continues an expression inside brackets
    (`("%d"\\n % n)`) or a `!` inside a docstring is Python, not a magic; a small
    scanner follows brackets, strings and backslash continuations to tell them apart.
    """
    out: list[str] = []
    depth = 0
    in_triple: str | None = None
    continued = False
    for line in text.split("\n"):
        stripped = line.strip()
        if in_triple is None and depth == 0 and not continued and stripped and _is_ipython_line(stripped):
            out.append(line[: len(line) - len(line.lstrip())] + "pass")
            continue
        depth, in_triple, continued = _scan_line(line, depth, in_triple)
        out.append(line)
    return "\n".join(out)


def _scan_line(line: str, depth: int, in_triple: str | None) -> tuple[int, str | None, bool]:
    i, n = 0, len(line)
    last = len(line.rstrip()) - 1  # a backslash here continues the line
    while i < n:
        if in_triple is not None:
            if line[i] == "\\":
                i += 2
            elif line.startswith(in_triple, i):
                i += 3
                in_triple = None
            else:
                i += 1
            continue
        ch = line[i]
        if ch == "#":
            break
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        elif ch in "'\"":
            if line.startswith(ch * 3, i):
                in_triple = ch * 3
                i += 3
                continue
            i += 1
            while i < n and line[i] != ch:
                i += 2 if line[i] == "\\" else 1
        elif ch == "\\" and i >= last:
            return depth, in_triple, True
        i += 1
    return depth, in_triple, False
