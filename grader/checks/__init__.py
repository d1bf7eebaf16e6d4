"""What is compared: pure functions that look at a student's answer next to the reference
and raise `CheckFailed` carrying feedback a student can act on.

Checks run only in the grading process, on data that came back from the sandbox (arrays,
or Keras models rebuilt from allow-listed layers). They never call student code.
"""
from __future__ import annotations

from grader.results import Table


class CheckFailed(AssertionError):
    """A check's verdict with the feedback to show.

    message: what was expected and what was found, and why it matters.
    hint: what to change, as an instruction ("compute mean and std from X_train only").
    table: an expected/found side-by-side table for structural differences.
    diagnosis: a short stable label of the mistake ("test_stats_leak"), used by class
        reports to count how many students made it.
    fraction: share of the test's points still earned (partial credit), 0 by default.
    """

    def __init__(self, message: str, *, hint: str = "", table: Table | None = None,
                 diagnosis: str = "", fraction: float = 0.0):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.table = table
        self.diagnosis = diagnosis
        if not 0.0 <= fraction < 1.0:
            raise ValueError("fraction of points kept must be in [0, 1)")
        self.fraction = fraction


def partial(fraction: float, message: str, **kw) -> CheckFailed:
    """Raise this to award part of a test's points: `raise partial(0.5, "...")`."""
    return CheckFailed(message, fraction=fraction, **kw)


__all__ = ["CheckFailed", "partial", "Table"]
