"""`grader export student NAME --out DIR`: the kit students receive (see `grader.kit`)."""
from __future__ import annotations

import argparse
import sys

from grader.exit_codes import EXIT_OK, EXIT_UNGRADED, EXIT_USAGE


def register(platforms) -> argparse.ArgumentParser:
    p = platforms.add_parser(
        "student", help="the student kit: template, support files and a self-check without solutions",
        description="Write the template notebook, its support files and a self-check bundle (visible "
                    "tests and the reference's answers they need, recorded now) into DIR. Fails, naming "
                    "the test, when a visible test cannot run without the reference, and refuses to "
                    "write a kit that would hold a reference function's body, a hidden test, the secret, or a "
                    "written question's rubric or model answer (the template's answer cells hold only the "
                    "placeholder).")
    p.add_argument("assignment", metavar="NAME", help="assignment name or folder")
    p.add_argument("--out", "-o", required=True, metavar="DIR", help="an empty or new folder")
    p.add_argument("--sandbox", default="auto", help="isolation for the recording runs (default auto)")
    p.add_argument("--no-samples", action="store_true",
                   help="record and compare on the master only, not on samples/*.ipynb")
    p.set_defaults(handler=run)
    return p


def run(args) -> int:
    """0 written, 1 the assignment is not kit-safe (or would leak), 2 usage."""
    from grader.assignment.spec import AssignmentError, load_assignment
    from grader.kit.export import KitError, build_kit

    try:
        assignment = load_assignment(args.assignment)
    except AssignmentError as exc:
        print(f"grader: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        kit = build_kit(assignment, args.out, isolation=args.sandbox, samples=not args.no_samples,
                        log=lambda m: print(f"grader: {m}", file=sys.stderr))
    except KitError as exc:
        print(f"grader: {assignment.name}: {exc}", file=sys.stderr)
        return EXIT_UNGRADED
    print(f"wrote {kit.root}: {kit.notebook.name}, {len(kit.tests)} visible tests, {kit.calls} recorded "
          f"answers; left out {len(kit.dropped)} hidden tests; kit results equal the full grader's on "
          f"{', '.join(kit.checked)}")
    return EXIT_OK
