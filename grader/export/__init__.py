"""Platform bundles: what a grading service needs to grade one assignment on its own machines.

Gradescope wants a zip with `setup.sh` and `run_autograder`; Coursera wants a Docker build
context. Both carry the same payload, built here once so the two cannot drift apart:

* the grader package itself, as source, so a bundle grades exactly as this checkout does;
* the assignment's spec, tests, support files and reference, laid out as in the
  repository (`assignments/NAME/`, `reference/...`), so `load_assignment` finds them;
* `requirements.txt` pinned to the versions installed here, because a grade must not
  change when a platform rebuilds its image a month later and pip picks newer releases.

The in-bundle entry points (`python -m grader.export.gradescope`, `... .coursera`) share
`find_submission` and `grade_one` below: the rules for "which notebook is the submission"
and "grading never crashes the platform's harness" are the same everywhere.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import time
import traceback
from importlib import metadata
from pathlib import Path

from grader.exit_codes import EXIT_UNGRADED, EXIT_USAGE
from grader.results import SubmissionResult

# Nothing a platform needs, and caches would make two builds of the same sources differ.
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".pytest_cache", ".ipynb_checkpoints",
                                 ".DS_Store")
# Requirements are evaluated as on the platforms' machines, whatever machine builds the bundle.
_TARGET = {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix"}
NOT_SUBMISSIONS = (".ipynb_checkpoints", "__MACOSX")
# The extra (pyproject.toml) that brings the one TensorFlow an assignment's `keras` key needs.
KERAS_EXTRAS = {"3": "keras", "2": "keras2"}
# tensorflow-cpu is the same release as tensorflow, without GPU kernels and with the same
# dependencies: a machine holding only `tensorflow` (the instructor's set-up) pins it from there.
_SAME_RELEASE = {"tensorflow-cpu": "tensorflow"}
# PyTorch's own index of CPU-only wheels. From the public index, Linux x86_64 torch is the
# CUDA build, which pulls several GB of nvidia-* libraries a CPU-only grading machine never
# uses; the CPU build of the same release has the same Python API and gives the same grades.
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# Distributions only torch's CUDA build requires: left out of a bundle, which installs the CPU build.
_CUDA_ONLY = re.compile(r"^(nvidia-.*|triton|cuda-.*)$")


class BundleError(Exception):
    """The assignment cannot be packaged as it is (the instructor's to fix, before upload)."""


# ---------------------------------------------------------------- building

def python_version() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def pinned_requirements(root: str = "grader", extras: frozenset[str] = frozenset({"report"})) -> list[str]:
    """`name==version` for every distribution the grader needs, transitively, as installed here.

    Pinning only the direct dependencies would leave TensorFlow's own dependencies free to
    move, and a new protobuf or ml-dtypes can change whether a model even loads. Markers are
    evaluated for Linux, where Gradescope and Coursera run. A requirement that is not
    installed here (a Linux-only package on a Mac that builds the bundle) keeps its original
    specifier, marked with a comment, instead of silently disappearing.
    """
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pinned: dict[str, str] = {}
    extras_seen: dict[str, set[str]] = {}
    # The `report` extra is matplotlib: students' notebooks import pyplot, and the sandbox
    # worker preloads it, so a platform grades them as this machine does.
    queue: list[tuple[str, frozenset[str]]] = [(root, frozenset(extras))]
    while queue:
        name, extras = queue.pop()
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for line in requires:
            req = Requirement(line)
            if req.marker is not None and not any(
                    req.marker.evaluate({**_TARGET, "extra": e}) for e in ("", *sorted(extras))):
                continue
            key = canonicalize_name(req.name)
            if key == canonicalize_name(root):
                continue
            new_extras = set(req.extras) - extras_seen.get(key, set())
            if key in pinned and not new_extras:
                continue
            extras_seen.setdefault(key, set()).update(req.extras)
            try:
                dist = metadata.distribution(_installed_name(req.name, key))
            except metadata.PackageNotFoundError:
                spec = f"{req.name}{req.specifier}"
                pinned[key] = f"{spec}  # not installed where this bundle was built: unpinned"
                continue
            name = dist.metadata['Name'] if key not in _SAME_RELEASE else req.name
            pinned[key] = f"{name}=={dist.version}"
            queue.append((dist.metadata['Name'], frozenset(extras_seen[key])))
    return [pinned[k] for k in sorted(pinned)]


def _installed_name(name: str, key: str) -> str:
    try:
        metadata.distribution(name)
        return name
    except metadata.PackageNotFoundError:
        return _SAME_RELEASE.get(key, name)


def requirements_text(keras: str = "3", framework: str = "keras") -> str:
    """The framework the assignment's students write in, and only that one.

    Keras: one TensorFlow, chosen by the `keras` key (tensorflow-cpu for Keras 3, tensorflow
    + tf-keras for Keras 2, since tf-keras requires the full package). PyTorch: torch's CPU
    build from PyTorch's CPU index and no TensorFlow at all, so that a platform image neither
    downloads CUDA libraries nor the 274 MB TensorFlow wheel that grading a torch assignment
    never imports.
    """
    head = (f"# Pinned from the environment that built this bundle (Python {python_version()}).\n"
            "# A rebuilt platform image then grades exactly as the instructor's machine did.\n")
    if framework != "torch":
        extras = frozenset({"report", KERAS_EXTRAS.get(str(keras), "keras")})
        return head + "\n".join(pinned_requirements(extras=extras)) + "\n"
    pins = [line for line in pinned_requirements(extras=frozenset({"report", "torch"}))
            if not _CUDA_ONLY.match(line.split("==")[0].split()[0].lower())]
    pins = [_cpu_torch(line) for line in pins]
    head += ("# torch is PyTorch's CPU-only build, from PyTorch's CPU wheel index (the public index's\n"
             "# Linux torch is the CUDA build, several GB of GPU libraries a grader never uses):\n"
             f"--extra-index-url {TORCH_CPU_INDEX}\n")
    return head + "\n".join(pins) + "\n"


def _cpu_torch(line: str) -> str:
    """`torch==2.13.0+cu126` or `torch==2.13.0` as `torch==2.13.0+cpu`: the same release, the
    build that only the CPU index carries, whichever build the instructor has installed."""
    name, sep, version = line.partition("==")
    if name.strip().lower() != "torch" or not sep or "#" in version:
        return line
    return f"{name}=={version.split('+')[0]}+cpu"


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dst, ignore=_IGNORE, dirs_exist_ok=True)
    else:
        shutil.copy2(src, dst)


def copy_grading_files(assignment, dest: Path) -> Path:
    """Copy the grader package and everything the assignment grades with into `dest`.

    Returns the assignment's folder inside `dest`. Student-facing material (the master
    notebook with its solutions, the release, sample submissions) stays behind: a grader
    needs none of it, and each copy of a solution is one more place it could leak from.
    Files the spec points to outside its folder (the reference usually lives in the
    repository's `reference/`) keep their relative place when that place is inside the
    bundle; a reference elsewhere is copied next to the spec and the spec is rewritten.
    """
    import grader

    dest = Path(dest)
    _copy(Path(grader.__file__).resolve().parent, dest / "grader")
    folder = dest / "assignments" / assignment.root.name
    spec_text = (assignment.root / "assignment.toml").read_text(encoding="utf-8")

    def place(src: Path) -> Path | None:
        target = (folder / os.path.relpath(src, assignment.root)).resolve()
        return target if _inside(target, dest) else None

    tests = place(assignment.tests_dir)
    if tests is None:
        raise BundleError(f"{assignment.root}: the tests folder {assignment.tests_dir} lies outside the "
                          f"assignment; move it inside so the bundle can carry it")
    _copy(assignment.tests_dir, tests)
    for support in assignment.support:
        target = place(support)
        if target is None:
            raise BundleError(f"{assignment.root}: support file {support} lies outside the assignment; "
                              f"move it inside so the bundle can carry it")
        _copy(support, target)
    for module, standin in getattr(assignment, "modules", ()):  # spec [modules]: stand-ins travel too
        target = place(standin) if standin is not None else folder
        if target is None:
            raise BundleError(f"{assignment.root}: the stand-in for `{module}` ({standin}) lies outside the "
                              f"assignment; move it inside so the bundle can carry it")
        if standin is not None:
            _copy(standin, target)
    reference = place(assignment.reference)
    if reference is None:
        reference = folder / "reference" / assignment.reference.name
        line = re.compile(r"^(\s*reference\s*=\s*).*$", re.MULTILINE)
        if len(line.findall(spec_text)) != 1:
            raise BundleError(f"{assignment.root / 'assignment.toml'}: cannot rewrite its `reference` line")
        spec_text = line.sub(lambda m: m.group(1) + f'"reference/{assignment.reference.name}"', spec_text)
    _copy(assignment.reference, reference)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "assignment.toml").write_text(spec_text, encoding="utf-8")

    from grader.assignment.spec import AssignmentError, load_assignment
    try:
        copied = load_assignment(folder)
    except AssignmentError as exc:  # a bundle that cannot load its own spec must never ship
        raise BundleError(f"the bundled copy of {assignment.name} does not load: {exc}") from None
    if sorted(p.name for p in copied.tests_dir.rglob("test_*.py")) != \
            sorted(p.name for p in assignment.tests_dir.rglob("test_*.py")):
        raise BundleError(f"the bundled copy of {assignment.name} lost some of its test files")
    return folder


# ---------------------------------------------------------------- inside a bundle

def find_submission(folder: Path) -> tuple[Path | None, str]:
    """The one notebook in `folder` (searched recursively), or None and what to tell the student.

    Exactly one is accepted: guessing between several would grade a notebook the student
    may not have meant, and they would not find out until the grades are out.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return None, f"the submission folder {folder} does not exist; nothing was submitted"
    found = sorted(p for p in folder.rglob("*.ipynb")
                   if p.is_file() and not any(part in NOT_SUBMISSIONS for part in p.relative_to(folder).parts))
    if len(found) == 1:
        return found[0], ""
    if not found:
        names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        listed = ", ".join(names[:10]) + (" ..." if len(names) > 10 else "") if names else "no files at all"
        return None, (f"no Jupyter notebook (.ipynb) was found in your submission ({listed}); "
                      f"submit your notebook file")
    names = ", ".join(str(p.relative_to(folder)) for p in found)
    return None, (f"your submission holds {len(found)} notebooks ({names}); submit exactly one notebook, "
                  f"the one with your answers")


def as_submitted(result: SubmissionResult, folder: Path) -> SubmissionResult:
    """Name files as the student knows them ("conv_bn.ipynb"), not by the platform's path
    ("/autograder/submission/conv_bn.ipynb"), which means nothing to them."""
    prefix = str(folder).rstrip("/") + "/"
    result.submission = result.submission.replace(prefix, "")
    result.errors = [e.replace(prefix, "") for e in result.errors]
    result.warnings = [w.replace(prefix, "") for w in result.warnings]
    return result


def error_result(assignment, submission: str, message: str) -> SubmissionResult:
    name = assignment.name if assignment is not None else ""
    return SubmissionResult(submission=submission, assignment=name, errors=[message])


def grade_one(path: Path, assignment, *, include_hidden: bool = True, isolation: str = "auto",
              only_exercises: frozenset[str] | None = None) -> SubmissionResult:
    """Grade one submission the way every platform entry point does; never raises.

    A notebook that cannot even be read is answered without starting a sandbox (a second,
    not ten). The sandbox's framework import overlaps with the grading process's own. Any
    failure of the grader itself still becomes a result that says it is not the student's
    fault, because a platform shows a bare "autograder failed" otherwise.
    """
    from grader.frameworks.preload import preload, quiet_env

    quiet_env()
    from grader.run.grading import grade_submission
    from grader.notebook import LoadError, load_notebook
    from grader.frameworks.sandbox_side import sandbox_side
    from grader.sandbox.client import Worker

    started = time.perf_counter()
    if isinstance(load_notebook(path), LoadError):
        return grade_submission(path, assignment, None, include_hidden=include_hidden,
                                only_exercises=only_exercises)
    worker = None
    try:
        worker = Worker(framework=sandbox_side(assignment.framework, assignment.keras), isolation=isolation).launch()
        # torch for a torch assignment, and then never TensorFlow: its bundle holds none
        preload(getattr(assignment, "framework", "keras"), assignment.keras)
        worker.wait_ready()
        return grade_submission(path, assignment, worker, include_hidden=include_hidden,
                                only_exercises=only_exercises)
    except Exception as exc:  # noqa: BLE001 - the platform must get a result whatever happens
        result = error_result(assignment, str(path),
                              f"the autograder itself failed ({type(exc).__name__}: {exc}); this is not a "
                              f"problem with your notebook: please tell the course staff")
        result.warnings.append(traceback.format_exc()[-2000:])
        result.execution_time = time.perf_counter() - started
        return result
    finally:
        if worker is not None:
            worker.stop()


def build_from_args(args, builder):
    """The part every `grader export PLATFORM` command shares: load the assignment, build,
    and turn either failure into a message and an exit status (2 usage, 1 build failed).
    Returns (assignment, output path) on success, else the exit status."""
    from grader.assignment.spec import AssignmentError, load_assignment
    try:
        assignment = load_assignment(args.assignment)
    except AssignmentError as exc:
        print(f"grader: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return assignment, builder(assignment, args.out)
    except (BundleError, OSError) as exc:
        print(f"grader: {exc}", file=sys.stderr)
        return EXIT_UNGRADED


def prepare_entry_point() -> None:
    """Process-wide settings for an in-bundle entry point, made before pytest is imported.

    Inside a bundle the grader is not pip-installed, so pytest cannot discover our plugin
    through its entry point and `grader.run.grading` must name it; and a platform image may
    carry pytest plugins of its own that have no business in grading.
    """
    os.environ.setdefault("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


# ---------------------------------------------------------------- command line

def register(subparsers) -> argparse.ArgumentParser:
    from grader.export import coursera, gradescope, grades, student

    parser = subparsers.add_parser(
        "export", help="package an assignment's autograder for Gradescope or Coursera, or its student kit; "
                       "or the course's grades for an LMS",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""\
Build what a grading platform needs to grade an assignment on its own
machines: the grader, the assignment's spec, tests, support files and
reference, and its Python dependencies pinned to the versions installed
here. Run `grader validate-assignment NAME` first: the platform will show
students whatever the tests say.""",
        epilog="examples:\n  grader export gradescope conv_bn --out autograder.zip\n"
               "  grader export coursera conv_bn --out coursera_grader/")
    platforms = parser.add_subparsers(dest="platform", metavar="PLATFORM", required=True)
    gradescope.register(platforms)
    coursera.register(platforms)
    student.register(platforms)
    grades.register(platforms)  # not a bundle: the course's grades for an LMS
    return parser


def run(args) -> int:
    return args.handler(args)


__all__ = ["BundleError", "as_submitted", "copy_grading_files", "error_result", "find_submission",
           "grade_one", "pinned_requirements", "prepare_entry_point", "register", "requirements_text", "run"]
