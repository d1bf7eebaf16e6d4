"""How much of a notebook the grader reads: caps that keep one submission's cost bounded.

Every cap is far above any real course notebook (the largest course notebooks seen hold
a few hundred cells and a few hundred KB of code) and low enough that one odd upload
cannot hold a grading process for minutes or exhaust its memory. With `--jobs N`, N such
uploads would otherwise stall every slot of a batch.

Python's parser sets the code caps: `ast.parse` of 2 MB of one-line statements took
about 8 s and 1.2 GB here. So code is capped per cell (what one parse may cost) and per
notebook, and parsing stops at the cell where the notebook's top-level statements pass
their cap, which keeps the syntax trees held at once small.
"""
from __future__ import annotations

# The whole file, outputs and embedded images included.
MAX_NOTEBOOK_BYTES = 100 * 1024 * 1024
# Cells of every type: each one costs a schema check and a little memory.
MAX_CELLS = 10_000
# Characters of source in all code cells together.
MAX_CODE_CHARS = 2 * 1024 * 1024
# Characters of source in one code cell: larger cells are not parsed.
MAX_CELL_CODE_CHARS = 256 * 1024
# Top-level statements in all code cells together.
MAX_STATEMENTS = 20_000
# Lists and objects in the whole JSON: nbformat copies and checks each as a Python
# object (a million took 10 s and 1.5 GB here). The course notebooks here hold about
# 120; outputs add a few per output.
MAX_JSON_CONTAINERS = 200_000
# Outputs of all code cells together. Past it the outputs are dropped, not the notebook:
# nothing grades them, and each costs a schema check.
MAX_OUTPUTS = 5_000
# Levels of nested lists and objects in the JSON. Real notebooks stay under about 30 (deep
# ones are JSON outputs such as plot specs); nbformat recurses through all of it.
MAX_JSON_DEPTH = 200
