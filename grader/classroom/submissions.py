"""Finding the notebooks of a class, and refusing the ones that are not what they claim.

A submissions folder comes from students (an LMS export, a git clone, an unpacked
archive), so an entry can be a symbolic link to the instructor's master notebook or to a
system file, or a FIFO that blocks whoever opens it. Such entries are never read: they
are listed (so they get their own 'refused' line instead of vanishing) and refused with a
one-line reason when graded. Links are not followed while walking either, so nothing
outside the folder given is ever reached through one.
"""
from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from grader.classroom.names import fs_name

# Folders that archive tools and Jupyter add next to real submissions.
NOT_SUBMISSIONS = (".ipynb_checkpoints", "__MACOSX")
SUFFIX = ".ipynb"


@dataclass(frozen=True)
class Task:
    """One notebook to grade and who it belongs to.

    `key` is the notebook's path inside the folder it was found in ("alice.ipynb",
    "bob/hw3.ipynb"), so the gradebook recognizes a submission whatever the working
    directory or the spelling of the folder on the command line. `student` is the file's
    stem for a notebook directly in the folder, else the name of the student's folder.
    """

    path: Path
    key: str
    student: str


def refusal(path: Path) -> str:
    """Why `path` must not be opened as a submission, or "" when it may be (a missing
    path is left to the reader, which says 'does not exist')."""
    try:
        info = os.lstat(path)
    except OSError:
        return ""
    if stat.S_ISLNK(info.st_mode):
        return ("is a symbolic link: a submission must be a regular file (a link could point at another "
                "student's notebook, the master notebook or a system file), so it was not read")
    if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
        return "is not a regular file (a FIFO, socket or device), so it was not read"
    return ""


def _walk(folder: Path) -> Iterable[Path]:
    """Every entry below `folder` that is a submission or pretends to be one: notebooks,
    links named like notebooks or pointing at folders, and empty folders named like
    notebooks. Links to folders are listed, never entered."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        path = Path(entry.path)
        if entry.is_symlink():
            if entry.name.endswith(SUFFIX) or path.is_dir():
                yield path  # refused when graded, with its own line
            continue
        if entry.is_dir(follow_symlinks=False):
            if entry.name in NOT_SUBMISSIONS:
                continue
            # A folder named like a notebook is a student's folder when it holds notebooks
            # (they are found on their own); an empty one is a bad submission that must get
            # its own 'is a directory' line rather than vanish.
            inner = list(_walk(path))
            if entry.name.endswith(SUFFIX) and not inner:
                yield path
            yield from inner
        elif entry.name.endswith(SUFFIX):
            yield path


def find_submissions(paths: Iterable[str | Path]) -> list[Task]:
    """Every notebook named on the command line or below a named folder, checkpoints
    skipped. A path that does not exist is kept, so it gets its own 'does not exist'
    line instead of silently vanishing from the batch."""
    tasks: list[Task] = []
    seen_paths: set[Path] = set()
    seen_keys: set[str] = set()
    for raw in paths:
        root = Path(raw)
        if root.is_dir() and root.suffix != SUFFIX:
            # The folder given may itself be a link (the instructor's choice); what is inside may not.
            found = []
            for nb in sorted(_walk(root)):
                rel = nb.relative_to(root)
                found.append((nb, rel.as_posix(), rel.parts[0] if len(rel.parts) > 1 else _stem(nb)))
        else:
            found = [(root, root.name, _stem(root))]
        for path, key, student in found:
            if path in seen_paths:
                continue
            seen_paths.add(path)
            # A name whose bytes are not UTF-8 (unzipped from a Windows archive) is known by
            # its escaped spelling (`caf\xe9`): that can be stored, shown and put in a roster.
            key, student = fs_name(key), fs_name(student)
            if key in seen_keys:  # the same relative name under two folders given at once
                key = fs_name(path.as_posix())
            seen_keys.add(key)
            tasks.append(Task(path, key, student))
    return tasks


def _stem(path: Path) -> str:
    """The name without `.ipynb`, exactly: `alice..ipynb` is student `alice.`, not `alice`."""
    name = path.name
    return name[: -len(SUFFIX)] if name.endswith(SUFFIX) and len(name) > len(SUFFIX) else path.stem


def find_notebooks(paths: Iterable[str | Path]) -> list[Path]:
    return [task.path for task in find_submissions(paths)]


def file_sha256(path: Path) -> str:
    """The content hash that, with the assignment's fingerprint, says whether a stored grade
    still holds; "" for a file that cannot or must not be read (a link, a FIFO: graded
    again, and refused fast)."""
    digest = hashlib.sha256()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return ""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return ""
        with os.fdopen(fd, "rb", closefd=False) as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return ""
    finally:
        os.close(fd)
    return digest.hexdigest()
