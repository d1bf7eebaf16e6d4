"""The assignment-authoring commands: `new` (`scaffold`), `assign`, `validate-assignment`
(`validate`) and `export` (platform bundles and the student kit, `grader.export`). Each
lives beside what it does and registers its own sub-parser and handler; this module is
the one place that lists them, in the order `grader --help` shows them.

The modules are imported when the full parser is built, never by `grader check` (a
student's check builds a parser with its own command alone: `grader.cli`).
"""
from __future__ import annotations


def register(sub) -> None:
    """Add `new`, `assign`, `validate-assignment` and `export` to the sub-parsers `sub`."""
    from grader import export
    from grader.authoring import assign, scaffold, validate
    for module in (scaffold, assign, validate, export):
        module.register(sub)


__all__ = ["register"]
