"""One child of the sandbox, seen from the grading process: the definitions it loaded and
the calls it answers, each bounded by a wall-clock limit.

Everything it receives is decoded by `protocol` (JSON and arrays, never pickle). A child
that times out, dies or answers out of step is killed and never used again; replacing it
is `channel`'s job.
"""
from __future__ import annotations

import signal
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import protocol
from .errors import (MissingFunction, ProbeBlocked, ProbeError, ReplyRejected, SandboxCrashed, SandboxTimeout,
                     StudentCodeError)


class ChildControl(Protocol):
    """What a session needs from whoever forked its child (the worker client): the limits
    the child runs under, and a way to stop it or ask how it ended. A protocol rather than
    the worker's class, so that the session does not import the client that imports it."""

    @property
    def limits(self) -> Any: ...

    def kill(self, pid: int) -> dict: ...

    def status(self, pid: int, wait: float = 0.5) -> dict: ...

    def encoder(self) -> Any: ...


@dataclass
class CallResult:
    value: Any
    args_after: list | None
    output: str
    seconds: float


@dataclass
class Session:
    """One submission's child: its definitions are loaded once, then any number of calls."""

    worker: ChildControl
    sock: socket.socket
    pid: int
    load_errors: list[dict] = field(default_factory=list)
    defined: list[str] = field(default_factory=list)
    load_output: str = ""
    seccomp: str = ""
    privileges: str = ""
    tmp: str = ""  # "ok": a /tmp of its own (private_tmp), else why it shares the worker's
    closed: bool = False
    dead_reason: str = ""
    calls: int = 0

    def load(self, chunks, support, seed, timeout, future=()) -> None:
        doing = "loading your notebook's definitions"
        try:
            protocol.send_message(self.sock, {"chunks": list(chunks), "support": support, "seed": seed,
                                              "future": list(future)})
        except OSError:
            self._died(doing)
        reply, _ = self._receive(timeout, doing)
        if reply.get("id") != "load" or reply.get("loaded") is not True:
            self._reject(doing, "it did not answer as expected")
        errors, defined = reply.get("errors"), reply.get("defined")
        self.load_errors = [e for e in errors if isinstance(e, dict)][:1000] if isinstance(errors, list) else []
        self.defined = [str(d) for d in defined][:10000] if isinstance(defined, list) else []
        self.load_output = str(reply.get("output", ""))[: 2 * 8192]
        self.seccomp = str(reply.get("seccomp", ""))[:200]
        self.privileges = str(reply.get("privileges", ""))[:200]
        self.tmp = str(reply.get("tmp", ""))[:300]

    def load_probes(self, source: str, timeout: float | None = None) -> list[str]:
        """Send the instructor's probes now, after the student's code has loaded and run, so
        nothing the student wrote can read them before they are used."""
        doing = "loading the assignment's probes"
        if self.dead_reason:
            raise SandboxCrashed(self.dead_reason)
        self.calls += 1
        call_id = self.calls
        try:
            protocol.send_message(self.sock, {"cmd": "probes", "source": source, "id": call_id})
        except OSError:
            self._died(doing)
        reply, _ = self._receive(timeout or self.worker.limits.call_timeout, doing)
        if reply.get("id") != call_id:
            self._reject(doing, "its reply did not match the request")
        if not reply.get("ok"):
            error = reply.get("error") if isinstance(reply.get("error"), dict) else {}
            if reply.get("student") is True:
                raise ProbeBlocked(_blocked_message(error, reply.get("changed")))
            raise ProbeError(f"the assignment's probes could not be loaded: "
                             f"{str(error.get('type', 'Exception'))[:100]}: {str(error.get('message', ''))[:500]}")
        names = reply.get("probes")
        return [str(n) for n in names][:10000] if isinstance(names, list) else []

    def call(self, name: str, *args, timeout: float | None = None, return_args: bool = False,
             seed: int = 0, probe: bool = False, weights: bool = True, **kwargs) -> CallResult:
        """Run `name` (a student's function, or with `probe=True` an instructor's probe);
        `weights=False` brings a returned model back as its configuration only."""
        if self.dead_reason:
            raise SandboxCrashed(self.dead_reason)
        try:
            tree, blob = protocol.encode_value((list(args), kwargs), side=self.worker.encoder())
        except TypeError as exc:
            raise ValueError(f"cannot send these arguments to the sandbox: {exc}") from None
        started = time.perf_counter()
        self.calls += 1
        call_id = self.calls
        try:
            protocol.send_message(self.sock, {"cmd": "call", "name": name, "args": tree, "id": call_id,
                                              "return_args": return_args, "seed": seed, "probe": probe,
                                              "weights": weights}, blob)
        except OSError:
            self._died(f"calling `{name}`")
        reply, out_blob = self._receive(timeout or self.worker.limits.call_timeout, f"running `{name}`")
        if reply.get("id") != call_id:  # out of step: something other than the sandbox code wrote
            self._reject(f"running `{name}`", "its reply did not match the call")
        seconds = time.perf_counter() - started
        output = str(reply.get("output", ""))[: 2 * 8192]
        if reply.get("missing"):
            if probe and reply.get("probe_missing"):
                raise ProbeError(f"the assignment has no probe named `{name}`")
            absent = str(reply.get("name") or name)[:200] if probe else name
            raise MissingFunction(f"`{absent}` is not defined in your notebook")
        if not reply.get("ok"):
            error = reply.get("error") if isinstance(reply.get("error"), dict) else {}
            # Inside a probe, the student's function that raised is what they must fix: name
            # it (the innermost of their frames), never the instructor's probe.
            culprit = str(error.get("function") or name)[:200] if probe else name
            failure = StudentCodeError(culprit, error, output)
            failure.via_probe = probe
            raise failure
        try:
            payload = protocol.decode_value(reply.get("value"), out_blob, side=self.worker.encoder())
        except protocol.ProtocolError as exc:  # a child that sends malformed data is not trusted again
            self._reject(f"running `{name}`", f"what it returned could not be read back ({exc})")
        if not isinstance(payload, dict) or "value" not in payload:
            self._reject(f"running `{name}`", "what it returned could not be read back")
        after = payload.get("args_after")
        if return_args and not (isinstance(after, list) and len(after) == len(args)):
            # what a test unpacks (`train_after, test_after = call.args_after`) must be there
            self._reject(f"running `{name}`", "it did not send back the arguments as asked")
        return CallResult(payload["value"], after if return_args else None, output, seconds)

    def _receive(self, timeout: float, doing: str) -> tuple[dict, bytes]:
        self.sock.settimeout(timeout)
        try:
            return protocol.recv_message(self.sock, max_blob=self.worker.limits.max_reply_bytes)
        except socket.timeout:
            self.worker.kill(self.pid)
            self.dead_reason = (f"stopped after {timeout:g} s while {doing}: the time limit was reached "
                                f"(an infinite loop, or far too much work?)")
            self._close_socket()
            raise SandboxTimeout(self.dead_reason) from None
        except protocol.MessageTooLarge as exc:
            self.worker.kill(self.pid)
            self.dead_reason = f"stopped while {doing}: the returned data was too large ({exc})"
            self._close_socket()
            raise ReplyRejected(self.dead_reason) from None
        except MemoryError:  # the grading process's own memory limit (classroom.process): this reply is over it
            self.worker.kill(self.pid)
            self.dead_reason = (f"stopped while {doing}: what it returned did not fit in the memory the grader "
                                f"allows itself for one submission; return less data (the arrays asked for, "
                                f"not more)")
            self._close_socket()
            raise ReplyRejected(self.dead_reason) from None
        except protocol.ProtocolError as exc:
            self.worker.kill(self.pid)
            self.dead_reason = f"stopped while {doing}: the reply was malformed ({exc})"
            self._close_socket()
            raise ReplyRejected(self.dead_reason) from None
        except (EOFError, OSError):
            self._died(doing)
        raise AssertionError("unreachable")

    def _reject(self, doing: str, why: str) -> None:
        self.worker.kill(self.pid)
        self.dead_reason = f"stopped while {doing}: {why}"
        self._close_socket()
        raise ReplyRejected(self.dead_reason)

    def _died(self, doing: str) -> None:
        status = self.worker.status(self.pid, wait=1.0)
        self._close_socket()
        if not status.get("exited"):  # it closed its end but lives on: it does not get to stay
            status = {**self.worker.kill(self.pid), "signal": None, "code": None, "hung_up": True}
        sig = status.get("signal")
        limits = self.worker.limits
        memory = f"{limits.data_bytes / 2 ** 20:g} MiB"
        if sig == signal.SIGKILL:
            why = (f"it was killed (SIGKILL): the CPU-time limit of {limits.cpu_seconds} s, or the "
                   f"memory limit of {memory}")
        elif sig == signal.SIGXCPU:
            why = f"it used up its CPU-time limit of {limits.cpu_seconds} s"
        elif sig in (signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS):
            name = signal.Signals(sig).name
            why = (f"it crashed ({name}); a library that could not get memory under the sandbox's "
                   f"limit of {memory} often ends this way")
        elif sig:
            why = f"it was killed by signal {signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else sig}"
        elif status.get("code") is not None:
            why = f"the process exited with status {status['code']} (did the code call exit() or os._exit()?)"
        elif status.get("hung_up"):
            why = "it closed its connection to the grader, and was stopped"
        elif status.get("worker_restarted"):
            why = "the sandbox worker stopped answering and was replaced"
        else:
            why = "the process ended unexpectedly"
        self.dead_reason = f"your code stopped while {doing}: {why}"
        raise SandboxCrashed(self.dead_reason)

    def _close_socket(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._close_socket()
        if not self.dead_reason:
            self.worker.kill(self.pid)  # also takes anything the student left running in its group


def _blocked_message(error: dict, changed) -> str:
    """Why the grader's checks could not run beside the student's code, in their terms
    (every part of it came from the child: bounded, shown as text)."""
    failed = f"{str(error.get('type', 'Exception'))[:100]}: {str(error.get('message', ''))[:300]}".rstrip(": ")
    head = "the grader's checks for this exercise could not be loaded beside your code"
    if error.get("function"):
        from grader.notebook.cellnames import split_label
        where = split_label(str(error.get("where") or "")[:200])[0]  # the function is named already
        line = error.get("line") if type(error.get("line")) is int else None
        at = f" ({where}, line {line})" if where and line else f" ({where})" if where else ""
        return f"{head}: your `{str(error['function'])[:200]}`{at} raised {failed} while they loaded"
    names = [str(c)[:120] for c in changed][:20] if isinstance(changed, list) else []
    return (f"{head}: when your notebook's definitions ran, they changed {', '.join(names) or 'the interpreter'}, "
            f"which the grader relies on ({failed}). Leave Python's built-ins and imported modules as they are.")
