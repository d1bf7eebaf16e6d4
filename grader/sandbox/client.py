"""The trusted end of the sandbox: starts the worker inside the best isolation available,
forks sessions (children, see `session`) on request, and replaces a worker that died or
stopped answering.

Everything that arrives from the sandbox is decoded by `protocol` (JSON and arrays,
never pickle) and treated as a claim by the student, not as a fact about their grade.
"""
from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from . import protocol
from .hooks import MOUNTED_NAME, FrameworkSide
# The errors and the session live in modules of their own; importing them from here still works.
from .errors import (IsolationUnavailable, MissingFunction, ProbeError, ReplyRejected,  # noqa: F401
                     SandboxCrashed, SandboxError, SandboxTimeout, StudentCodeError, WorkerFailed)
from .session import CallResult, Session  # noqa: F401

SANDBOX_PACKAGE = Path(__file__).resolve().parent
WORKER_START_TIMEOUT = 120.0
DEFAULT_REPLY_BYTES = 128 * 1024 ** 2


# ---------------------------------------------------------------- isolation levels

@dataclass(frozen=True)
class Limits:
    call_timeout: float = 60.0  # wall-clock seconds per call (and for loading definitions)
    data_bytes: int = 2 * 1024 ** 3  # per child; a fresh child already holds about 260 MB
    cpu_seconds: int = 120  # per child, all calls together
    file_bytes: int = 16 * 1024 ** 2  # per file, printed output of one call included
    open_files: int = 256
    processes: int = 64  # threads included; only enforced where the worker is not root
    # What one call may send back. Sized from what assignments return (a ResNet50 with its
    # weights is 90 MiB), well under the wire's own cap: every byte of a reply is memory in
    # the grading process, once (arrays are views of the received buffer).
    max_reply_bytes: int = DEFAULT_REPLY_BYTES
    # Each child's private /tmp and /dev/shm (and the worker's under bubblewrap) live in
    # memory: cap them.
    tmp_bytes: int = 256 * 1024 ** 2
    shm_bytes: int = 16 * 1024 ** 2

    def child_config(self) -> dict:
        return {"data_bytes": self.data_bytes, "cpu_seconds": self.cpu_seconds,
                "file_bytes": self.file_bytes, "open_files": self.open_files,
                "processes": self.processes}


def _clean_env(framework: FrameworkSide | None = None) -> dict[str, str]:
    """The worker sees no secrets from the grader's environment: only what it needs (and
    what its framework reads at import, from the framework's side)."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp",
        "LANG": "C.UTF-8",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "Agg",
    }
    for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # machine quirks, see shared notes
        if key in os.environ:
            env[key] = os.environ[key]
    if framework is not None:
        env.update({str(k): str(v) for k, v in framework.env.items()})
    return env


VENV_IN_SANDBOX = "/opt/grader/venv"


# ---------------------------------------------------------------- matplotlib's font list

_FONTLIST_NAME = re.compile(r"fontlist-v[0-9.]{1,20}\.json")
# It travels as one environment entry (bubblewrap's --setenv, an argument), and Linux
# refuses to start a program with an argument over 128 KiB: a larger list is not kept.
_FONTLIST_MAX = 96 * 1024


def _font_list_file() -> Path:
    """Where the font list a bubblewrapped worker built is kept between runs: the user's
    cache folder, one file per Python environment (the sandbox sees every venv at the same
    path, but each has its own matplotlib and fonts)."""
    import hashlib
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.sha256(sys.prefix.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return cache / "grader" / f"sandbox-fontlist-{digest}.json"


def _kept_font_list() -> dict[str, str]:
    """The kept font list as the worker's environment entries, or nothing (no file yet, or
    one that is not what `_keep_font_list` writes: the worker then builds its own)."""
    try:
        path = _font_list_file()
        if path.stat().st_size > _FONTLIST_MAX + 4096:
            return {}
        kept = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RuntimeError):
        return {}
    if not (isinstance(kept, dict) and isinstance(kept.get("name"), str) and isinstance(kept.get("text"), str)
            and _FONTLIST_NAME.fullmatch(kept["name"]) and len(kept["text"]) <= _FONTLIST_MAX):
        return {}
    return {"GRADER_FONTLIST_NAME": kept["name"], "GRADER_FONTLIST": kept["text"]}


def _keep_font_list(built) -> None:
    """Keep the font list a worker built before any child ran (so before anything a student
    wrote could touch it), for the next worker; written whole or not at all."""
    if not (isinstance(built, dict) and isinstance(built.get("name"), str) and isinstance(built.get("text"), str)
            and _FONTLIST_NAME.fullmatch(built["name"]) and len(built["text"]) <= _FONTLIST_MAX):
        return
    try:
        path = _font_list_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".fontlist-", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"name": built["name"], "text": built["text"]}, f)
        os.replace(tmp, path)
    except (OSError, RuntimeError):
        pass


def _python_roots() -> list[str]:
    """The directories the Python environment needs: the venv and the interpreter it links to."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    exe = Path(sys.executable)
    roots.add(str(exe.resolve().parent.parent))
    return sorted(r for r in roots if r and os.path.isdir(r))


def _bwrap_command(python: str, limits: Limits = Limits(), framework: FrameworkSide | None = None) -> list[str]:
    # Two capabilities are kept, inside the sandbox's own user namespace: CAP_SYS_ADMIN, with
    # which each child mounts a /tmp of its own (private_tmp), and CAP_SETPCAP, with which
    # it then empties its bounding set: every capability is gone for good before any
    # student code runs. The worker runs no student code.
    cmd = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
           "--cap-add", "CAP_SYS_ADMIN", "--cap-add", "CAP_SETPCAP", "--clearenv", "--proc", "/proc"]
    # The worker is the sandbox's pid 1 (no bubblewrap reaper beside it): every process a
    # child could reach is then non-dumpable (the worker and its children), so no child can
    # write through another's /proc/PID/root into a /tmp it does not own.
    cmd += ["--as-pid-1"]
    # The sandbox's uid 0 is the host's uid 0 (bubblewrap run by root maps it so): without
    # this, owner-writable sysctls under /proc/sys would be writable, machine-wide.
    cmd += ["--ro-bind", "/proc/sys", "/proc/sys"]
    # And what container runtimes mask (sysrq-trigger, kallsyms, ...; see confine.py).
    # --ro-bind mounts nodev, so the /dev/null placed over a file cannot even be opened.
    from .confine import proc_masks
    masked_files, masked_dirs = proc_masks()
    for path in masked_files:
        cmd += ["--ro-bind", "/dev/null", path]
    for path in masked_dirs:
        cmd += ["--size", "4096", "--tmpfs", path, "--remount-ro", path]
    # A /dev of our own instead of bubblewrap's --dev, whose tmpfs has no size limit and is
    # writable: memory a child could fill without any rlimit noticing.
    cmd += ["--size", "65536", "--tmpfs", "/dev"]
    for node in ("null", "zero", "full", "random", "urandom"):
        if os.path.exists(f"/dev/{node}"):
            cmd += ["--dev-bind", f"/dev/{node}", f"/dev/{node}"]
    for i, name in enumerate(("stdin", "stdout", "stderr")):
        cmd += ["--symlink", f"/proc/self/fd/{i}", f"/dev/{name}"]
    cmd += ["--symlink", "/proc/self/fd", "/dev/fd",
            "--size", str(limits.shm_bytes), "--tmpfs", "/dev/shm",
            "--size", str(limits.tmp_bytes), "--tmpfs", "/tmp"]
    for path in ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin"):
        if os.path.islink(path):
            cmd += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            cmd += ["--ro-bind", path, path]
    for path in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime",
                 "/etc/passwd", "/etc/group", "/sys/devices/system/cpu", "/sys/fs/cgroup"):
        if os.path.exists(path):
            cmd += ["--ro-bind", path, path]
    venv = sys.prefix if sys.prefix != sys.base_prefix else None
    for root in _python_roots():
        if root != venv:
            cmd += ["--ro-bind", root, root]
    if venv is not None:
        # The venv at a fixed path, not where it lives: a checkout under /tmp would otherwise
        # put mount points inside the private /tmp, leaving directories there that outlive
        # the sweep between submissions (a channel from one submission to the next).
        cmd += ["--ro-bind", venv, VENV_IN_SANDBOX]
        python = str(Path(VENV_IN_SANDBOX) / Path(python).relative_to(venv))
    # The sandbox package alone, under its own name: no grader, references or tests.
    cmd += ["--ro-bind", str(SANDBOX_PACKAGE), "/opt/grader/grader_sandbox"]
    # The framework's sandbox-side package (hooks) beside it, alone, under a name of its own.
    if framework is not None:
        cmd += ["--ro-bind", str(framework.folder), f"/opt/grader/{MOUNTED_NAME}"]
    # bubblewrap builds the root and /dev on unlimited tmpfs: once every mount point exists,
    # make both read-only, so /tmp and /dev/shm (size-limited) are the only writable places.
    cmd += ["--remount-ro", "/dev", "--remount-ro", "/",
            "--setenv", "PYTHONPATH", "/opt/grader", "--chdir", "/tmp"]
    return cmd + [python, "-s", "-m", "grader_sandbox.worker"]


_probe_cache: dict[str, bool] = {}


def _works(cmd: list[str]) -> bool:
    key = f"{os.environ.get('PATH', '')}\0{' '.join(cmd)}"  # what runs depends on PATH
    if key not in _probe_cache:
        try:
            _probe_cache[key] = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                               stderr=subprocess.DEVNULL, timeout=20).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            _probe_cache[key] = False
    return _probe_cache[key]


# What `--sandbox` accepts everywhere: the words choose_isolation() understands.
ISOLATION_CHOICES = ("auto", "strict", "namespace", "process")


def choose_isolation(requested: str = "auto") -> str:
    """The strongest level that works here: "full" (bubblewrap), "namespace" (no network),
    or "process" (a separate process with limits and seccomp only).

    `requested` is "auto", "strict" (full or refuse), or a level name to force.
    """
    full_ok = shutil.which("bwrap") is not None and _works(
        ["bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "true"])
    if requested in ("strict", "full"):
        if not full_ok:
            raise IsolationUnavailable(
                "full isolation (bubblewrap) is not available on this machine; install the "
                "'bubblewrap' package or grade without --sandbox strict")
        return "full"
    if requested == "process":
        return "process"
    if requested == "auto" and full_ok:
        return "full"
    if shutil.which("unshare") and _works(["unshare", "-n", "true"]):
        return "namespace"
    if requested == "namespace":
        raise IsolationUnavailable("network namespaces (unshare -n) are not available here")
    return "process"


def worker_command(level: str, limits: Limits = Limits(),
                   framework: FrameworkSide | None = None) -> tuple[list[str], dict[str, str] | None]:
    python = sys.executable
    if level == "full":
        return _bwrap_command(python, limits, framework), None
    paths = [str(SANDBOX_PACKAGE.parent)]
    if framework is not None and "." not in framework.package and framework.folder.name == framework.package:
        paths.append(str(framework.folder.parent))  # a framework package outside the grader, by its folder
    extra = {"PYTHONPATH": os.pathsep.join(paths)}
    cmd = [python, "-s", "-m", "grader.sandbox.worker"]
    if level == "namespace":
        cmd = ["unshare", "-n", "--"] + cmd
    return cmd, extra


# ---------------------------------------------------------------- the worker

class Worker:
    """One preloaded worker process; thread-safe for one caller at a time per session."""

    def __init__(self, *, framework: FrameworkSide | None = None, isolation: str = "auto", limits: Limits = Limits(),
                 seccomp: bool = True, control_timeout: float = 10.0, preload: Sequence[str] = ()):
        # The framework package the worker preloads and its children use (`hooks`), from
        # `grader.frameworks.sandbox_side`; None: plain Python.
        self.framework = framework
        self._encoder = None  # that package, imported here to encode the arguments sent in
        self.preload = tuple(preload)  # modules the worker imports before forking (spec key `preload`)
        self.requested_isolation = isolation
        self.limits = limits
        self.seccomp = seccomp
        # A worker that does not answer a control request within this is wedged, and replaced.
        self.control_timeout = control_timeout
        self.level = choose_isolation(isolation)
        self.proc: subprocess.Popen | None = None
        self.control: socket.socket | None = None
        self.info: dict = {}
        self._lock = threading.Lock()
        self.restarts = 0

    # -- lifecycle
    def start(self) -> "Worker":
        return self.launch().wait_ready()

    def launch(self) -> "Worker":
        """Start the worker without waiting for its ~3 s import (overlap it with your own)."""
        ours, theirs = socket.socketpair()
        cmd, extra = worker_command(self.level, self.limits, self.framework)
        env = _clean_env(self.framework)
        child_config = {"limits": self.limits.child_config(), "seccomp": self.seccomp,
                        "max_reply_bytes": self.limits.max_reply_bytes,
                        "tmp_bytes": self.limits.tmp_bytes, "shm_bytes": self.limits.shm_bytes}
        font_file = None
        if self.level == "full":
            env["GRADER_PRIVATE_TMP"] = "1"  # its /tmp is its own: the worker may sweep it
            kept = _kept_font_list()
            if kept:  # through a file descriptor: on the command line it was 44 KB in every `ps`
                font_file = tempfile.TemporaryFile()
                font_file.write(kept.pop("GRADER_FONTLIST").encode("utf-8"))
                font_file.seek(0)
                env.update(kept, GRADER_FONTLIST_FD=str(font_file.fileno()))
        env["GRADER_CONTROL_FD"] = str(theirs.fileno())
        env["GRADER_CHILD_CONFIG"] = json.dumps(child_config)
        env["GRADER_PRELOAD"] = json.dumps(list(self.preload))
        if self.framework is not None:
            mounted = self.level == "full"  # under bubblewrap the package is mounted alone
            env["GRADER_FRAMEWORK_PACKAGE"] = MOUNTED_NAME if mounted else self.framework.package
            env["GRADER_FRAMEWORK_OPTIONS"] = json.dumps(self.framework.options)
        if self.level == "full":
            # --clearenv drops the environment: hand each variable over explicitly.
            pre = cmd[: cmd.index("--chdir")]
            post = cmd[cmd.index("--chdir"):]
            for k, v in env.items():
                pre += ["--setenv", k, v]
            cmd = pre + post
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        else:
            env.update(extra or {})
        self._stderr = tempfile.TemporaryFile()
        fds = (theirs.fileno(),) + ((font_file.fileno(),) if font_file is not None else ())
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self._stderr, env=env, pass_fds=fds, start_new_session=True)
        theirs.close()
        if font_file is not None:
            font_file.close()
        self.control = ours
        return self

    def wait_ready(self) -> "Worker":
        assert self.control is not None, "launch() first"
        self.control.settimeout(WORKER_START_TIMEOUT)
        try:
            header, _ = protocol.recv_message(self.control)
        except (EOFError, OSError, protocol.ProtocolError) as exc:
            self._stderr.seek(0)
            tail = self._stderr.read()[-2000:].decode("utf-8", "replace")
            self.stop()
            raise WorkerFailed(f"the sandbox worker ({self.level}) did not start: {exc}\n{tail}") from None
        _keep_font_list(header.pop("fontlist", None))
        self.info = header
        return self

    def answered(self) -> bool:
        """Whether the launched worker has finished starting (ready, or failed and gone),
        without waiting and without reading its answer: `wait_ready` then returns at once."""
        if self.info:
            return True
        if self.control is None:
            return False
        readable, _, _ = select.select([self.control], [], [], 0)
        return bool(readable)

    def stop(self, grace: float = 3.0) -> None:
        """Closing the control socket asks the worker to kill its children and exit, after
        which bubblewrap tears its namespaces down; only a worker that does not manage that
        within `grace` seconds is killed outright."""
        if self.control is not None:
            try:
                self.control.close()
            except OSError:
                pass
            self.control = None
        if self.proc is not None:
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
            self.proc = None

    def restart(self) -> None:
        self.stop(grace=0.5)  # it is dead or wedged already: no reason to wait long
        self.restarts += 1
        self.start()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None and self.control is not None

    def __enter__(self) -> "Worker":
        return self.start() if not self.alive() else self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- control requests
    def _request(self, message: dict, fds: Sequence[int] = (), timeout: float | None = None) -> dict:
        with self._lock:
            if not self.alive():
                raise SandboxCrashed("the sandbox worker is not running")
            assert self.control is not None
            self.control.settimeout(timeout or self.control_timeout)
            protocol.send_message(self.control, message)
            if fds:
                socket.send_fds(self.control, [b"F"], list(fds))
            reply, _ = protocol.recv_message(self.control)
            return reply

    def session(self, chunks: Sequence[dict], *, support: dict[str, str] | None = None, seed: int = 0,
                timeout: float | None = None, future: Sequence[str] = ()) -> "Session":
        """Fork a fresh child for one submission and load its definitions into it."""
        if not self.alive():
            self.restart()
        ours, theirs = socket.socketpair()
        try:
            try:
                reply = self._request({"cmd": "spawn"}, fds=[theirs.fileno()])
            except (EOFError, OSError, protocol.ProtocolError, SandboxCrashed):
                self.restart()  # a dead or wedged worker is replaced, once
                try:
                    reply = self._request({"cmd": "spawn"}, fds=[theirs.fileno()])
                except (EOFError, OSError, protocol.ProtocolError, SandboxCrashed) as exc:
                    raise WorkerFailed(f"the sandbox worker failed twice in a row: {exc}") from None
        finally:
            theirs.close()
        if not isinstance(reply.get("pid"), int):
            ours.close()
            raise WorkerFailed(f"the sandbox worker could not start a process: {reply.get('error', reply)}")
        session = Session(self, ours, reply["pid"])
        session.load(chunks, support or {}, seed, timeout or self.limits.call_timeout, list(future))
        return session

    def encoder(self):
        """The framework package, in this process: it writes the framework's values (tensors)
        sent as arguments as the children read them (`protocol.encode_value(side=...)`)."""
        if self._encoder is None and self.framework is not None:
            self._encoder = self.framework.module()
        return self._encoder

    def probe(self) -> dict:
        """The worker's own state (TensorFlow context, threads): for tests and diagnostics."""
        return self._request({"cmd": "probe"})

    def kill(self, pid: int) -> dict:
        try:
            return self._request({"cmd": "kill", "pid": pid})
        except (EOFError, OSError, protocol.ProtocolError, SandboxCrashed):
            # The worker itself is wedged or gone (a child may have attacked it): replace it.
            self.restart()
            return {"exited": True, "worker_restarted": True}

    def status(self, pid: int, wait: float = 0.5) -> dict:
        try:
            return self._request({"cmd": "status", "pid": pid, "wait": wait}, timeout=wait + self.control_timeout)
        except (EOFError, OSError, protocol.ProtocolError, SandboxCrashed):
            self.restart()
            return {"exited": True, "worker_restarted": True}
