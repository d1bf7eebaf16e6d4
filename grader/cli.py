"""The command line. Its `grade` contract is relied on by other tools; keep it stable:

    grader grade PATH [PATH ...] --assignment NAME_OR_DIR [--format text|json|junit] [--jobs N]

exit status 0 when every submission was graded (whatever the scores), 1 when any could not
be read or graded, 2 for usage errors. With --format json, stdout holds exactly one JSON
object per submission per line and nothing else.

With --out DIR, grades also go into DIR's gradebook as each submission finishes (a rerun
grades only what is new or changed), with per-student feedback and the class's grades.csv;
`grader report DIR` then writes DIR/report.html. See grader.classroom.gradebook and grader.classroom.report.

This module is the top-level parser, the dispatch and the answers to a missing optional
package; each command lives with what it does and registers its own sub-parser and
handler: the classroom's (`grade`, `report`, `review`, `override`) in
`grader.classroom.command`, the student's `check` in `grader.kit.command`, the
instructor's authoring commands in `grader.authoring.command` and `export` in `grader.export`. The exit
statuses have their home in `grader.exit_codes`.
"""
from __future__ import annotations

import argparse
import os
import sys

from grader.exit_codes import EXIT_OK, EXIT_UNGRADED, EXIT_USAGE
from grader.kit import command as kit_command
from grader.kit.command import written_answer_lines  # noqa: F401 - importable from here, as before


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # usage errors exit 2, as argparse does, with a hint
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """Every command, in the order `grader --help` lists them."""
    from grader import export
    from grader.authoring import command as authoring_command
    from grader.classroom import command as classroom_command

    parser = _Parser(prog="grader", description="Grade deep-learning notebook assignments, safely and with "
                                                "feedback that teaches.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    classroom_command.register_grading(sub)  # grade, report
    kit_command.register(sub)  # check
    classroom_command.register_review(sub)  # review
    authoring_command.register(sub)  # new, assign, validate-assignment
    export.register(sub)  # export: platform bundles and the student kit
    classroom_command.register_override(sub)  # override
    return parser


def _parser_for(argv: list[str] | None) -> argparse.ArgumentParser:
    """`grader check` gets a parser with that command alone: the full one imports every
    command's module to register it (~0.2 s), and a student's check waits for that before
    its sandbox worker can start."""
    first = (sys.argv[1:] if argv is None else argv)[:1]
    if first != ["check"]:
        return build_parser()
    parser = _Parser(prog="grader")
    kit_command.register(parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser))
    return parser


# Instructor-only dependencies live in extras (a student's kit installs none of them):
# the top-level module a command needs -> the extra that brings it.
_EXTRAS = {"distributed": "cluster", "dask": "cluster", "matplotlib": "report", "jupytext": "authoring"}


def main(argv: list[str] | None = None) -> int:
    from grader.frameworks.installed import FrameworkMissing
    try:
        return _main(argv)
    except FrameworkMissing as exc:  # the assignment's TensorFlow or torch: which extra brings it
        print(f"grader: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ModuleNotFoundError as exc:
        extra = _EXTRAS.get((exc.name or "").split(".")[0])
        if extra is None:
            raise
        print(f"grader: this command needs the optional package {exc.name.split('.')[0]!r}, which is not "
              f"installed: pip install 'grader[{extra}]' (or 'grader[instructor]' for every "
              f"instructor feature)", file=sys.stderr)
        return EXIT_USAGE


def _main(argv: list[str] | None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    parser = _parser_for(argv)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.error(f"unknown command {args.command}")
    return handler(args)


__all__ = ["EXIT_OK", "EXIT_UNGRADED", "EXIT_USAGE", "build_parser", "main", "written_answer_lines"]


if __name__ == "__main__":
    sys.exit(main())
