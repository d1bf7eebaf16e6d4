"""How much of a notebook the grader reads: caps that keep one submission's cost bounded.

Every cap is far above any real course notebook (the largest course notebooks seen hold
a few hundred cells and a few hundred KB of code) and low enough that one odd upload
cannot hold a grading process for minutes or exhaust its memory. Python's parser is the
binding constraint: `ast.parse` of 2 MB of one-line statements takes about 8 s and 1.2 GB
here, so code is capped per cell and per notebook, and parsing stops once the notebook's
top-level statements exceed their cap.
"""
from __future__ import annotations

# The whole file, outputs and embedded images included.
MAX_NOTEBOOK_BYTES = 256 * 1024 * 1024
