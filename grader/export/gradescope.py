"""A Gradescope autograder bundle, and the entry point that runs inside it.

Gradescope unpacks the zip into `/autograder/source`, runs `setup.sh` once (as root) when
it builds the image, and for every submission runs `run_autograder`, which must leave
`/autograder/results/results.json`. Everything in the bundle is derived from this checkout
at export time, so the bundle grades exactly as `grader grade` does here.

    grader export gradescope conv_bn --out autograder.zip

The entry point (`python -m grader.export.gradescope`) takes its paths from
`GRADER_AUTOGRADER_ROOT` (default `/autograder`), so the very same bundle can be
exercised in a temporary folder laid out like Gradescope's.
"""
from __future__ import annotations

import argparse
import json
import os
import stat
import sys
import tempfile
import zipfile
from pathlib import Path

from grader.exit_codes import EXIT_OK
from grader.export import (TORCH_CPU_INDEX, BundleError, as_submitted, build_from_args, copy_grading_files,
                           error_result, find_submission, grade_one, prepare_entry_point, python_version,
                           requirements_text)
from grader.sandbox.client import ISOLATION_CHOICES

DEFAULT_ROOT = "/autograder"
EXECUTABLE = ("setup.sh", "run_autograder")

# Run once, as root, on Gradescope's Ubuntu image. `{python}` is the version that built the
# bundle: the pinned wheels (numpy 2.3+, for one) may not exist for the image's default.
SETUP_SH = """\
#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image.
set -euo pipefail
cd "$(dirname "${{BASH_SOURCE[0]}}")"
ROOT="${{GRADER_AUTOGRADER_ROOT:-/autograder}}"
export DEBIAN_FRONTEND=noninteractive

apt-get update -q
# bubblewrap gives the sandbox its strongest isolation; libseccomp2 backs its syscall filter.
# Grading still works without bubblewrap, at a weaker isolation level that results name.
apt-get install -y -q --no-install-recommends bubblewrap libseccomp2 ca-certificates \\
    || echo "warning: bubblewrap could not be installed; grading will use a weaker sandbox" >&2

# The requirements are pinned for Python {python}, the version that built this bundle.
PY=python{python}
if ! command -v "$PY" >/dev/null 2>&1; then
    apt-get install -y -q --no-install-recommends "$PY" "$PY-venv" || true
fi
if ! command -v "$PY" >/dev/null 2>&1; then
    echo "warning: $PY is not available on this image; trying $(python3 --version 2>&1)." >&2
    echo "         Pick a Gradescope base image with Python {python} if pip cannot install the pins." >&2
    PY=python3
    apt-get install -y -q --no-install-recommends python3-venv || true
fi
# A virtual environment: newer Ubuntu images refuse `pip install` into the system Python.
"$PY" -m venv "$ROOT/venv"
"$ROOT/venv/bin/python" -m pip install --quiet --upgrade pip
{index_note}"$ROOT/venv/bin/python" -m pip install --quiet --no-cache-dir -r requirements.txt
"$ROOT/venv/bin/python" -c "import {framework_module}, nbformat, pytest; print('grader dependencies ready')"
"""

# Gradescope copies this file to /autograder/run_autograder and runs it once per submission.
RUN_AUTOGRADER = """\
#!/usr/bin/env bash
# Gradescope runs this for every submission; it writes $ROOT/results/results.json.
set -uo pipefail
ROOT="${{GRADER_AUTOGRADER_ROOT:-/autograder}}"
SOURCE="$ROOT/source"
PYTHON="$ROOT/venv/bin/python"
[ -x "$PYTHON" ] || PYTHON=python3   # set-up skipped (local testing): the python on PATH
RESULTS="$ROOT/results/results.json"
cd "$SOURCE"
export GRADER_AUTOGRADER_ROOT="$ROOT"
export PYTHONPATH="$SOURCE${{PYTHONPATH:+:$PYTHONPATH}}"
rm -f "$RESULTS"
"$PYTHON" -m grader.export.gradescope --assignment "$SOURCE/assignments/{folder}"
status=$?
if [ ! -s "$RESULTS" ]; then
    # Python could not even start grading (a broken image): still tell the student something.
    mkdir -p "$(dirname "$RESULTS")"
    cat > "$RESULTS" <<'JSON'
{{"score": 0.0, "output": "The autograder itself failed before it could grade your notebook (exit status STATUS). This is not a problem with your notebook: please tell the course staff.", "output_format": "text", "visibility": "visible", "stdout_visibility": "hidden", "tests": []}}
JSON
    sed -i "s/STATUS/$status/" "$RESULTS"
fi
exit $status
"""


def setup_sh(assignment) -> str:
    """setup.sh for the assignment's framework: its last line imports what grading needs, so a
    broken install fails the image build (where the instructor sees it), not every submission."""
    torch = assignment.framework == "torch"
    note = ("# requirements.txt names PyTorch's CPU wheel index (--extra-index-url " + TORCH_CPU_INDEX + "):\n"
            "# torch comes from there as its CPU-only build, without CUDA libraries; no TensorFlow.\n"
            ) if torch else ""
    return SETUP_SH.format(python=python_version(), index_note=note,
                           framework_module="torch" if torch else "tensorflow")


def build_bundle(assignment, out: str | Path) -> Path:
    """Write the autograder zip for `assignment` to `out` and return its path.

    The zip is assembled in a temporary folder first, so a failed export never leaves a
    half-written bundle that could be uploaded by mistake. `setup.sh` and `run_autograder`
    carry executable permissions in the zip, as Gradescope's unzip restores them.
    """
    out = Path(out)
    if out.suffix != ".zip":
        raise BundleError(f"{out}: a Gradescope autograder must be a .zip file")
    with tempfile.TemporaryDirectory(prefix="grader-gradescope-") as tmp:
        stage = Path(tmp) / "source"
        folder = copy_grading_files(assignment, stage)
        (stage / "setup.sh").write_text(setup_sh(assignment), encoding="utf-8")
        (stage / "run_autograder").write_text(RUN_AUTOGRADER.format(folder=folder.name), encoding="utf-8")
        (stage / "requirements.txt").write_text(requirements_text(assignment.keras, assignment.framework),
                                                encoding="utf-8")
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(out.name + ".partial")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(stage.rglob("*")):
                if path.is_dir():
                    continue
                name = path.relative_to(stage).as_posix()
                info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))  # same sources, same bytes
                mode = 0o755 if name in EXECUTABLE else 0o644
                info.external_attr = (stat.S_IFREG | mode) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, path.read_bytes())
        partial.replace(out)
    return out


# ---------------------------------------------------------------- inside the bundle

def _paths(environ) -> tuple[Path, Path]:
    root = Path(environ.get("GRADER_AUTOGRADER_ROOT", DEFAULT_ROOT))
    return root / "submission", root / "results" / "results.json"


def main(argv: list[str] | None = None, environ=None) -> int:
    """Grade the one notebook in the submission folder and write results.json.

    Returns 0 whenever results.json was written, even for a submission that earned
    nothing: Gradescope then shows our explanation instead of a generic failure.
    """
    environ = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(prog="python -m grader.export.gradescope",
                                     description="Gradescope entry point (run by run_autograder).")
    parser.add_argument("--assignment", required=True, help="the bundled assignment's folder or name")
    parser.add_argument("--sandbox", default="auto", choices=ISOLATION_CHOICES)
    args = parser.parse_args(argv)
    prepare_entry_point()
    import grader
    from grader.assignment.spec import AssignmentError, load_assignment
    from grader.render import render_text, to_gradescope

    submission_dir, results_path = _paths(environ)
    print(f"grader {grader.__version__} from {Path(grader.__file__).resolve().parent}", flush=True)
    try:
        assignment = load_assignment(args.assignment)
    except AssignmentError as exc:
        _write(results_path, to_gradescope(error_result(None, str(submission_dir),
                                                        f"the autograder is misconfigured: {exc}")))
        print(f"grader: {exc}", file=sys.stderr)
        return 1
    notebook, problem = find_submission(submission_dir)
    if notebook is None:
        result = error_result(assignment, str(submission_dir), problem)
    else:
        result = as_submitted(grade_one(notebook, assignment, isolation=args.sandbox), submission_dir)
    data = to_gradescope(result)
    if result.errors and assignment.total_points:
        # The lone "could not be graded" test reads 0 / 23 rather than 0 / 0.
        data["tests"][0]["max_score"] = float(assignment.total_points)
    _write(results_path, data)
    print(render_text(result, color=False, audience="instructor"), flush=True)
    print(f"wrote {results_path}: score {data['score']}", flush=True)
    return 0


def _write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # ASCII-only: a stray surrogate from a student's output cannot make the write fail.
    path.write_text(json.dumps(data, indent=2, ensure_ascii=True) + "\n", encoding="utf-8")


# ---------------------------------------------------------------- command line

def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "gradescope", help="build a Gradescope autograder zip",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""\
Build a Gradescope autograder zip for an assignment. It holds:

  setup.sh          installs bubblewrap (apt-get) and the pinned Python
                    packages into a virtual environment
  run_autograder    grades the one .ipynb in /autograder/submission/ and
                    writes /autograder/results/results.json
  requirements.txt  every dependency, pinned to the versions installed here
                    (a PyTorch assignment: torch's CPU build, from PyTorch's
                    CPU wheel index, and no TensorFlow)
  grader/, assignments/NAME/, reference/
                    the grader's source; the spec, tests, support files
                    and reference

Upload it as the autograder of a Gradescope programming assignment.""",
        epilog="example:\n  grader export gradescope conv_bn --out autograder.zip")
    p.add_argument("assignment", metavar="NAME", help="assignment name (assignments/NAME) or folder")
    p.add_argument("--out", "-o", default="autograder.zip", metavar="ZIP",
                   help="where to write the zip (default: autograder.zip)")
    p.set_defaults(handler=run)
    return p


def run(args) -> int:
    built = build_from_args(args, build_bundle)
    if isinstance(built, int):
        return built
    assignment, out = built
    with zipfile.ZipFile(out) as zf:
        count = len(zf.namelist())
    heavy = "PyTorch, CPU build" if assignment.framework == "torch" else "TensorFlow"
    print(f"wrote {out} ({count} files, {out.stat().st_size // 1024} KiB): upload it as the autograder of "
          f"a Gradescope programming assignment; the image's set-up takes several minutes ({heavy}).")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
