"""Where an assignment's own notebooks are: the master, the release, the template students got.

Grading needs the template too (to find written answers whose tags students broke), and
validation needs the master and the release: both read the assignment's folder through
here, beside its spec, so class grading never reaches up into the authoring tools.
"""
from __future__ import annotations

from pathlib import Path

import nbformat


def _named_or_only(folder: Path, names: list[str], suffix: str) -> Path | None:
    """`folder/NAME.suffix` for the first name that exists, else the folder's only such file."""
    for name in names:
        if (folder / f"{name}{suffix}").is_file():
            return folder / f"{name}{suffix}"
    found = sorted(folder.glob(f"*{suffix}")) if folder.is_dir() else []
    return found[0] if len(found) == 1 else None


def find_master(assignment) -> Path | None:
    """The spec's `master`, else source/NAME.ipynb, else source/NAME.py (either may be the
    folder's only one of its kind: a copied assignment keeps its files' names)."""
    declared = assignment.extra.get("master")
    if declared and (assignment.root / str(declared)).is_file():
        return assignment.root / str(declared)
    names = list(dict.fromkeys([assignment.name, assignment.root.name]))
    source = assignment.root / "source"
    return _named_or_only(source, names, ".ipynb") or _named_or_only(source, names, ".py")


def find_release(assignment) -> Path | None:
    names = list(dict.fromkeys([assignment.name, assignment.root.name]))
    return _named_or_only(assignment.root / "release", names, ".ipynb")


def student_template(assignment) -> nbformat.NotebookNode | None:
    """The notebook students received: the release if there is one, else the template made
    from the master; None when neither can be had. Trusted instructor files, read as data
    (grading uses it to find written answers whose tags students broke)."""
    from grader.authoring.assign import MasterError, make_template, read_master

    try:
        release = find_release(assignment)
        if release is not None:
            return nbformat.read(release, as_version=4)
        master = find_master(assignment)
        return make_template(read_master(master)) if master is not None else None
    except (MasterError, OSError, ValueError, ImportError):
        return None


__all__ = ["find_master", "find_release", "student_template"]
