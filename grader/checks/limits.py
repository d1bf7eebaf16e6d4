"""How much of a model the checks read, for any framework.

A model tiny as data can unroll to millions of layer calls (nested models each calling
the one inside several times). Every adapter that turns a model into a `LayerGraph`
stops at the same cap and raises the same student-facing `GraphTooLarge`, so one
notebook cannot stall the grading process whichever framework it uses.
"""
from __future__ import annotations

from grader.checks import CheckFailed

# Distinct layer calls a graph may unroll. A real ResNet50 has about 175; the course's
# largest model is far below this, and a walk this size takes well under a second.
MAX_CALLS = 5000


class GraphTooLarge(CheckFailed):
    """The model unrolls to more layer calls than the grader compares."""


__all__ = ["GraphTooLarge", "MAX_CALLS"]
