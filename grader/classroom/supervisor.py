"""Grading processes held to a wall-clock budget per submission.

The sandbox's `call_timeout` bounds the student's code, but the grading process itself
parses the notebook, rebuilds models and walks their graphs: a notebook built to be slow
to analyse (a huge cell, a model made of nested models) could hold it for minutes, and
every submission queued behind it with it. So grading always happens in separate
processes (for `--jobs 1` too), each with one submission in flight, watched from here:
past the budget, that process is killed (its sandbox worker goes with it), the
submission is reported as over budget, and a fresh process takes the slot.

The processes are plain subprocesses (`python -m grader.classroom.supervisor FD`) that
speak JSON over a socket pair: nothing is pickled either way, and they can be started
from anywhere, including a daemonic Dask worker, which multiprocessing refuses.

A student's `grader check` grades one notebook and waits for it, so its grading process
is forked instead (`graded_in_fork`): the same process and messages, without a second Python
start-up and import of the grader before the sandbox worker can even be launched.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from contextlib import contextmanager
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Iterable, Iterator

from grader.classroom.process import Graded, Options, failed
from grader.classroom.submissions import refusal

# Default budget: generous for honest code (several calls may each use up call_timeout),
# yet bounded.
BUDGET_FLOOR = 300.0
BUDGET_CALLS = 10
# A grading process that has not imported TensorFlow and started its sandbox worker in
# this long is stuck; it is replaced.
START_TIMEOUT = 600.0
# A submission whose grading process died this many times is given up on (for this run).
MAX_ATTEMPTS = 2
# Grading processes that failed to start in a row before the rest of the batch is given up.
MAX_START_FAILURES = 3
IDLE = float("inf")  # the deadline of a process with nothing in flight


def budget_for(assignment, options: Options | None = None) -> float:
    """Seconds one submission's grading may take: the run's override, else the spec's
    `grading_timeout`, else max(300 s, 10 x call_timeout)."""
    if options is not None and options.grading_timeout:
        return float(options.grading_timeout)
    spec = (getattr(assignment, "extra", None) or {}).get("grading_timeout")
    if spec:
        return float(spec)
    return max(BUDGET_FLOOR, BUDGET_CALLS * float(assignment.call_timeout))


def over_budget_message(budget: float) -> str:
    return (f"not graded: grading it took longer than the budget of {budget:g} s, so it was stopped (the "
            f"notebook may be built to be slow to analyse: a huge cell, a model nested in itself). If it "
            f"deserves more time, raise grading_timeout in the assignment.toml and grade it again with --regrade")


class Slot:
    """One grading process and the submission it is grading, if any."""

    def __init__(self, options: Options, budget: float, *, env: dict | None = None, fork: bool = False):
        ours, theirs = socket.socketpair()
        self.budget = budget
        self.path: Path | None = None
        self.shown: str | None = None
        self.ready = False
        self.died = False
        self.deadline = time.monotonic() + max(START_TIMEOUT, budget)
        try:
            if fork:
                self.proc = _fork_grading_process(ours, theirs, env)
            else:
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "grader.classroom.supervisor", str(theirs.fileno()), str(os.getpid())],
                    # stdout goes to our stderr: `grader grade --format json` promises stdout
                    # holds nothing but the JSON lines
                    pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stdout=2, env=env,
                    start_new_session=True)  # Ctrl-C reaches the parent only; it decides
        finally:
            theirs.close()
        self.conn = Connection(ours.detach())
        self.conn.send_bytes(json.dumps(vars(options)).encode())

    def send(self, path: Path, shown: str | None = None) -> None:
        self.path, self.shown = path, shown
        self.deadline = time.monotonic() + self.budget
        self.conn.send_bytes(json.dumps({"path": str(path), "shown": shown}).encode())

    def receive(self) -> dict[str, Any]:
        """The next message; EOFError when the process is gone."""
        return json.loads(self.conn.recv_bytes())

    def expired(self, now: float) -> bool:
        return now > self.deadline

    def kill(self) -> None:
        """SIGKILL the whole session: the grading process may be stuck in C code that no
        gentler signal interrupts. Its sandbox worker sees the control socket close and
        takes its children down."""
        self.conn.close()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:  # a forked process may not have made its own group yet
            os.kill(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()

    def close(self, grace: float = 15.0) -> None:
        """Ask the process to stop its sandbox worker and leave; kill it if it does not."""
        self.conn.close()
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.kill()

    def grade(self, path: Path, shown: str | None = None) -> dict[str, Any] | None:
        """Grade one submission and wait for it (the cluster's way): its reply, or None when
        the budget ran out or the process died (`died` says which; the slot is then spent)."""
        try:
            while not self.ready:
                if not self.conn.poll(max(0.0, self.deadline - time.monotonic())):
                    return None
                self.ready = bool(self.receive().get("ready"))
            self.send(path, shown)
            if not self.conn.poll(max(0.0, self.deadline - time.monotonic())):
                return None
            reply = self.receive()
        except (EOFError, OSError, ValueError):
            self.died = True
            return None
        self.path = self.shown = None
        self.deadline = IDLE
        return reply


@contextmanager
def graded_in_fork(path: Path, options: Options, *, budget: float, env: dict | None = None) -> Iterator[Graded]:
    """Grade one submission in a grading process forked from this one, held to `budget`
    like any other. When the block ends, the process (and so its sandbox worker) is killed,
    not asked to leave: a student waits for the result, not for TensorFlow to shut down;
    and the caller shows the result before that, inside the block."""
    stream = supervised([path], options, jobs=1, budget=budget, env=env, fork=True)
    try:
        yield next(stream)
    finally:
        stream.close()


def supervised(paths: Iterable[Path], options: Options, *, jobs: int, budget: float,
               env: dict | None = None, fork: bool = False) -> Iterator[Graded]:
    """Yield one `Graded` per path, in completion order, from `jobs` budgeted grading
    processes. Nothing is lost: a submission over budget is reported as such; one whose
    process died is tried again once in a fresh process, then reported.

    `fork=True` forks the grading processes from this one (see `_fork_grading_process`);
    only with `jobs=1`, so that no forked process holds another one's socket."""
    if fork and jobs != 1:
        raise ValueError("forked grading processes are for jobs=1 only")
    queue = deque(Path(p) for p in paths)
    slots: list[Slot] = []
    attempts: Counter[Path] = Counter()
    start_failures = 0
    finished = False
    try:
        while queue or any(s.path is not None for s in slots):
            while queue and refusal(queue[0]):  # never handed to anyone, so never opened
                path = queue.popleft()
                yield failed(path, options.assignment, refusal(path), transient=False)
            if start_failures >= MAX_START_FAILURES:
                for path in queue:
                    yield failed(path, options.assignment, f"could not be graded: {start_failures} grading "
                                                           f"processes in a row failed to start")
                queue.clear()
            busy = sum(s.path is not None for s in slots)
            while len(slots) < min(jobs, busy + len(queue)):
                slots.append(Slot(options, budget, env=env, fork=fork))
            for slot in slots:
                if slot.ready and slot.path is None and queue:
                    slot.send(queue.popleft())
            if not queue and not any(s.path is not None for s in slots):
                break
            now = time.monotonic()
            timeout = min(1.0, max(0.0, min(s.deadline for s in slots) - now) + 0.01)
            wait([s.conn for s in slots], timeout=timeout)
            events: list[Graded] = []
            for slot in list(slots):
                outcome = _poll(slot)
                if outcome == "ok":
                    continue
                if isinstance(outcome, Graded):
                    events.append(outcome)
                    continue
                # died or over its budget: the process goes, a fresh one takes the slot
                slots.remove(slot)
                slot.kill()
                if slot.path is None:
                    start_failures += 1
                    continue
                if outcome == "expired":
                    events.append(failed(slot.path, options.assignment, over_budget_message(budget), transient=False))
                    continue
                attempts[slot.path] += 1
                if attempts[slot.path] >= MAX_ATTEMPTS:
                    events.append(failed(slot.path, options.assignment, f"could not be graded: the grading process "
                                                                        f"died {MAX_ATTEMPTS} times while grading it "
                                                                        f"(a crash, or more memory than its limit)"))
                else:
                    queue.appendleft(slot.path)
            if any(s.ready for s in slots):
                start_failures = 0  # a process that started says nothing about those that did not
            yield from events
        finished = True
    finally:
        for slot in slots:
            slot.close() if finished else slot.kill()


def _poll(slot: Slot):
    """What happened in `slot` since last asked: "ok" (nothing final), a Graded, "dead"
    or "expired"."""
    try:
        while slot.conn.poll():
            message = slot.receive()
            if message.get("ready"):
                slot.ready, slot.deadline = True, IDLE
            elif slot.path is not None:
                graded = Graded.from_reply(slot.path, message)
                slot.path = slot.shown = None
                slot.deadline = IDLE
                return graded
    except (EOFError, OSError, ValueError):
        return "dead"
    if slot.expired(time.monotonic()):
        return "expired"
    return "ok"


# ---------------------------------------------------------------- the grading process's side

def serve(fd: int, parent: int) -> None:
    """Grade what the parent sends, one submission at a time, until it hangs up."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn = Connection(fd)
    options = Options(**json.loads(conn.recv_bytes()))
    from grader.classroom.process import GradingProcess, bound_memory
    bound_memory(options)  # one submission's replies or models cannot take the machine's memory
    process = GradingProcess(options)  # launches its sandbox worker first
    threading.Thread(target=_exit_with_parent, args=(parent, process), daemon=True).start()
    try:
        if process.assignment is not None and not process.error:
            from grader.run.warm import prepare
            # while the worker imports TensorFlow
            prepare(process.assignment.keras, plotting=False, enough=process.worker.answered)
        process.ensure_ready()
        conn.send_bytes(json.dumps({"ready": True, "error": process.error}).encode())
        while True:
            try:
                request = json.loads(conn.recv_bytes())
            except (EOFError, OSError):
                break
            reply = process.grade(Path(request["path"]), request.get("shown"))
            conn.send_bytes(json.dumps(reply, default=_plain).encode())
    finally:
        process.close()


def _plain(value):
    """NumPy scalars and arrays that a check left in a result's table, as plain JSON."""
    for convert in ("tolist", "item"):
        if hasattr(value, convert):
            return getattr(value, convert)()
    return str(value)


def _exit_with_parent(parent: int, process) -> None:
    """A parent killed with SIGKILL cannot stop us: leave when it is gone, and let the
    sandbox worker go with us."""
    while os.getppid() == parent:
        time.sleep(0.5)
    process.close()
    os._exit(1)


class _Forked:
    """A forked grading process, seen as `Slot` sees a subprocess: pid, poll(), wait()."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                pid, status = self.pid, 0
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if timeout is None and self.returncode is None:
            try:
                _, status = os.waitpid(self.pid, 0)
                self.returncode = os.waitstatus_to_exitcode(status)
            except ChildProcessError:
                self.returncode = 0
            return self.returncode
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.001
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"grading process {self.pid}", timeout)
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        return self.returncode


def _fork_grading_process(ours: socket.socket, theirs: socket.socket, env: dict | None) -> _Forked:
    """Fork a grading process that serves `theirs`, as `python -m grader.classroom.supervisor`
    would: its own process group (Ctrl-C reaches the parent only), stdin from /dev/null,
    stdout to stderr. Forking is safe here because this process has run no TensorFlow (it
    is the command line, which never imports it) and starts no thread; the one thread it
    has, OpenBLAS's (numpy), is stopped by OpenBLAS's own fork handler and started again
    in each process when next needed."""
    parent = os.getpid()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # or the child would print what the parent had buffered, again
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            ours.close()  # else the parent hanging up would never reach us as EOF
            os.setpgid(0, 0)
            devnull = os.open(os.devnull, os.O_RDONLY)
            os.dup2(devnull, 0)
            os.dup2(2, 1)
            if env is not None:
                os.environ.clear()
                os.environ.update(env)
            serve(theirs.fileno(), parent)
            code = 0
        except BaseException:  # noqa: BLE001 - the parent sees the hang-up and reports it
            import traceback
            traceback.print_exc()
        finally:
            os._exit(code)
    try:
        os.setpgid(pid, pid)  # whichever of the two runs first makes the group
    except OSError:
        pass
    return _Forked(pid)


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]))
