"""Read a submitted notebook and decide which of its code the sandbox will run.

Nothing here executes student code: the notebook is only parsed (JSON, then `ast`).
Two halves:

* `load_notebook` (`reading`, `schema`) turns a path into a v4 `NotebookNode` or a
  `LoadError` whose one-line message names the file and the problem.
* `extract_program` (`program`, with `cells`, `ipython`, `statements`, `locate`) picks
  the statements worth running. A student's notebook is a record of an interactive
  session: it trains models, plots, prints, installs packages, and often defines the
  same function several times while they iterate. Re-running all of that would be slow,
  fragile and sometimes harmful, and the grader only needs the definitions. So it keeps
  imports, `def`, `class` and constant assignments, in notebook order, and exactly one
  definition of each graded function.

Both are bounded (`limits`): time and memory grow linearly with the notebook's size, and
a notebook beyond the caps gets a clear message instead of a stalled grading process.
"""
from __future__ import annotations

from grader.notebook.cells import code_cells
from grader.notebook.limits import MAX_NOTEBOOK_BYTES
from grader.notebook.model import Chunk, Located, Program, source_of
from grader.notebook.program import extract_program
from grader.notebook.reading import LoadError, load_notebook

__all__ = [
    "MAX_NOTEBOOK_BYTES",
    "Chunk",
    "LoadError",
    "Located",
    "Program",
    "code_cells",
    "extract_program",
    "load_notebook",
    "source_of",
]
