"""The sandbox worker: imports the assignment's framework once, then forks one child per
submission.

Importing TensorFlow costs about 3 s and 600 MB; building a student's model costs about
0.1 s. So the worker pays the import once and each submission gets a fresh fork, which
shares the imported modules copy-on-write and starts in milliseconds. Which framework,
and what importing it means, is the framework package's business (`hooks`): the worker
loads the package it is given (GRADER_FRAMEWORK_PACKAGE) and calls its `preload`.

The worker must never run a framework op itself: a child forked after a TensorFlow op
hangs in its first op. It runs no student code either; children do, after confining
themselves.

Control protocol (over the socket given as fd in GRADER_CONTROL_FD, framed by
`protocol`): the grading process sends {"cmd": "spawn"} with a socket passed as
ancillary data; the worker forks a child that serves that socket and answers
{"pid": PID}. {"cmd": "kill", "pid": PID} kills the child's process group;
{"cmd": "status", "pid": PID} reports how it ended; {"cmd": "probe"} reports the worker's
own state (whether a TensorFlow context was initialised, how many threads it runs), which
the tests use to prove that the worker stays fork-safe.

Children cannot touch the worker: it makes itself non-dumpable (so no child can open its
`/proc/PID/mem`), and the children's seccomp filter refuses signals to it. Each child
writes only in a /tmp of its own (`private_tmp`), gone with it; its working folder's
name is chosen here, before the fork, and whatever a child could leave here (where it
could not get its own /tmp) is removed after it ends, so what one child wrote is never
seen by another.
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import sys
import tempfile
import time

from . import hooks, protocol
from .cleanup import remove_tree


_FONTLIST_NAME = re.compile(r"fontlist-v[0-9.]{1,20}\.json")
_FONTLIST_MAX = 1024 * 1024


def _font_cache() -> str:
    """Where matplotlib keeps its font list here (see matplotlib.get_cachedir)."""
    home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.environ.get("HOME", "/tmp"), ".cache")
    return os.environ.get("MPLCONFIGDIR") or os.path.join(home, "matplotlib")


def _seed_font_list() -> bool:
    """Under bubblewrap this worker's /tmp starts empty, so matplotlib would list and read
    every font on the machine again (~0.13 s of CPU and a subprocess, before the worker is
    ready). The grading process hands back the list a previous worker built (see
    `_built_font_list`); matplotlib still checks its version and rebuilds one that does
    not match. Taken out of the environment, so that no child inherits it."""
    name = os.environ.pop("GRADER_FONTLIST_NAME", "")
    text = os.environ.pop("GRADER_FONTLIST", "")
    fd = os.environ.pop("GRADER_FONTLIST_FD", "")
    if fd.isdigit():  # the list comes through a file descriptor, not the command line
        try:
            with os.fdopen(int(fd), encoding="utf-8") as f:
                text = f.read(_FONTLIST_MAX + 1)
        except (OSError, ValueError):
            text = ""
    if os.environ.get("GRADER_PRIVATE_TMP") != "1" or not _FONTLIST_NAME.fullmatch(name) or not text:
        return False
    try:
        os.makedirs(_font_cache(), exist_ok=True)
        with open(os.path.join(_font_cache(), name), "w", encoding="utf-8") as f:
            f.write(text)
        return True
    except OSError:
        return False


def _built_font_list(seeded: bool) -> dict:
    """The font list matplotlib built during the preload, before any child existed, for the
    grading process to keep and hand to the next worker (data: a JSON text, size-capped)."""
    manager = sys.modules.get("matplotlib.font_manager")
    if seeded or manager is None or os.environ.get("GRADER_PRIVATE_TMP") != "1":
        return {}
    name = f"fontlist-v{getattr(manager.FontManager, '__version__', '')}.json"
    path = os.path.join(_font_cache(), name)
    try:
        if not _FONTLIST_NAME.fullmatch(name) or os.path.getsize(path) > _FONTLIST_MAX:
            return {}
        with open(path, encoding="utf-8") as f:
            return {"fontlist": {"name": name, "text": f.read()}}
    except (OSError, UnicodeDecodeError):
        return {}


def _preload() -> dict:
    started = time.perf_counter()
    seeded = _seed_font_list()
    import numpy  # noqa: F401
    hooks.activate(os.environ.pop("GRADER_FRAMEWORK_PACKAGE", "") or None)
    versions = hooks.call("preload", json.loads(os.environ.pop("GRADER_FRAMEWORK_OPTIONS", "") or "{}"),
                          default={}) or {}
    try:
        # Nearly every notebook imports pyplot at the top; paying that once here instead of
        # in every child saves 0.3-0.6 s per submission. (Agg backend, no TF involved.)
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot  # noqa: F401
    except Exception:  # noqa: BLE001 - students without matplotlib still grade
        pass
    # Deliberately nothing that creates a tensor here: see the module docstring.
    # What every child needs anyway is imported once, here, and shared copy-on-write.
    from . import child, confine  # noqa: F401
    try:
        import pyseccomp  # noqa: F401
    except Exception:  # noqa: BLE001 - the child reports seccomp as off
        pass
    skipped = _preload_declared(json.loads(os.environ.get("GRADER_PRELOAD", "[]")))
    info = {"import_seconds": round(time.perf_counter() - started, 3), **versions, **_built_font_list(seeded)}
    if os.environ.get("GRADER_PRIVATE_TMP") == "1":
        info["font_list"] = "seeded" if seeded else "built"
    if skipped:
        info["preload_skipped"] = skipped
    return info


class PreloadUnsafe(Exception):
    """A declared preload left the worker unable to fork working children."""


def _threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 0


def _fork_hazard(threads_before: int) -> str:
    """What would make a forked child hang: the framework's own hazard (a TensorFlow
    context), or a thread more than before."""
    hazard = hooks.call("fork_hazard", default="")
    if hazard:
        return str(hazard)
    threads = _threads()
    return f"started {threads - threads_before} thread(s)" if threads > threads_before else ""


def _preload_declared(modules: list) -> list[str]:
    """Import the assignment's `preload` modules (spec key) once, for every child to share.

    A module that is not installed is skipped (the student's own import then fails in the
    child as it would anyway) and reported; one that leaves the worker unsafe to fork
    stops the worker with a message naming it, since every child would hang otherwise."""
    import importlib
    skipped = []
    threads = _threads()
    for name in modules:
        if not isinstance(name, str):
            continue
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - any failure to import: skipped, reported
            skipped.append(f"{name}: {type(exc).__name__}: {str(exc)[:200]}")
            continue
        hazard = _fork_hazard(threads)
        if hazard:
            raise PreloadUnsafe(f"preloading `{name}` (spec key `preload`) {hazard} in the sandbox worker, "
                                f"after which forked children hang: remove it from `preload`")
    return skipped


def _describe(status: int) -> dict:
    if os.WIFSIGNALED(status):
        return {"exited": True, "signal": os.WTERMSIG(status)}
    return {"exited": True, "code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None}


def _spawn(control: socket.socket, config: dict, workdirs: dict[int, str]) -> int:
    msg, fds, _, _ = socket.recv_fds(control, 16, 1)
    if not fds:
        raise RuntimeError("spawn without a socket")
    session_fd = fds[0]
    try:
        workdir = tempfile.mkdtemp(prefix="submission-")
        pid = os.fork()
    except OSError:
        os.close(session_fd)
        raise
    if pid == 0:  # the child
        try:
            control.close()
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            _die_with_parent()
            sock = socket.socket(fileno=session_fd)
            from .child import serve
            serve(sock, config, workdir)
        finally:
            os._exit(70)
    os.close(session_fd)
    workdirs[pid] = workdir
    return pid


def _remove(path: str) -> None:
    """Delete what a child left, however deep or locked (see `cleanup`): never raises."""
    remove_tree(path)


class _Sweeper:
    """Under bubblewrap, /tmp and /dev/shm belong to this worker alone: whatever a child
    left in them (outside its own folder too) goes once no child is running."""

    PLACES = ("/tmp", "/dev/shm")

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.keep = {place: set(self._list(place)) for place in self.PLACES} if enabled else {}

    @staticmethod
    def _list(place: str) -> list[str]:
        try:
            return os.listdir(place)
        except OSError:
            return []

    def sweep(self) -> None:
        if not self.enabled:
            return
        for place in self.PLACES:
            for name in self._list(place):
                if name not in self.keep[place]:
                    _remove(os.path.join(place, name))


def _probe() -> dict:
    """The worker's own state, for tests: a TensorFlow op run here would hang every child."""
    info: dict = {"pid": os.getpid(), "framework": getattr(hooks.ACTIVE, "__name__", None),
                  **(hooks.call("state", default={}) or {})}
    try:
        info["threads"] = len(os.listdir("/proc/self/task"))
    except OSError:
        pass
    info["dumpable"] = _dumpable()
    return info


_PR_GET_DUMPABLE, _PR_SET_DUMPABLE = 3, 4


def _prctl(*args: int) -> int:
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(*[ctypes.c_ulong(a) for a in args], *[ctypes.c_ulong(0)] * (5 - len(args))))
    except Exception:  # noqa: BLE001
        return -1


def _dumpable() -> int:
    return _prctl(_PR_GET_DUMPABLE)


def _die_with_parent() -> None:
    """If the worker dies, its children die too, even where no pid namespace holds them."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except Exception:  # noqa: BLE001
        pass


def _reap(ended: dict[int, dict]) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        ended[pid] = _describe(status)


def _end(pid: int, ended: dict[int, dict], live: set[int], workdirs: dict[int, str],
         sweeper: _Sweeper) -> None:
    """Forget a child that has been reported on, and clean up after it."""
    live.discard(pid)
    ended.pop(pid, None)
    workdir = workdirs.pop(pid, None)
    if workdir:
        _remove(workdir)
    if not live:
        sweeper.sweep()


def _kill(pid: int, ended: dict[int, dict]) -> None:
    for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            target()
        except (ProcessLookupError, PermissionError):
            pass
    try:
        _, status = os.waitpid(pid, 0)
        ended[pid] = _describe(status)
    except ChildProcessError:
        pass


def main() -> None:
    # First of all: no child may open this process's memory through /proc/PID/mem.
    _prctl(_PR_SET_DUMPABLE, 0)
    control = socket.socket(fileno=int(os.environ["GRADER_CONTROL_FD"]))
    config = json.loads(os.environ.get("GRADER_CHILD_CONFIG", "{}"))
    try:
        info = _preload()
    except PreloadUnsafe as exc:
        sys.stderr.write(f"{exc}\n")
        sys.exit(3)
    sweeper = _Sweeper(os.environ.get("GRADER_PRIVATE_TMP") == "1")
    protocol.send_message(control, {"ready": True, "pid": os.getpid(), **info})
    ended: dict[int, dict] = {}
    live: set[int] = set()
    workdirs: dict[int, str] = {}
    while True:
        try:
            request, _ = protocol.recv_message(control)
        except (EOFError, OSError, protocol.ProtocolError):
            break
        _reap(ended)
        cmd = request.get("cmd")
        try:
            if cmd == "spawn":
                pid = _spawn(control, config, workdirs)
                live.add(pid)
                reply = {"pid": pid}
            elif cmd == "kill":
                pid = int(request["pid"])
                if pid in live and pid not in ended:  # a reaped pid may already belong to someone else
                    _kill(pid, ended)
                reply = {"pid": pid, **ended.get(pid, {"exited": True})}
            elif cmd == "status":
                pid = int(request["pid"])
                deadline = time.monotonic() + float(request.get("wait", 0))
                while pid in live and pid not in ended and time.monotonic() < deadline:
                    time.sleep(0.01)
                    _reap(ended)
                reply = {"pid": pid, **ended.get(pid, {"exited": pid not in live})}
            elif cmd == "probe":
                reply = _probe()
            else:
                reply = {"error": f"unknown command {cmd!r}"}
        except (OSError, RuntimeError, ValueError, KeyError) as exc:  # e.g. fork failed: say so, keep serving
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        if cmd in ("kill", "status") and reply.get("pid") in ended:
            _end_safely(reply["pid"], ended, live, workdirs, sweeper)
        protocol.send_message(control, reply)
    # The grading process went away: take every child with us.
    for pid in list(live):
        _kill(pid, ended)
        _end_safely(pid, ended, live, workdirs, sweeper)
    sys.exit(0)


def _end_safely(pid: int, ended: dict[int, dict], live: set[int], workdirs: dict[int, str],
                sweeper: _Sweeper) -> None:
    """No cleanup error ends the worker: every other submission depends on it."""
    try:
        _end(pid, ended, live, workdirs, sweeper)
    except Exception:  # noqa: BLE001 - what could not be removed stays; the worker serves on
        live.discard(pid)
        ended.pop(pid, None)
        workdirs.pop(pid, None)


if __name__ == "__main__":
    main()
