"""Teaching notes: what a check accepts but wants said, attached to the test being graded.

A context variable rather than an argument, so a check deep in a call chain needs no handle
on the test it runs under; the plugin opens a collector per test and takes what was left.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

# The notes of the test being graded: a list while a collector is open (the plugin opens one
# per test), None otherwise. A context variable, so a check needs no handle on the test.
_NOTES: ContextVar[list[str] | None] = ContextVar("grader_test_notes", default=None)


def note(text: str) -> None:
    """Leave a teaching note on the test being graded: a check that accepts something a
    student should still hear about (an equivalent but wasteful spelling) says it here
    instead of failing. Outside a collector (a check called on its own) it is dropped; the
    same note twice is kept once."""
    sink = _NOTES.get()
    text = str(text).strip()
    if sink is not None and text and text not in sink:
        sink.append(text)


def open_notes() -> None:
    """Start collecting the notes of one test (`grader.run.plugin`, before its setup)."""
    _NOTES.set([])


def take_notes() -> tuple[str, ...]:
    """The notes collected since `open_notes`, and stop collecting."""
    sink = _NOTES.get()
    _NOTES.set(None)
    return tuple(sink or ())


@contextmanager
def collecting_notes() -> Iterator[list[str]]:
    """The notes left by the checks run inside the block, for code that calls checks
    directly (tests of the checks themselves)."""
    token = _NOTES.set([])
    try:
        yield _NOTES.get()
    finally:
        _NOTES.reset(token)
