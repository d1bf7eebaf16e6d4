"""Grade many submissions: in parallel across cores, nothing lost, one bad one never stops the rest.

Each parallel job is a separate grading process (started with `spawn`, never `fork`: the
grading process runs TensorFlow ops, and a process forked after an op hangs) that owns
its own preloaded sandbox worker. Results stream back as each submission finishes, so a
caller that records each one as it arrives (the gradebook) loses nothing when the run is
interrupted. `grader.cluster` runs the very same `GradingProcess` on Dask workers.
"""
from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import multiprocessing.util
import os
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter, deque
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from grader._tensorflow import import_quietly, quiet_env
from grader.results import SubmissionResult, submission_result_from_dict

# Folders that archive tools and Jupyter add next to real submissions.
_NOT_SUBMISSIONS = (".ipynb_checkpoints", "__MACOSX")


def find_notebooks(paths: Iterable[str | Path]) -> list[Path]:
    """Every notebook named on the command line or below a named folder, checkpoints skipped.

    A path that does not exist is kept, so it gets its own 'does not exist' line instead
    of silently vanishing from the batch.
    """
    return [task.path for task in find_submissions(paths)]


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


def find_submissions(paths: Iterable[str | Path]) -> list[Task]:
    tasks: list[Task] = []
    seen_paths: set[Path] = set()
    seen_keys: set[str] = set()
    for raw in paths:
        root = Path(raw)
        if root.is_dir() and root.suffix != ".ipynb":
            found = []
            for nb in sorted(root.rglob("*.ipynb")):
                rel = nb.relative_to(root)
                if any(part in _NOT_SUBMISSIONS for part in rel.parts):
                    continue
                # A folder named like a notebook is a student's folder when it holds notebooks
                # (they are found on their own); an empty one is a bad submission that must get
                # its own 'is a directory' line rather than vanish.
                if nb.is_dir() and any(nb.rglob("*.ipynb")):
                    continue
                found.append((nb, rel.as_posix(), rel.parts[0] if len(rel.parts) > 1 else nb.stem))
        else:
            found = [(root, root.name, root.stem)]
        for path, key, student in found:
            if path in seen_paths:
                continue
            seen_paths.add(path)
            if key in seen_keys:  # the same relative name under two folders given at once
                key = path.as_posix()
            seen_keys.add(key)
            tasks.append(Task(path, key, student))
    return tasks


def file_sha256(path: Path) -> str:
    """The content hash that, with the assignment's fingerprint, says whether a stored grade
    still holds; "" for a file that cannot be read (always graded again: it fails fast)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return ""
    return digest.hexdigest()


@dataclass(frozen=True)
class Options:
    assignment: str
    isolation: str = "auto"
    include_hidden: bool = True
    seed: int = 0


@dataclass
class Graded:
    """A submission's result plus what the gradebook and the class report need about it.

    `transient` marks a failure of the grading machinery itself (a grading process that
    died, an internal error, a worker with another version of the assignment): no grade
    was earned or lost, so the next run tries again instead of keeping the failure.
    """

    path: Path
    result: SubmissionResult
    sha256: str = ""
    code: dict[str, dict[str, str]] = field(default_factory=dict)  # exercise -> {source, normalized}
    host: str = ""
    wall: float = 0.0
    transient: bool = False
    fingerprint: str = ""
    order: int = 0  # 1 for the first submission its grading process graded (includes warm-up)

    @classmethod
    def from_reply(cls, path: Path, reply: dict[str, Any]) -> "Graded":
        return cls(path=path, result=submission_result_from_dict(reply["result"]), sha256=reply.get("sha256", ""),
                   code=reply.get("code", {}), host=reply.get("host", ""), wall=float(reply.get("wall", 0.0)),
                   transient=bool(reply.get("transient", False)), fingerprint=reply.get("fingerprint", ""),
                   order=int(reply.get("order", 0)))


def _failed(path: Path, assignment: str, message: str) -> SubmissionResult:
    return SubmissionResult(submission=str(path), assignment=assignment, errors=[f"{path}: {message}"])


def failed(path: Path, assignment: str, message: str, *, transient: bool = True) -> Graded:
    return Graded(path=path, result=_failed(path, Path(assignment).name, message), sha256=file_sha256(path),
                  transient=transient)


# ---------------------------------------------------------------- one grading process

class GradingProcess:
    """Everything one grading process holds: the assignment and its own sandbox worker.

    The worker is launched at once and waited for only at the first submission, so its
    ~3 s TensorFlow import overlaps with ours and, on a Dask worker, with registration.
    A worker that cannot start does not raise here: every submission then comes back as a
    transient failure naming the reason, which a pool or a cluster handles like any result.
    """

    def __init__(self, options: Options, assignment=None):
        quiet_env()
        self.options = options
        self.host = f"{socket.gethostname()}:{os.getpid()}"
        self.error = ""
        self.worker = None
        self._ready = False
        self._lock = threading.Lock()  # one submission at a time per sandbox worker
        self.count = 0  # submissions graded so far: the first pays for warming TensorFlow up
        try:
            if assignment is None:
                from grader.assignment import load_assignment
                assignment = load_assignment(options.assignment)
            self.assignment = assignment
            self.fingerprint = assignment.fingerprint
            from grader.sandbox.client import Worker
            self.worker = Worker(keras=assignment.keras, isolation=options.isolation).launch()
        except Exception as exc:  # noqa: BLE001 - reported on every submission instead
            self.assignment = getattr(self, "assignment", None)
            self.fingerprint = getattr(self, "fingerprint", "")
            self.error = f"{type(exc).__name__}: {exc}"

    def _ensure_ready(self) -> None:
        if self._ready or self.error:
            return
        try:
            import_quietly(self.assignment.keras)  # the grading process rebuilds models too
            self.worker = self.worker.wait_ready()
            self._ready = True
        except Exception as exc:  # noqa: BLE001
            self.error = f"{type(exc).__name__}: {exc}"

    def grade(self, path: Path, shown: str | None = None) -> dict[str, Any]:
        """Grade one notebook; never raises, except KeyboardInterrupt. `shown` is the name to
        report it under when `path` is a local copy (a cluster worker grades the bytes it
        was sent)."""
        with self._lock, _interruptible() as interrupted:
            reply = self._grade(Path(path), shown or str(path))
        if interrupted:
            # pytest turns Ctrl-C into "interrupted" and returns what had run so far: a
            # partial result that must never be stored as this submission's grade.
            raise KeyboardInterrupt
        return reply

    def grade_bytes(self, name: str, data: bytes, shown: str) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="grader-") as folder:
            local = Path(folder) / Path(name).name
            local.write_bytes(data)
            return self.grade(local, shown)

    def _grade(self, path: Path, shown: str) -> dict[str, Any]:
        self._ensure_ready()  # not counted in this submission's time
        started = time.perf_counter()
        self.count += 1
        sha = file_sha256(path)
        name = self.assignment.name if self.assignment is not None else Path(self.options.assignment).name
        transient = False
        if self.error:
            result = _failed(path, name, f"could not be graded: the grading process could not start "
                                         f"({self.error})")
            transient = True
        else:
            from grader.grading import grade_submission
            try:
                result = grade_submission(path, self.assignment, self.worker,
                                          include_hidden=self.options.include_hidden, seed=self.options.seed)
            except Exception as exc:  # noqa: BLE001 - a grader bug on one submission must not stop the batch
                result = _failed(path, name, f"could not be graded: internal error {type(exc).__name__}: {exc}")
                result.warnings.append(traceback.format_exc()[-2000:])
                transient = True
        code = exercise_code(path, self.assignment.exercises) if self.assignment is not None else {}
        if shown != str(path):
            _rename(result, str(path), shown)
        return {"result": result.to_dict(), "sha256": sha, "code": code, "host": self.host,
                "wall": round(time.perf_counter() - started, 3), "transient": transient,
                "fingerprint": self.fingerprint, "order": self.count}

    def close(self) -> None:
        worker, self.worker = self.worker, None
        if worker is not None:
            worker.stop()


@contextlib.contextmanager
def _interruptible() -> Iterator[list]:
    """Let the submission being graded finish when Ctrl-C arrives, then stop.

    A KeyboardInterrupt raised mid-call would leave the sandbox worker's control channel
    half-read (and the worker to be restarted), so the first Ctrl-C is only noted; a
    second one interrupts at once. Applies to the main thread of a process that takes
    Ctrl-C at all: pool processes ignore it and the parent decides.
    """
    interrupted: list[bool] = []
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield interrupted
        return

    def note(signum, frame):
        interrupted.append(True)
        if len(interrupted) > 1:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, note)
    try:
        yield interrupted
    except KeyboardInterrupt:
        interrupted.append(True)
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def exercise_code(path: Path, exercises) -> dict[str, dict[str, str]]:
    """Each graded function's source as found and in the normalized form the class report
    compares, computed here because only grading reads the notebook (parsed, never run)."""
    from grader.notebook import LoadError, extract_program, load_notebook, source_of
    from grader.report import normalize_source
    try:
        nb = load_notebook(path)
        if isinstance(nb, LoadError):
            return {}
        program = extract_program(nb, exercises)
        out = {}
        for name in exercises:
            source = source_of(program, name)
            out[name] = {"source": source, "normalized": normalize_source(source) if source else ""}
        return out
    except Exception:  # noqa: BLE001 - the report's input, never a reason to lose a grade
        return {}


def _rename(result: SubmissionResult, local: str, shown: str) -> None:
    result.submission = shown
    result.errors = [e.replace(local, shown) for e in result.errors]
    result.warnings = [w.replace(local, shown) for w in result.warnings]
    for test in result.tests:
        test.message = test.message.replace(local, shown)


# The state of a pool's grading process, set by its initializer.
_state: dict = {}


def _init(options: Options, parent: int | None = None) -> None:
    # Ctrl-C reaches the whole process group; the parent alone decides what it means.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _state["process"] = process = GradingProcess(options)
    # A pool process leaves through multiprocessing's exit path, which skips atexit.
    multiprocessing.util.Finalize(process, process.close, exitpriority=10)
    if parent is not None:
        threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    """A pool's processes outlive a parent killed with SIGKILL (they wait on a queue whose
    writing end they hold themselves); leave, and let the sandbox worker go with us."""
    while os.getppid() == parent:
        time.sleep(0.5)
    process = _state.get("process")
    if process is not None:
        process.close()
    os._exit(1)


def _grade_one(path: str) -> dict:
    return _state["process"].grade(Path(path))


# ---------------------------------------------------------------- the batch

def grade_many(paths: list[Path], options: Options, *, jobs: int = 1) -> Iterator[SubmissionResult]:
    """Yield one result per path, as each finishes (in completion order when jobs > 1)."""
    stream = grade_stream(paths, options, jobs=jobs)
    try:
        for graded in stream:
            yield graded.result
    finally:
        stream.close()  # stops the grading processes now, even when the caller stops early


def grade_stream(paths: Iterable[Path], options: Options, *, jobs: int = 1) -> Iterator[Graded]:
    """Like `grade_many`, with the facts the gradebook records about each grading."""
    paths = [Path(p) for p in paths]
    if not paths:
        return
    jobs = max(1, min(jobs, len(paths)))
    if jobs == 1:
        process = GradingProcess(options)
        try:
            for path in paths:
                yield Graded.from_reply(path, process.grade(path))
        finally:
            process.close()
        return
    yield from _pooled(paths, options, jobs)


# A submission in flight when its grading process died twice is given up on (for this run).
MAX_ATTEMPTS = 2


def _pooled(paths: list[Path], options: Options, jobs: int) -> Iterator[Graded]:
    """At most two submissions per process are in flight, so when a process dies only those
    are suspects: they are retried in a fresh pool, and the rest of the batch goes on."""
    ctx = multiprocessing.get_context("spawn")
    queue = deque(paths)
    attempts: Counter[Path] = Counter()
    while queue:
        pool = ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init,
                                   initargs=(options, os.getpid()))
        running: dict = {}
        finished = False
        try:
            while queue or running:
                while queue and len(running) < 2 * jobs:
                    path = queue.popleft()
                    running[pool.submit(_grade_one, str(path))] = path
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                broken = False
                for future in done:
                    path = running.pop(future)
                    try:
                        yield Graded.from_reply(path, future.result())
                    except BrokenProcessPool:
                        broken = True
                        running[future] = path  # handled with the others below
                    except Exception as exc:  # noqa: BLE001
                        yield failed(path, options.assignment, f"could not be graded: {type(exc).__name__}: {exc}")
                if broken:
                    for future, path in list(running.items()):
                        if future.done() and not future.cancelled() and future.exception() is None:
                            yield Graded.from_reply(path, future.result())
                            continue
                        attempts[path] += 1
                        if attempts[path] >= MAX_ATTEMPTS:
                            yield failed(path, options.assignment, "could not be graded: the grading process died "
                                                                   f"{MAX_ATTEMPTS} times while grading it")
                        else:
                            queue.appendleft(path)
                    running.clear()
                    break
            else:
                finished = True
        finally:
            _close_pool(pool, graceful=finished)


def _close_pool(pool: ProcessPoolExecutor, *, graceful: bool) -> None:
    """On an interruption, stop the grading processes now instead of after their current
    submission (whose result would be thrown away anyway)."""
    if not graceful:
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            with contextlib.suppress(Exception):
                process.terminate()
    pool.shutdown(wait=graceful, cancel_futures=True)


def default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


class Progress:
    """Count, rate and ETA: a live bar on a terminal, plain lines otherwise (CI logs, pipes).

    The rate is measured from the first result on, once there are two: until then the
    time is mostly the grading processes starting, which says nothing about the rest.
    """

    def __init__(self, total: int, stream, *, tty: bool):
        self.total, self.stream, self.tty = total, stream, tty
        self.done = 0
        self.failed = 0
        self.started = time.perf_counter()
        self.first: float | None = None

    def _rate(self, now: float) -> float:
        if self.first is not None and self.done >= 2 and now > self.first:
            return (self.done - 1) / (now - self.first)
        elapsed = now - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def update(self, result: SubmissionResult) -> None:
        now = time.perf_counter()
        self.done += 1
        self.first = now if self.first is None else self.first
        self.failed += bool(result.errors)
        rate = self._rate(now)
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        status = "not graded" if result.errors else f"{result.score:g}/{result.max_score:g}"
        if self.tty:
            width = 30
            filled = int(width * self.done / max(self.total, 1))
            problems = f", {self.failed} not graded" if self.failed else ""
            self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
                              f"{rate * 60:.0f}/min ETA {_duration(eta)}{problems}  ")
            if self.done == self.total:
                self.stream.write("\n")
        else:
            self.stream.write(f"graded {self.done}/{self.total} {Path(result.submission).name}: {status} "
                              f"({rate * 60:.0f}/min, ETA {_duration(eta)})\n")
        self.stream.flush()


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
