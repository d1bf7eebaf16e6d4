"""`grader check`: a student's self-check of one notebook from the command line (the
kit's other front end is `check()` inside the notebook, `grader.kit.selfcheck`). Only the
visible tests run, in a forked grading process held to the assignment's budget, and the
student's feedback is shown.

Its module imports nothing slow: `grader check` builds a parser with this command alone
(`grader.cli`), so the student's sandbox worker starts without waiting for every other
command's imports.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from grader.exit_codes import EXIT_OK, EXIT_UNGRADED, EXIT_USAGE, reported
from grader.sandbox.client import ISOLATION_CHOICES


def register(sub) -> None:
    """Add `check` to the sub-parsers `sub`."""
    c = sub.add_parser("check", help="grade one notebook and show a student's feedback",
                       description="A student's self-check: runs the visible tests and shows feedback.")
    c.add_argument("notebook")
    c.add_argument("--assignment", "-a", default=None,
                   help="assignment name or folder (default: the student kit next to the notebook)")
    c.add_argument("--format", choices=("text", "json", "md", "html"), default="text")
    c.add_argument("--min-score", type=float, default=None, help="exit 1 when the score is below this")
    c.add_argument("--sandbox", default="auto", choices=ISOLATION_CHOICES)
    c.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    c.set_defaults(handler=run)


def run(args) -> int:
    """`grader check`: every mistake in calling it is refused in a line or two saying what
    to do, before anything slow starts (a missing path used to take 12 s to be refused)."""
    import time

    from grader.assignment.spec import KIT_FOLDER, AssignmentError, assignment_for_notebook, load_assignment
    from grader.sandbox.client import IsolationUnavailable
    from grader.kit.find import notebook_assignment

    started = time.perf_counter()
    path = Path(args.notebook)
    if not path.is_file():
        near = sorted(p.name for p in (path.parent if path.parent.is_dir() else Path.cwd()).glob("*.ipynb"))
        print(f"grader: {args.notebook}: no such notebook" + (f" (here: {', '.join(near[:5])})" if near else ""),
              file=sys.stderr)
        return EXIT_USAGE
    named = args.assignment or notebook_assignment(path)
    try:
        assignment = load_assignment(named or assignment_for_notebook(path), near=path.resolve().parent)
    except AssignmentError as exc:
        if named and not args.assignment:  # the notebook names its assignment; no kit next to it has it
            print(f"grader: {path.name} is not next to its kit's {KIT_FOLDER}/ folder: move it back into the "
                  f"kit folder, or give --assignment path/to/{KIT_FOLDER}/{named}", file=sys.stderr)
        else:
            print(f"grader: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from grader.frameworks.installed import require_framework
    require_framework(assignment, then="run the command again")  # said before anything starts, as above
    print(f"grader: checking {path.name} against {assignment.name} (about 5 s)...", file=sys.stderr, flush=True)
    # AssignmentError here: the spec's budget or questions, read while grading
    return reported(lambda: _check(args, assignment, started), usage=(AssignmentError,),
                    ungraded=(IsolationUnavailable,))


def _check(args, assignment, started: float | None = None) -> int:
    """One notebook, graded in a forked grading process held to the assignment's budget
    (see grader.classroom.supervisor.graded_in_fork), which is stopped once the result is
    shown. pytest's plugin auto-loading is off there: the grader's own plugin is all a
    check uses, and importing whatever else is installed (Hypothesis: ~1.5 s) would come
    before the student's result."""
    from grader.classroom.process import Options
    from grader.classroom.supervisor import budget_for, graded_in_fork

    options = Options(assignment=str(assignment.root), isolation=args.sandbox, include_hidden=False)
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    import threading
    import time
    library = "torch" if getattr(assignment, "framework", "keras") == "torch" else "TensorFlow"
    notice = threading.Timer(10.0, lambda: print(f"grader: still checking after 10 s (the first check imports "
                                                  f"{library}, slow on a busy machine)...", file=sys.stderr,
                                                  flush=True))
    notice.daemon = True
    notice.start()
    try:
        with graded_in_fork(Path(args.notebook), options, budget=budget_for(assignment, options), env=env) as graded:
            notice.cancel()
            if started is not None:  # the header's time is what the student waited
                graded.result.execution_time = time.perf_counter() - started
            code = _show_check(args, graded.result)
            if args.format == "text" and not graded.result.errors:
                for line in written_answer_lines(assignment.questions, graded.answers):
                    print(line)
            return code
    finally:
        notice.cancel()


def written_answer_lines(questions, answers: dict) -> list[str]:
    """What a self-check can say of written answers: whether each was found (and where),
    since a person scores them later; never their score or the rubric."""
    from grader.render._common import safe_text
    if not questions:
        return []
    lines = ["Written answers (scored by your instructor after grading):"]
    for q in questions:
        found = answers.get(q.id) or {}
        title = f"{safe_text(q.title)} ({q.points:g} points)"
        if str(found.get("text", "")).strip():
            lines.append(f"  found: {title}")
        elif isinstance(found.get("cell"), int):  # the answer cell is there, with nothing written in it
            lines.append(f"  EMPTY: {title}: write your answer in the cell below the question")
        else:
            lines.append(f"  NOT FOUND: {title}: write your answer in the cell tagged {q.tag} below the question")
    return lines


def _show_check(args, result) -> int:
    from grader.classroom.command import for_terminal
    from grader.render import render_html, render_markdown, render_text, to_json_line
    color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
    if args.format == "json":
        print(to_json_line(result))
    elif args.format == "md":
        print(render_markdown(result, audience="student"))
    elif args.format == "html":
        print(render_html(result, audience="student"))
    else:
        print(render_text(for_terminal(result), color=color, audience="student"))
    sys.stdout.flush()  # seen now, while the grading process is being stopped
    if result.errors:
        return EXIT_UNGRADED
    if args.min_score is not None and result.score < args.min_score:
        from grader.render._common import fmt_score
        print(f"grader: {fmt_score(result.score)} points is below --min-score {fmt_score(args.min_score)}: "
              f"exit 1", file=sys.stderr)
        return EXIT_UNGRADED
    return EXIT_OK


__all__ = ["register", "run", "written_answer_lines"]
