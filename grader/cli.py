"""The command line. Its `grade` contract is relied on by other tools; keep it stable:

    grader grade PATH [PATH ...] --assignment NAME_OR_DIR [--format text|json|junit] [--jobs N]

exit status 0 when every submission was graded (whatever the scores), 1 when any could not
be read or graded, 2 for usage errors. With --format json, stdout holds exactly one JSON
object per submission per line and nothing else.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

EXIT_OK, EXIT_UNGRADED, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # usage errors exit 2, as argparse does, with a hint
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="grader", description="Grade deep-learning notebook assignments, safely and with "
                                                "feedback that teaches.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    g = sub.add_parser("grade", help="grade submissions (notebooks or folders of notebooks)",
                       description="Grade every notebook given or found below the given folders. "
                                   "Exit 0 if all were graded, 1 if any could not be, 2 on usage errors.")
    g.add_argument("paths", nargs="+", metavar="PATH")
    g.add_argument("--assignment", "-a", required=True, help="assignment name (assignments/NAME) or folder")
    g.add_argument("--format", choices=("text", "json", "junit"), default="text",
                   help="text for people, json for tools (one object per line), junit for CI")
    g.add_argument("--jobs", "-j", type=int, default=None, help="parallel grading processes (default: cores)")
    g.add_argument("--sandbox", default="auto", choices=("auto", "strict", "namespace", "process"),
                   help="isolation: auto picks the strongest available; strict refuses anything weaker "
                        "than bubblewrap")
    g.add_argument("--visible-only", action="store_true", help="skip hidden tests (as a self-check does)")
    g.add_argument("--audience", choices=("student", "instructor"), default="instructor",
                   help="text format: what to show (students never see hidden test details)")

    c = sub.add_parser("check", help="grade one notebook and show a student's feedback",
                       description="A student's self-check: runs the visible tests and shows feedback.")
    c.add_argument("notebook")
    c.add_argument("--assignment", "-a", required=True)
    c.add_argument("--format", choices=("text", "json", "md", "html"), default="text")
    c.add_argument("--min-score", type=float, default=None, help="exit 1 when the score is below this")
    c.add_argument("--sandbox", default="auto", choices=("auto", "strict", "namespace", "process"))
    c.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    from grader.assignment import AssignmentError, load_assignment
    from grader.sandbox.client import IsolationUnavailable
    try:
        assignment = load_assignment(args.assignment)
    except AssignmentError as exc:
        print(f"grader: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.command == "grade":
            return _grade(args, assignment)
        if args.command == "check":
            return _check(args, assignment)
    except IsolationUnavailable as exc:
        print(f"grader: {exc}", file=sys.stderr)
        return EXIT_UNGRADED
    except KeyboardInterrupt:
        print("grader: interrupted", file=sys.stderr)
        return 130
    parser.error(f"unknown command {args.command}")
    return EXIT_USAGE


def _grade(args, assignment) -> int:
    from grader.batch import Options, Progress, default_jobs, find_notebooks, grade_many
    from grader.render import render_text, to_json_line, to_junit
    from grader.sandbox.client import choose_isolation

    choose_isolation(args.sandbox)  # fail fast under --sandbox strict
    paths = find_notebooks(args.paths)
    if not paths:
        print("grader: no notebooks found in " + ", ".join(args.paths), file=sys.stderr)
        return EXIT_UNGRADED
    jobs = args.jobs or min(default_jobs(), len(paths))
    options = Options(assignment=str(assignment.root), isolation=args.sandbox,
                      include_hidden=not args.visible_only)
    progress = Progress(len(paths), sys.stderr, tty=sys.stderr.isatty()) if args.format != "text" or len(paths) > 1 else None
    results = []
    for result in grade_many(paths, options, jobs=jobs):
        results.append(result)
        if args.format == "json":
            print(to_json_line(result), flush=True)
        elif args.format == "text":
            print(render_text(result, color=sys.stdout.isatty(), audience=args.audience), flush=True)
            print(flush=True)
        if progress and args.format != "text":
            progress.update(result)
    if args.format == "junit":
        print(to_junit(results))
    return EXIT_UNGRADED if any(r.errors for r in results) else EXIT_OK


def _check(args, assignment) -> int:
    from grader.batch import Options, grade_many
    from grader.render import render_html, render_markdown, render_text, to_json_line

    options = Options(assignment=str(assignment.root), isolation=args.sandbox, include_hidden=False)
    result = next(grade_many([Path(args.notebook)], options, jobs=1))
    color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
    if args.format == "json":
        print(to_json_line(result))
    elif args.format == "md":
        print(render_markdown(result, audience="student"))
    elif args.format == "html":
        print(render_html(result, audience="student"))
    else:
        print(render_text(result, color=color, audience="student"))
    if result.errors:
        return EXIT_UNGRADED
    if args.min_score is not None and result.score < args.min_score:
        return EXIT_UNGRADED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
