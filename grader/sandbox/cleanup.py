"""Removing what a child left behind, whatever shape it has, without ever raising.

Why not `shutil.rmtree`: it recurses once per folder level, so a child that made a folder
3,000 levels deep raised RecursionError (not an OSError) in the worker and ended it, and
with it every child of every submission it served. Paths that deep are also longer than
the kernel accepts (PATH_MAX), so a path-based walk cannot reach the bottom at all.

Here the walk holds one open folder at a time and names everything relative to it
(`dir_fd`), climbing back through "..": depth costs a list of names per level, no stack
frames and no long paths. The child is gone before its folder is removed, so nothing
moves the tree while it is walked. Folders a child made unreadable are opened up first.
"""
from __future__ import annotations

import os
import stat

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_PROBLEMS = 5  # what a report keeps: the first few say enough


def _names(fd: int, problems: list[str]) -> list[str]:
    try:
        return os.listdir(fd)
    except OSError as exc:
        _note(problems, f"cannot list a folder: {exc.strerror}")
        return []


def _note(problems: list[str], text: str) -> None:
    if len(problems) < MAX_PROBLEMS:
        problems.append(text)


def _open_folder(name: str, parent: int, problems: list[str]) -> int | None:
    try:
        os.chmod(name, stat.S_IRWXU, dir_fd=parent)  # a folder the child locked (chmod 000)
    except OSError:
        pass
    try:
        return os.open(name, _DIR, dir_fd=parent)
    except OSError as exc:
        _note(problems, f"cannot open folder {name!r}: {exc.strerror}")
        return None


def _unlink(name: str, parent: int, problems: list[str]) -> None:
    try:
        os.unlink(name, dir_fd=parent)
    except FileNotFoundError:
        pass
    except OSError as exc:
        _note(problems, f"cannot remove {name!r}: {exc.strerror}")


def _empty(fd: int, problems: list[str]) -> int:
    """Remove everything below the folder open as `fd`; returns the descriptor then open
    (the same folder, reached again through "..")."""
    pending = _names(fd, problems)
    above: list[tuple[str, list[str]]] = []  # (name in its parent, names left in that parent)
    while True:
        if pending:
            name = pending.pop()
            try:
                info = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except OSError:
                continue
            if not stat.S_ISDIR(info.st_mode):
                _unlink(name, fd, problems)
                continue
            below = _open_folder(name, fd, problems)
            if below is None:
                continue
            above.append((name, pending))
            os.close(fd)
            fd, pending = below, _names(below, problems)
            continue
        if not above:
            return fd
        name, pending = above.pop()
        try:
            parent = os.open("..", _DIR, dir_fd=fd)
        except OSError as exc:
            _note(problems, f"cannot climb back up: {exc.strerror}")
            return fd
        os.close(fd)
        fd = parent
        try:
            os.rmdir(name, dir_fd=fd)
        except OSError as exc:
            _note(problems, f"cannot remove folder {name!r}: {exc.strerror}")


def remove_tree(path: str) -> list[str]:
    """Delete `path` (a file, a link, or a folder tree of any depth and width); returns
    what could not be removed, as text, and never raises."""
    problems: list[str] = []
    try:
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return []
        if not stat.S_ISDIR(info.st_mode):
            os.unlink(path)
            return []
        try:
            os.chmod(path, stat.S_IRWXU)
        except OSError:
            pass
        os.close(_empty(os.open(path, _DIR), problems))
        os.rmdir(path)
    except OSError as exc:
        _note(problems, f"cannot remove {path}: {exc.strerror}")
    except Exception as exc:  # noqa: BLE001 - cleaning up must never end the caller
        _note(problems, f"cannot remove {path}: {type(exc).__name__}: {exc}")
    return problems
