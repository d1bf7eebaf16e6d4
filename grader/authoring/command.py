"""The assignment-authoring commands: `new` (`scaffold`), `assign` and `validate-assignment`
(`validate`). Each lives beside what it does and registers its own sub-parser and handler;
this module is the one place that lists them, in the order `grader --help` shows them.
(`export`, which builds on all of them, registers itself from `grader.cli`.)

The modules are imported when the full parser is built, never by `grader check` (a
student's check builds a parser with its own command alone: `grader.cli`).
"""
from __future__ import annotations


def register(sub) -> None:
    """Add `new`, `assign` and `validate-assignment` to the sub-parsers `sub`."""
    from grader.authoring import assign, scaffold, validate
    for module in (scaffold, assign, validate):
        module.register(sub)


__all__ = ["register"]
