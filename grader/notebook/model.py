"""What extraction hands the sandbox: the statements to run and where each exercise is."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Chunk:
    """One top-level statement for the sandbox to compile and run on its own.

    One statement per chunk, so that one failing import or helper does not take the
    statements after it down. `line` is where the statement (decorators included)
    starts in its cell; compile the chunk with its line numbers shifted by `line - 1`
    and tracebacks point into the cell as the student sees it.
    """

    source: str
    cell: int  # index in nb.cells (markdown cells count); students read the cell's name, never this
    line: int
    kind: str  # "import" | "def" | "class" | "assign"
    label: str  # compile() filename: the cell's name (cellnames) and its definition, "cell In [7] [happyModel]"


@dataclass(frozen=True)
class Located:
    exercise: str
    cell: int
    how: str  # "tag" (in a cell tagged for the exercise) or "def" (found by name)
    line: int


@dataclass(frozen=True)
class Program:
    chunks: tuple[Chunk, ...]
    located: dict[str, Located]
    missing: dict[str, str]  # exercise -> why it is missing, worded for the student
    warnings: tuple[str, ...]
    skipped: int  # top-level statements not run (training, plots, prints, magics, stale defs)
    # `from __future__` features the notebook imports. IPython applies them to every
    # later cell, but a future import only affects its own compile() call, so the
    # sandbox must pass them as compile flags to every chunk instead.
    future: tuple[str, ...] = field(default=())


def source_of(program: Program, exercise: str) -> str:
    """The graded definition's source, or "" when the exercise is missing, so that a
    plagiarism pass over a whole class can treat absent code as empty."""
    where = program.located.get(exercise)
    if where is None:
        return ""
    for chunk in program.chunks:
        if chunk.kind == "def" and chunk.cell == where.cell and chunk.line == where.line:
            return chunk.source
    return ""
