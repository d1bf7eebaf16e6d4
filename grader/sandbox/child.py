"""The untrusted side of one submission: runs inside a child forked by the worker.

The child confines itself (limits, seccomp) before it touches student code, runs the
selected definitions, then answers calls from the grading process until told to stop.
Nothing it says is trusted: the grading process re-checks every value it receives.
"""
from __future__ import annotations

import linecache
import os
import random
import resource
import signal
import sys
import tempfile
import time
import traceback
from typing import Any

from . import protocol
from .confine import apply_limits, apply_seccomp

OUTPUT_CAP = 8 * 1024  # bytes of the student's printed output sent back per call


class _Capture:
    """Send the student's prints to a private file so they cannot reach the grader's output."""

    def __init__(self, directory: str):
        self.path = os.path.join(directory, ".output")
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        self.offset = 0

    def take(self) -> str:
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            size = os.path.getsize(self.path)
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read(OUTPUT_CAP + 1)
        except OSError:
            return ""
        self.offset = size
        text = data[:OUTPUT_CAP].decode("utf-8", errors="replace")
        if len(data) > OUTPUT_CAP:
            text += f"\n[... output cut at {OUTPUT_CAP} bytes]"
        return text


def _seed(seed: int) -> None:
    random.seed(seed)
    try:
        import numpy as np
        np.random.seed(seed % (2 ** 32))
    except ImportError:
        pass
    try:
        import keras
        keras.utils.set_random_seed(seed)
    except Exception:  # noqa: BLE001 - seeding is best effort (tf_keras exposes it elsewhere)
        try:
            import tensorflow as tf
            tf.random.set_seed(seed)
        except Exception:  # noqa: BLE001
            pass


def _register_sources(chunks: list[dict]) -> None:
    """Let tracebacks show the student's own lines, at their line numbers in the cell."""
    by_label: dict[str, dict[int, str]] = {}
    for chunk in chunks:
        lines = by_label.setdefault(chunk["label"], {})
        for i, text in enumerate(chunk["source"].splitlines(), start=int(chunk["line"])):
            lines[i] = text + "\n"
    for label, lines in by_label.items():
        body = [lines.get(i, "\n") for i in range(1, max(lines, default=0) + 1)]
        linecache.cache[label] = (sum(map(len, body)), None, body, label)


def _student_traceback(exc: BaseException, labels: set[str]) -> str:
    """Only the student's frames: the grader's own machinery is noise to them."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename in labels]
    lines = traceback.format_list(frames) if frames else []
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines).rstrip()


def _error(exc: BaseException, labels: set[str]) -> dict[str, Any]:
    return {"type": type(exc).__name__, "message": str(exc)[:2000],
            "traceback": _student_traceback(exc, labels)[:8000],
            "not_implemented": isinstance(exc, NotImplementedError)}


def _future_flags(names) -> int:
    """A notebook's `from __future__ import x` applies to every later cell, as in IPython."""
    import __future__
    flags = 0
    for name in names or ():
        feature = getattr(__future__, str(name), None)
        flags |= getattr(feature, "compiler_flag", 0)
    return flags


def _load(request: dict, namespace: dict, labels: set[str]) -> list[dict]:
    errors = []
    flags = _future_flags(request.get("future"))
    for chunk in request.get("chunks", []):
        code_text = "\n" * (int(chunk["line"]) - 1) + chunk["source"]
        try:
            exec(compile(code_text, chunk["label"], "exec", flags=flags, dont_inherit=True), namespace)  # noqa: S102 - this IS the sandbox
        except BaseException as exc:  # noqa: BLE001 - SystemExit too: a student's exit() must not end grading
            errors.append({"label": chunk["label"], "kind": chunk.get("kind", ""),
                           "line": chunk["line"], **_error(exc, labels)})
    return errors


def _call(request: dict, blob: bytes, namespace: dict, labels: set[str]) -> tuple[dict, bytes]:
    name = request["name"]
    func = namespace.get(name)
    if not callable(func):
        return {"ok": False, "missing": True}, b""
    args, kwargs = protocol.decode_value(request.get("args"), blob)
    _seed(int(request.get("seed", 0)))
    started = time.process_time()
    try:
        value = func(*args, **kwargs)
    except BaseException as exc:  # noqa: BLE001 - report any failure of the student's code as data
        return {"ok": False, "error": _error(exc, labels)}, b""
    payload = {"value": value, "args_after": list(args) if request.get("return_args") else None}
    try:
        tree, out_blob = protocol.encode_value(payload)
    except BaseException as exc:  # noqa: BLE001 - e.g. a model whose config cannot be serialized
        return {"ok": False, "error": {"type": type(exc).__name__,
                                       "message": f"the returned value could not be sent back: {exc}"[:2000],
                                       "traceback": "", "not_implemented": False, "encoding": True}}, b""
    return {"ok": True, "value": tree, "cpu": time.process_time() - started}, out_blob


def serve(sock, config: dict) -> None:
    """Run one submission. Never returns: the child leaves with os._exit."""
    os.setsid()  # own process group: the whole group is killed at a timeout
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the file limit fails instead of killing
    workdir = tempfile.mkdtemp(prefix="submission-")
    os.chdir(workdir)
    capture = _Capture(workdir)
    apply_limits(config.get("limits", {}))
    header, _ = protocol.recv_message(sock)
    for filename, text in (header.get("support") or {}).items():
        with open(os.path.join(workdir, os.path.basename(filename)), "w", encoding="utf-8") as f:
            f.write(text)
    sys.path.insert(0, workdir)
    chunks = header.get("chunks", [])
    _register_sources(chunks)
    labels = {c["label"] for c in chunks}
    seccomp = apply_seccomp() if config.get("seccomp", True) else "off"
    _seed(int(header.get("seed", 0)))
    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": __builtins__}
    errors = _load(header, namespace, labels)
    defined = sorted(k for k, v in namespace.items() if callable(v) and not k.startswith("__"))
    protocol.send_message(sock, {"loaded": True, "errors": errors, "defined": defined,
                                 "output": capture.take(), "seccomp": seccomp})
    while True:
        try:
            request, blob = protocol.recv_message(sock)
        except (EOFError, OSError, protocol.ProtocolError):
            break
        if request.get("cmd") != "call":
            break
        reply, out_blob = _call(request, blob, namespace, labels)
        reply["output"] = capture.take()
        try:
            protocol.send_message(sock, reply, out_blob)
        except OSError:
            break
    os._exit(0)
