"""The sandbox worker: imports TensorFlow once, then forks one child per submission.

Importing TensorFlow costs about 3 s and 600 MB; building a student's model costs about
0.1 s. So the worker pays the import once and each submission gets a fresh fork, which
shares the imported modules copy-on-write and starts in milliseconds.

The worker must never run a TensorFlow op itself: a child forked after any op hangs in
its first op. It runs no student code either; children do, after confining themselves.

Control protocol (over the socket given as fd in GRADER_CONTROL_FD, framed by
`protocol`): the grading process sends {"cmd": "spawn"} with a socket passed as
ancillary data; the worker forks a child that serves that socket and answers
{"pid": PID}. {"cmd": "kill", "pid": PID} kills the child's process group;
{"cmd": "status", "pid": PID} reports how it ended.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time

from . import protocol


def _preload() -> dict:
    started = time.perf_counter()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy  # noqa: F401
    import tensorflow as tf  # noqa: F401
    if os.environ.get("TF_USE_LEGACY_KERAS") == "1":
        import tf_keras as keras  # noqa: F401
    else:
        import keras  # noqa: F401
        import keras.layers  # noqa: F401
        import keras.models  # noqa: F401
    # Deliberately nothing that creates a tensor here: see the module docstring.
    return {"import_seconds": round(time.perf_counter() - started, 3), "keras": keras.__version__,
            "tensorflow": tf.__version__}


def _describe(status: int) -> dict:
    if os.WIFSIGNALED(status):
        return {"exited": True, "signal": os.WTERMSIG(status)}
    return {"exited": True, "code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None}


def _spawn(control: socket.socket, config: dict) -> int:
    msg, fds, _, _ = socket.recv_fds(control, 16, 1)
    if not fds:
        raise RuntimeError("spawn without a socket")
    session_fd = fds[0]
    pid = os.fork()
    if pid == 0:  # the child
        try:
            control.close()
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            _die_with_parent()
            sock = socket.socket(fileno=session_fd)
            from .child import serve
            serve(sock, config)
        finally:
            os._exit(70)
    os.close(session_fd)
    return pid


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


def main() -> None:
    control = socket.socket(fileno=int(os.environ["GRADER_CONTROL_FD"]))
    config = json.loads(os.environ.get("GRADER_CHILD_CONFIG", "{}"))
    info = _preload()
    protocol.send_message(control, {"ready": True, "pid": os.getpid(), **info})
    ended: dict[int, dict] = {}
    live: set[int] = set()
    while True:
        try:
            request, _ = protocol.recv_message(control)
        except (EOFError, OSError, protocol.ProtocolError):
            break
        _reap(ended)
        cmd = request.get("cmd")
        if cmd == "spawn":
            pid = _spawn(control, config)
            live.add(pid)
            reply = {"pid": pid}
        elif cmd == "kill":
            pid = int(request["pid"])
            if pid in live:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                try:
                    _, status = os.waitpid(pid, 0)
                    ended[pid] = _describe(status)
                except ChildProcessError:
                    pass
            reply = {"pid": pid, **ended.get(pid, {"exited": True})}
        elif cmd == "status":
            pid = int(request["pid"])
            deadline = time.monotonic() + float(request.get("wait", 0))
            while pid in live and pid not in ended and time.monotonic() < deadline:
                time.sleep(0.01)
                _reap(ended)
            reply = {"pid": pid, **ended.get(pid, {"exited": pid not in live})}
        else:
            reply = {"error": f"unknown command {cmd!r}"}
        if cmd in ("kill", "status") and reply.get("pid") in ended:
            live.discard(reply["pid"])
            ended.pop(reply["pid"], None)
        protocol.send_message(control, reply)
    # The grading process went away: take every child with us.
    for pid in live:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    sys.exit(0)


if __name__ == "__main__":
    main()
