"""One writer at a time for a results folder, across processes and threads.

Every file in a results folder but the gradebook (grades.csv, grades.json, feedback/) is a
function of the gradebook's state. Two writers (`grader grade --out` finishing its run,
a save on a review page, a second review server, `grader override`) each read the state
and write the files; without one lock for all of them, the one that read first may write
last, and a save is lost from grades.csv. So each derivation reads the gradebook and
writes its files while holding this lock: whoever writes last read last, and the files
hold the latest state.

The lock is `flock` on `gradebook.sqlite.lock` next to the gradebook (the kernel drops it
when its holder dies, so a killed process never leaves it held), plus a lock per folder
inside this process, since flock does not exclude two threads of one process holding two
descriptors, and re-entrant, so a decision and the derivation after it take it once.
Waiting is bounded: past `timeout` the caller gets a GradebookError naming the holder.
"""
from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from grader.classroom.errors import GradebookError

try:  # POSIX; elsewhere only the threads of one process are kept apart
    import fcntl
except ImportError:  # pragma: no cover - not on Linux
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = "gradebook.sqlite.lock"
TIMEOUT = 120.0  # seconds: a whole class's outputs take a few; a stuck holder is named, not waited on forever

_guard = threading.Lock()
_locks: dict[str, threading.RLock] = {}
_held = threading.local()  # folder -> (depth, descriptor) held by this thread


def _thread_lock(key: str) -> threading.RLock:
    with _guard:
        return _locks.setdefault(key, threading.RLock())


def _open(path: Path) -> int | None:
    """A descriptor to flock, or None where the folder cannot hold a lock file (a read-only
    copy: nothing can be written there either, so there is nothing to keep apart)."""
    for flags in (os.O_RDWR | os.O_CREAT, os.O_RDONLY):
        try:
            return os.open(path, flags | getattr(os, "O_CLOEXEC", 0), 0o644)
        except OSError:
            continue
    return None


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return f" (held by {text})" if text else ""


@contextmanager
def results_lock(folder: str | Path, *, timeout: float = TIMEOUT) -> Iterator[None]:
    """Hold the results folder's write lock for the block (re-entrant in one thread)."""
    key = os.path.abspath(folder)
    held: dict = _held.__dict__.setdefault("folders", {})
    if key in held:
        held[key] += 1
        try:
            yield
        finally:
            held[key] -= 1
        return
    inner = _thread_lock(key)
    deadline = time.monotonic() + timeout
    if not inner.acquire(timeout=timeout):
        raise GradebookError(f"{folder}: another save in this process has held the results folder for over "
                             f"{timeout:g} s; try again")
    fd = None
    try:
        fd = _open(Path(key) / LOCK_NAME) if fcntl is not None else None
        if fd is not None:
            _flock(fd, folder, deadline, timeout)
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"process {os.getpid()} since {time.strftime('%H:%M:%S')}".encode(), 0)
            except OSError:
                pass  # a read-only descriptor still locks
        held[key] = 1
        try:
            yield
        finally:
            del held[key]
    finally:
        if fd is not None:
            os.close(fd)  # releases the flock
        inner.release()


def _flock(fd: int, folder, deadline: float, timeout: float) -> None:
    pause = 0.005
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        except OSError:
            return  # a file system without flock: threads are still kept apart
        if time.monotonic() >= deadline:
            who = _holder(fd)
            raise GradebookError(f"{folder}: another grader process has held the results folder for over "
                                 f"{timeout:g} s{who}; wait for it to finish, or stop it, and try again")
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


__all__ = ["LOCK_NAME", "results_lock"]
