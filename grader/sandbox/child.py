"""The untrusted side of one submission: runs inside a child forked by the worker.

The child confines itself (limits, seccomp) before it touches student code, runs the
selected definitions, then answers calls from the grading process until told to stop.
Nothing it says is trusted: the grading process re-checks every value it receives.
"""
from __future__ import annotations

import errno
import linecache
import os
import random
import signal
import sys
import tempfile
import time
import traceback
import types
from typing import Any

from . import hooks, landlock, pristine, private_tmp, protocol
from .confine import DEFAULT_LIMITS, apply_limits, apply_seccomp, drop_privileges, shield_sysctls

try:
    # numpy 2 imports numpy.random on first use: ~12 ms of every child's seeding, paid once
    # here instead, in the worker that imports this module before it forks.
    import numpy.random  # noqa: F401
except ImportError:
    pass

OUTPUT_CAP = 8 * 1024  # bytes of the student's printed output sent back per call


class _Capture:
    """Send the student's prints to a private file so they cannot reach the grader's output.

    The file is opened in append mode and emptied after every call, so the file-size limit
    applies to one call's output, and reads go through descriptors kept here: whatever the
    student does to the path (a symlink, a FIFO) cannot make the child read elsewhere.
    """

    def __init__(self, directory: str):
        self.path = os.path.join(directory, ".output")
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        self.read_fd = os.open(self.path, os.O_RDONLY)
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(self.fd, 1)
        os.dup2(self.fd, 2)

    def take(self) -> str:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - a replaced or broken stream is the student's
                pass
        try:
            data = os.pread(self.read_fd, OUTPUT_CAP + 1, 0)
            os.ftruncate(self.fd, 0)
        except OSError:
            return ""
        text = data[:OUTPUT_CAP].decode("utf-8", errors="replace")
        if len(data) > OUTPUT_CAP:
            text += f"\n[... output cut at {OUTPUT_CAP} bytes]"
        return text


def _seed(seed: int) -> None:
    """Seed whatever the student's code can draw from: Python's and NumPy's generators
    here, the framework's own in its package (`hooks`)."""
    random.seed(seed)
    try:
        import numpy as np
        np.random.seed(seed % (2 ** 32))
    except ImportError:
        pass
    hooks.call("seed", seed)


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
    message = str(exc)[:2000]
    note = _limit_note(exc)
    if note:
        message = f"{message} ({note})" if message else note
    error = {"type": type(exc).__name__, "message": message,
             "traceback": _student_traceback(exc, labels)[:8000],
             "not_implemented": isinstance(exc, NotImplementedError), "limit": bool(note)}
    inner = _innermost_student_frame(exc, labels)
    if inner is not None:  # where the student should look (a probe's own frames never count)
        error.update({"function": inner.name[:200], "where": inner.filename[:200], "line": inner.lineno})
    return error


def _innermost_student_frame(exc: BaseException, labels: set[str]):
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename in labels]
    return frames[-1] if frames else None


# compile() filename of the instructor's probes: never one of the student's labels, never
# registered in linecache, so no traceback can show a probe's source.
PROBES_LABEL = "<grader probes>"


def _load_probes(request: dict, namespace: dict, probes: dict, labels: set[str],
                 before: pristine.Snapshot) -> dict:
    """Run the instructor's probe code beside the student's, in a namespace of its own.

    The probe namespace starts as a copy of the student's (so `identity_block` is the
    student's function), and the probes' own names are never written back: a student name
    cannot be shadowed by a probe, and student code cannot reach a probe by name. The
    probes are compiled and loaded with the interpreter as it was before the student's
    code ran (`pristine`), keep the original builtins, and their source is dropped once
    compiled: nothing the student's definitions did can read them or stop them loading.
    """
    source = str(request.pop("source", ""))
    failure: BaseException | None = None
    with before.restored():
        probe_ns = dict(namespace)
        probe_ns["__name__"] = "__grader_probes__"
        probe_ns["__builtins__"] = pristine.builtins_copy()
        try:
            code = pristine.compile_(source, PROBES_LABEL, "exec", dont_inherit=True)
            del source
            pristine.exec_(code, probe_ns)  # noqa: S102
        except BaseException as exc:  # noqa: BLE001 - reported as data, below
            failure = exc
        else:
            found = {key: value for key, value in probe_ns.items()
                     if not key.startswith("_") and type(value) is types.FunctionType
                     and namespace.get(key) is not value and value.__code__.co_filename == PROBES_LABEL}
            probes.clear()
            probes.update(found)
            return {"ok": True, "probes": sorted(found)}
    return _probe_failure(failure, labels, before)


def _probe_failure(exc: BaseException, labels: set[str], before: pristine.Snapshot) -> dict:
    """The probes did not load. The student's doing when their own code raised it (a
    function of theirs the probes' loading called) or when their definitions changed
    what the grader relies on; otherwise the instructor's error."""
    changed = before.changes()
    if _innermost_student_frame(exc, labels) is not None or changed:
        return {"ok": False, "error": _error(exc, labels), "student": True, "changed": changed[:20]}
    return {"ok": False, "error": {"type": type(exc).__name__, "message": str(exc)[:2000]}}


def _missing_in_probe(exc: BaseException) -> str | None:
    """The name a probe looked up and the student never defined (a NameError raised by
    the probe's own code, not inside the student's function)."""
    if not isinstance(exc, NameError):
        return None
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames or frames[-1].filename != PROBES_LABEL:
        return None
    return str(getattr(exc, "name", None) or "")[:200] or None


_LIMITS: dict[str, Any] = {}


def _mib(n: Any) -> str:
    return f"{int(n) / 2 ** 20:g} MiB"


def _limit_note(exc: BaseException) -> str:
    """Say which rule of the sandbox stopped the code, in the student's terms."""
    if isinstance(exc, MemoryError):
        return f"stopped by the grading sandbox's memory limit of {_mib(_LIMITS.get('data_bytes', 0))}"
    if not isinstance(exc, OSError):
        return ""
    if exc.errno == errno.EFBIG:
        return (f"stopped by the grading sandbox's file-size limit of {_mib(_LIMITS.get('file_bytes', 0))}: "
                f"too much printed output, or too large a file")
    if exc.errno == errno.EMFILE:
        return f"stopped by the grading sandbox's limit of {_LIMITS.get('open_files')} open files"
    if exc.errno == errno.EROFS:
        return "the grading sandbox lets your code write only in its own temporary folder"
    if exc.errno in (errno.EPERM, errno.ENOSYS):
        return ("refused by the grading sandbox: new processes, programs, network connections, "
                "shared memory and signals to other processes are not allowed")
    if exc.errno in (errno.ENETUNREACH, errno.ENETDOWN):
        return "the grading sandbox has no network"
    return ""


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
            pristine.exec_(pristine.compile_(code_text, chunk["label"], "exec", flags=flags, dont_inherit=True),  # noqa: S102
                           namespace)  # this IS the sandbox; the originals, whatever an earlier cell replaced
        except BaseException as exc:  # noqa: BLE001 - SystemExit too: a student's exit() must not end grading
            errors.append({"label": chunk["label"], "kind": chunk.get("kind", ""),
                           "line": chunk["line"], **_error(exc, labels)})
    return errors


def _call(request: dict, blob: bytes, namespace: dict, labels: set[str], max_reply: int,
          probes: dict | None = None) -> tuple[dict, bytes]:
    name = request["name"]
    is_probe = bool(request.get("probe"))
    func = (probes or {}).get(name) if is_probe else namespace.get(name)
    if not callable(func):
        return {"ok": False, "missing": True, "probe_missing": is_probe}, b""
    args, kwargs = protocol.decode_value(request.get("args"), blob)
    _seed(int(request.get("seed", 0)))
    weights = request.get("weights", True) is not False
    started = time.process_time()
    try:
        # A model whose weights stay here may be built without drawing them until something
        # reads them (the framework's `building`): the same values if read.
        with hooks.building(weights):
            value = func(*args, **kwargs)
    except BaseException as exc:  # noqa: BLE001 - report any failure of the student's code as data
        absent = _missing_in_probe(exc) if is_probe else None
        if absent:
            return {"ok": False, "missing": True, "name": absent}, b""
        return {"ok": False, "error": _error(exc, labels)}, b""
    payload = {"value": value, "args_after": list(args) if request.get("return_args") else None}
    try:
        tree, out_blob = protocol.encode_value(payload, limit=max_reply, weights=weights)
    except BaseException as exc:  # noqa: BLE001 - e.g. a model whose config cannot be serialized
        return _unsendable(exc), b""
    return {"ok": True, "value": tree, "cpu": time.process_time() - started}, out_blob


def _unsendable(exc: BaseException) -> dict:
    return {"ok": False, "error": {"type": type(exc).__name__,
                                   "message": f"the returned value could not be sent back: {exc}"[:2000],
                                   "traceback": "", "not_implemented": False, "encoding": True}}


def _close_inherited(keep: int) -> None:
    """Nothing the worker had open is the student's business (its log, other sessions)."""
    os.closerange(3, keep)
    os.closerange(keep + 1, 1 << 16)


def serve(sock, config: dict, workdir: str | None = None) -> None:
    """Run one submission. Never returns: the child leaves with os._exit."""
    os.setsid()  # own process group: the whole group is killed at a timeout
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the file limit fails instead of killing
    _close_inherited(sock.fileno())
    shield_sysctls()  # needs the capabilities dropped below; a no-op under bubblewrap
    # A /tmp of this child's own (see private_tmp): the folder the worker made is hidden
    # under it, so the same path is made again inside, where nothing else can see it.
    tmp = private_tmp.enter(int(config.get("tmp_bytes") or 256 * 1024 ** 2),
                            int(config.get("shm_bytes") or 16 * 1024 ** 2))
    workdir = workdir or tempfile.mkdtemp(prefix="submission-")
    os.makedirs(workdir, exist_ok=True)
    os.chdir(workdir)
    capture = _Capture(workdir)
    limits = {**DEFAULT_LIMITS, **(config.get("limits") or {})}
    _LIMITS.update(limits)
    apply_limits(limits)
    max_reply = int(config.get("max_reply_bytes") or protocol.MAX_BLOB)
    header, _ = protocol.recv_message(sock)
    for filename, text in (header.get("support") or {}).items():
        with open(os.path.join(workdir, os.path.basename(filename)), "w", encoding="utf-8") as f:
            f.write(text)
    sys.path.insert(0, workdir)
    chunks = header.get("chunks", [])
    _register_sources(chunks)
    labels = {c["label"] for c in chunks}
    hooks.call("watch", labels)  # the framework notes where each layer is created, for the feedback
    privileges = drop_privileges()
    if not tmp.startswith("shared"):  # its own /tmp and /dev/shm: the only places it may write (landlock)
        writes = landlock.confine_writes(("/tmp",) if "/dev/shm" in tmp else ("/tmp", "/dev/shm"))
        if writes != "on":
            why = f"writes through other processes' /proc/PID/root not refused (Landlock {writes})"
            tmp = f"private, but {why}" if tmp == "ok" else f"{tmp}; {why}"
    seccomp = apply_seccomp() if config.get("seccomp", True) else "off"
    _seed(int(header.get("seed", 0)))
    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": __builtins__}
    hooks.call("before_definitions")  # e.g. Keras 2 era code keeps its Keras 2 semantics
    before = pristine.Snapshot.now()  # what the probes will be loaded with (see pristine)
    errors = _load(header, namespace, labels)
    defined = sorted(k for k, v in namespace.items() if callable(v) and not k.startswith("__"))
    _send(sock, {"id": "load", "loaded": True, "errors": errors, "defined": defined,
                 "output": capture.take(), "seccomp": seccomp, "privileges": privileges, "tmp": tmp})
    hooks.call("after_definitions")  # e.g. TensorFlow's runtime warmed while the tests are set up
    probes: dict[str, Any] = {}
    while True:
        try:
            request, blob = protocol.recv_message(sock)
        except (EOFError, OSError, protocol.ProtocolError):
            break
        if request.get("cmd") == "probes":
            reply, out_blob = _load_probes(request, namespace, probes, labels, before), b""
        elif request.get("cmd") == "call":
            reply, out_blob = _call(request, blob, namespace, labels, max_reply, probes)
        else:
            break
        reply["id"] = request.get("id")
        reply["output"] = capture.take()
        try:
            _send(sock, reply, out_blob)
        except OSError:
            break
    os._exit(0)


def _send(sock, reply: dict, blob: bytes = b"") -> None:
    try:
        protocol.send_message(sock, reply, blob, max_header=protocol.MAX_HEADER)
    except protocol.MessageTooLarge as exc:  # e.g. a list of ten million numbers
        error = _unsendable(exc)
        error["error"]["message"] = ("the returned value could not be sent back: it is too large "
                                     f"({exc})")[:2000]
        protocol.send_message(sock, {**error, "id": reply.get("id"), "output": reply.get("output", "")})
    except (TypeError, ValueError) as exc:  # something json cannot write, however it got there
        protocol.send_message(sock, {**_unsendable(exc), "id": reply.get("id"), "output": ""})
