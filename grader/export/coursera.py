"""A Coursera custom grader (Docker build context), and the entry point that runs inside it.

Coursera runs the image once per submitted part: the learner's file sits in
`/shared/submission/`, the part's id is in the `partId` environment variable, and the
grader must leave `/shared/feedback.json` holding `{"fractionalScore": 0..1, "feedback":
"..."}`. One notebook usually covers several parts; the spec maps each part to the
exercises it grades:

    [coursera.parts]
    Zb6wb = ["standardize", "batchnorm_forward"]
    rLa7F = ["happyModel", "convolutional_model"]

Only a part's own exercises are graded for it, so a learner is never marked down on one
part for an exercise that belongs to another. Without the table a part id is taken to name
an exercise (see `grader.render.coursera`).

    grader export coursera conv_bn --out coursera_grader/
    cd coursera_grader && zip -r ../grader.zip .   # then coursera_autograder upload ...

The entry point (`python -m grader.export.coursera`) takes its folder from
`GRADER_SHARED_DIR` (default `/shared`), so the bundle can be exercised without Docker.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from grader.exit_codes import EXIT_OK
from grader.export import (TORCH_CPU_INDEX, BundleError, as_submitted, build_from_args, copy_grading_files,
                           error_result, find_submission, grade_one, prepare_entry_point, python_version,
                           requirements_text)
from grader.sandbox.client import ISOLATION_CHOICES

DEFAULT_SHARED = "/shared"

DOCKERFILE = """\
# Coursera custom grader for `{name}`, built by `grader export coursera`.
FROM python:{python}-slim

# bubblewrap gives the sandbox its strongest isolation where the platform allows user
# namespaces; libseccomp2 backs its syscall filter. Without them grading still works, at a
# weaker isolation level that the feedback names.
RUN apt-get update \\
 && apt-get install -y --no-install-recommends bubblewrap libseccomp2 \\
 && rm -rf /var/lib/apt/lists/*

COPY requirements.txt /grader/requirements.txt
{index_note}RUN pip install --no-cache-dir -r /grader/requirements.txt

COPY . /grader/
# Coursera may run the grader as an unprivileged user: everything must be readable.
RUN chmod -R a+rX /grader

ENV PYTHONPATH=/grader PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 TF_CPP_MIN_LOG_LEVEL=3 \\
    PYTHONDONTWRITEBYTECODE=1 GRADER_SHARED_DIR=/shared
WORKDIR /grader
ENTRYPOINT ["python", "-m", "grader.export.coursera", "--assignment", "/grader/assignments/{folder}"]
"""

README = """\
Coursera custom grader for `{name}`, built by `grader export coursera`.

Test locally (needs Docker and `pip install coursera_autograder`):

    docker build -t {name}-grader .
    mkdir -p /tmp/sub && cp SUBMISSION.ipynb /tmp/sub/
    coursera_autograder grade local {name}-grader /tmp/sub '{{"partId": "{part}"}}' --dst-dir /tmp/out

Upload (from this folder; the zip must have the Dockerfile at its top level):

    zip -r ../{name}-grader.zip .
    coursera_autograder upload ../{name}-grader.zip COURSE_ID ITEM_ID PART_ID \\
        --grader-cpu 2 --grader-memory-limit 4096
{parts}"""


def parts_of(assignment) -> dict[str, list[str]] | None:
    """The `[coursera] parts` table as {partId: [exercise, ...]}, checked against the spec.

    A part naming an exercise the spec does not have would grade nothing and give every
    learner 0 for it: refuse to build such a grader instead.
    """
    table = assignment.extra.get("coursera", {})
    if not isinstance(table, dict):
        raise BundleError(f"{assignment.root / 'assignment.toml'}: [coursera] must be a table")
    raw = table.get("parts")
    if raw is None:
        return None
    if not isinstance(raw, dict) or not raw:
        raise BundleError(f"{assignment.root / 'assignment.toml'}: [coursera] parts must map part ids to "
                          f"lists of exercises, e.g. parts = {{ Zb6wb = [\"happyModel\"] }}")
    parts: dict[str, list[str]] = {}
    for part, exercises in raw.items():
        names = [exercises] if isinstance(exercises, str) else list(exercises)
        unknown = [e for e in names if e not in assignment.exercises]
        if not names or unknown:
            raise BundleError(f"{assignment.root / 'assignment.toml'}: part {part!r} names "
                              f"{', '.join(map(repr, unknown)) or 'no exercise'}; the exercises are "
                              f"{', '.join(assignment.exercises)}")
        parts[str(part)] = [str(e) for e in names]
    return parts


def _index_note(assignment) -> str:
    """Why the image's pip reads a second index, for whoever reads the Dockerfile."""
    if assignment.framework != "torch":
        return ""
    return ("# requirements.txt names PyTorch's CPU wheel index (--extra-index-url " + TORCH_CPU_INDEX + "):\n"
            "# torch is installed as its CPU-only build, without CUDA libraries; no TensorFlow.\n")


def build_grader(assignment, out: str | Path) -> Path:
    """Write the Docker build context for `assignment` into the folder `out`.

    The folder must be empty or absent: files left over from another assignment's export
    would end up in the image and could even shadow this one's.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BundleError(f"{out}: choose an empty or new folder for the grader's build context")
    parts = parts_of(assignment)
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        folder = copy_grading_files(assignment, staging)
        (staging / "requirements.txt").write_text(requirements_text(assignment.keras, assignment.framework), encoding="utf-8")
        (staging / "Dockerfile").write_text(
            DOCKERFILE.format(name=assignment.name, python=python_version(), folder=folder.name,
                              index_note=_index_note(assignment)), encoding="utf-8")
        listed = "".join(f"\n    {p}: {', '.join(e)}" for p, e in (parts or {}).items())
        (staging / "README.md").write_text(README.format(
            name=assignment.name, part=next(iter(parts or {assignment.exercises[0]: ()})),
            parts=f"\nParts and the exercises each grades:{listed}\n" if parts else
            "\nNo [coursera] parts table: each part id must be an exercise's name.\n"), encoding="utf-8")
        (staging / ".dockerignore").write_text("**/__pycache__\n**/*.pyc\nREADME.md\n", encoding="utf-8")
        if out.exists():
            out.rmdir()
        staging.replace(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


# ---------------------------------------------------------------- inside the image

def _paths(environ) -> tuple[Path, Path]:
    shared = Path(environ.get("GRADER_SHARED_DIR", DEFAULT_SHARED))
    return shared / "submission", shared / "feedback.json"


def main(argv: list[str] | None = None, environ=None) -> int:
    """Grade the submitted notebook for the part in `partId` and write feedback.json.

    Returns 0 whenever feedback was written: a learner then reads our explanation, where a
    crashed grader would only show Coursera's generic error.
    """
    environ = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(prog="python -m grader.export.coursera",
                                     description="Coursera entry point (the image's ENTRYPOINT).")
    parser.add_argument("--assignment", required=True, help="the bundled assignment's folder or name")
    parser.add_argument("--sandbox", default="auto", choices=ISOLATION_CHOICES)
    args = parser.parse_args(argv)
    prepare_entry_point()
    from grader.assignment.spec import AssignmentError, load_assignment
    from grader.render import render_text, write_coursera

    submission_dir, feedback_path = _paths(environ)
    part_id = environ.get("partId") or None
    try:
        assignment = load_assignment(args.assignment)
        parts = parts_of(assignment)
    except (AssignmentError, BundleError) as exc:
        write_coursera(error_result(None, str(submission_dir), f"the grader is misconfigured: {exc}"),
                       feedback_path)
        print(f"grader: {exc}", file=sys.stderr)
        return 1
    only = None
    if part_id is not None and not (parts is None and len(assignment.exercises) == 1):
        known = parts if parts is not None else {e: [e] for e in assignment.exercises}
        if part_id not in known:
            # to_coursera explains an unknown part; nothing needs grading for that.
            write_coursera(error_result(assignment, str(submission_dir), "unknown part"), feedback_path,
                           part_id=part_id, parts=known)
            print(f"grader: unknown partId {part_id!r}; known: {', '.join(known)}", file=sys.stderr)
            return 0
        only = frozenset(known[part_id])
        parts = known
    notebook, problem = find_submission(submission_dir)
    if notebook is None:
        result = error_result(assignment, str(submission_dir), problem)
    else:
        result = as_submitted(grade_one(notebook, assignment, isolation=args.sandbox, only_exercises=only),
                              submission_dir)
    write_coursera(result, feedback_path, part_id=part_id, parts=parts)
    print(render_text(result, color=False, audience="instructor"), flush=True)
    print(f"wrote {feedback_path} (part {part_id or '(none)'})", flush=True)
    return 0


# ---------------------------------------------------------------- command line

def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "coursera", help="build a Coursera custom grader (Docker build context)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""\
Build a Coursera custom grader for an assignment, as a Docker build
context: a Dockerfile installing bubblewrap and the pinned Python packages,
the grader's source, and the assignment's spec, tests, support files and
reference. The image grades the notebook in /shared/submission/ for the
part named by the partId environment variable and writes
/shared/feedback.json. Map parts to exercises in assignment.toml:

  [coursera.parts]
  Zb6wb = ["standardize", "batchnorm_forward"]
  rLa7F = ["happyModel", "convolutional_model"]

Without that table a part id must be an exercise's name.""",
        epilog="example:\n  grader export coursera conv_bn --out coursera_grader/\n"
               "  cd coursera_grader && zip -r ../grader.zip .   # then: coursera_autograder upload ...")
    p.add_argument("assignment", metavar="NAME", help="assignment name (assignments/NAME) or folder")
    p.add_argument("--out", "-o", required=True, metavar="DIR",
                   help="an empty or new folder to write the build context into")
    p.set_defaults(handler=run)
    return p


def run(args) -> int:
    built = build_from_args(args, build_grader)
    if isinstance(built, int):
        return built
    assignment, out = built
    parts = parts_of(assignment)
    print(f"wrote the grader's build context to {out}/ (see its README.md to test and upload it)")
    if parts:
        for part, exercises in parts.items():
            print(f"  part {part}: {', '.join(exercises)}")
    else:
        print("  no [coursera] parts table in assignment.toml: each part id must name an exercise")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
