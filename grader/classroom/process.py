"""One grading process: the assignment, its own preloaded sandbox worker, and the grading
of one submission after another, each answered as plain data (a JSON-able dict).

It runs in a process of its own, started and held to a wall-clock budget by
`grader.classroom.supervisor` (locally) or by a Dask worker (`grader.classroom.cluster`): grading a
notebook built to be slow to analyse must cost only that notebook, and only a process can
be stopped whatever it is doing.
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from grader.frameworks.preload import preload, quiet_env
from grader.classroom.submissions import file_sha256, refusal
from grader.results import SubmissionResult, submission_result_from_dict


# What one grading process may hold (RLIMIT_DATA) beyond what it held when it started:
# TensorFlow, the assignment's tests and one submission's models and replies. A ResNet50-sized submission peaks near 2 GiB; one
# student's replies can no longer take the machine's memory (each is capped, see
# sandbox.client.DEFAULT_REPLY_BYTES, and a submission over this bound is told so).
DEFAULT_MEMORY_BYTES = 4 * 1024 ** 3


@dataclass(frozen=True)
class Options:
    assignment: str
    isolation: str = "auto"
    include_hidden: bool = True
    seed: int = 0
    grading_timeout: float | None = None  # seconds per submission; None: the assignment's budget
    memory_bytes: int | None = None  # the grading process's data limit; None: DEFAULT_MEMORY_BYTES


def _data_now() -> int:
    """This process's data segment in bytes (what RLIMIT_DATA counts), 0 if unknown."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmData:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def bound_memory(options: Options) -> int:
    """Hold this (grading) process to its data limit: `memory_bytes` more than it holds now
    (a grading process forked from a student's kernel starts with that kernel's memory);
    returns the limit in force. Never raises: a system that refuses keeps its own limit."""
    import resource
    wanted = _data_now() + int(options.memory_bytes or DEFAULT_MEMORY_BYTES)
    try:
        _, hard = resource.getrlimit(resource.RLIMIT_DATA)
        if hard != resource.RLIM_INFINITY:
            wanted = min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_DATA, (wanted, wanted))
    except (ValueError, OSError):
        pass
    return wanted


def memory_message(limit: int | None = None) -> str:
    limit = limit or DEFAULT_MEMORY_BYTES
    return (f"not graded: grading it needed more memory than a grading process may use ({limit / 2 ** 30:g} GiB), "
            f"so it was stopped; what the notebook's functions return is probably far larger than asked for")


@dataclass
class Graded:
    """A submission's result plus what the gradebook and the class report need about it.

    `transient` marks a failure of the grading machinery itself (a grading process that
    died, an internal error, a worker with another version of the assignment): no grade
    was earned or lost, so the next run tries again instead of keeping the failure.
    `problems` are the grader's own troubles that cost no grade (the class report could
    not use this submission's code), for the instructor's eyes.
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
    problems: list[str] = field(default_factory=list)
    # question id -> {"text": the written answer as text (never executed), "cell": 1-based cell number or None}
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_reply(cls, path: Path, reply: dict[str, Any]) -> "Graded":
        return cls(path=path, result=submission_result_from_dict(reply["result"]), sha256=reply.get("sha256", ""),
                   code=reply.get("code", {}), host=reply.get("host", ""), wall=float(reply.get("wall", 0.0)),
                   transient=bool(reply.get("transient", False)), fingerprint=reply.get("fingerprint", ""),
                   order=int(reply.get("order", 0)), problems=list(reply.get("problems", [])),
                   answers=dict(reply.get("answers", {})))


def failed_result(path: Path, assignment: str, message: str) -> SubmissionResult:
    return SubmissionResult(submission=str(path), assignment=assignment, errors=[f"{path}: {message}"])


def failed(path: Path, assignment: str, message: str, *, transient: bool = True) -> Graded:
    return Graded(path=path, result=failed_result(path, Path(assignment).name, message), sha256=file_sha256(path),
                  transient=transient)


class GradingProcess:
    """Everything one grading process holds: the assignment and its own sandbox worker.

    The worker is launched at once and waited for only when first needed, so its ~3 s
    TensorFlow import overlaps with ours. A worker that cannot start does not raise here:
    every submission then comes back as a transient failure naming the reason.
    """

    def __init__(self, options: Options, assignment=None):
        quiet_env()
        # Only the grader's own pytest plugin, as `grader check` and check() have it: a
        # submission must get the same grade from all three, whatever else is installed
        # (and importing every installed plugin cost each grading process ~1.5 s).
        os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        self.options = options
        self.host = f"{socket.gethostname()}:{os.getpid()}"
        self.error = ""
        self.worker = None
        self._ready = False
        self._lock = threading.Lock()  # one submission at a time per sandbox worker
        self.count = 0  # submissions graded so far: the first pays for warming TensorFlow up
        self._answer_guide = None  # how to find written answers, made from the template once
        try:
            if assignment is None:
                from grader.assignment.spec import load_assignment
                assignment = load_assignment(options.assignment)
            self.assignment = assignment
            self.fingerprint = assignment.fingerprint
            from grader.frameworks.sandbox_side import sandbox_side
            from grader.sandbox.client import Worker
            self.worker = Worker(framework=sandbox_side(getattr(assignment, "framework", "keras"), assignment.keras),
                                 isolation=options.isolation, preload=getattr(assignment, "preload", ())).launch()
        except Exception as exc:  # noqa: BLE001 - reported on every submission instead
            self.assignment = getattr(self, "assignment", None)
            self.fingerprint = getattr(self, "fingerprint", "")
            self.error = f"{type(exc).__name__}: {exc}"

    def ensure_ready(self) -> None:
        if self._ready or self.error:
            return
        try:
            # The grading process rebuilds models too; a torch assignment never imports TensorFlow.
            preload(getattr(self.assignment, "framework", "keras"), self.assignment.keras)
            self.worker = self.worker.wait_ready()
            self._ready = True
        except Exception as exc:  # noqa: BLE001
            self.error = f"{type(exc).__name__}: {exc}"

    def grade(self, path: Path, shown: str | None = None) -> dict[str, Any]:
        """Grade one notebook; never raises, except KeyboardInterrupt. `shown` is the name to
        report it under when `path` is a local copy (a Dask worker grades the bytes it was
        sent; see grader.classroom.cluster)."""
        with self._lock, _interruptible() as interrupted:
            reply = self._grade(Path(path), shown or str(path))
        if interrupted:
            # pytest turns Ctrl-C into "interrupted" and returns what had run so far: a
            # partial result that must never be stored as this submission's grade.
            raise KeyboardInterrupt
        return reply

    def _grade(self, path: Path, shown: str) -> dict[str, Any]:
        self.ensure_ready()  # not counted in this submission's time
        started = time.perf_counter()
        self.count += 1
        sha = file_sha256(path)
        name = self.assignment.name if self.assignment is not None else Path(self.options.assignment).name
        transient, sources, problems, notebook = False, {}, [], None
        refused = refusal(path)
        if refused:
            result = failed_result(path, name, refused)
        elif self.error:
            result = failed_result(path, name, f"could not be graded: the grading process could not start "
                                               f"({self.error})")
            transient = True
        else:
            from grader.run.grading import grade_submission
            from grader.notebook import load_notebook
            try:
                notebook = load_notebook(path)
                result = grade_submission(path, self.assignment, self.worker, include_hidden=self.options.include_hidden,
                                          seed=self.options.seed, sources=sources, notebook=notebook)
            except MemoryError:  # over bound_memory's limit: this submission's, not the batch's
                result = failed_result(path, name, memory_message(self.options.memory_bytes))
            except Exception as exc:  # noqa: BLE001 - a grader bug on one submission must not stop the batch
                result = failed_result(path, name, f"could not be graded: internal error {type(exc).__name__}: {exc}")
                result.warnings.append(traceback.format_exc()[-2000:])
                transient = True
                problems.append(f"internal error while grading: {type(exc).__name__}: {exc}")
        from grader.classroom.codeshape import code_facts
        facts = code_facts(sources)
        problems.extend(facts.problems)
        answers: dict[str, dict[str, Any]] = {}
        if notebook is not None and getattr(self.assignment, "questions", ()):
            answers = self._written_answers(notebook, result, problems)
        if shown != str(path):
            _rename(result, str(path), shown)
        return {"result": result.to_dict(), "sha256": sha, "code": facts.code, "host": self.host,
                "wall": round(time.perf_counter() - started, 3), "transient": transient,
                "fingerprint": self.fingerprint, "order": self.count, "problems": problems, "answers": answers}

    def _written_answers(self, notebook, result: SubmissionResult, problems: list[str]) -> dict[str, dict[str, Any]]:
        """The submission's written answers, read as text (never run) with the same safe
        reader as its code: a notebook the reader refuses has none (its result already
        says why). Answers found without their tag add a warning the student sees."""
        from grader.notebook import LoadError
        from grader.notebook.answers import answer_guide, answers_reply, extract_answers

        try:
            if self._answer_guide is None:
                from grader.assignment.materials import student_template
                self._answer_guide = answer_guide(self.assignment.questions, student_template(self.assignment))
            if isinstance(notebook, LoadError):
                return {}
            answers, warnings = answers_reply(extract_answers(notebook, self.assignment.questions,
                                                              guide=self._answer_guide))
        except Exception as exc:  # noqa: BLE001 - the grade stands without its written answers
            problems.append(f"written answers not read: {type(exc).__name__}: {exc}")
            return {}
        result.warnings.extend(warnings)
        return answers

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
    Ctrl-C at all: supervised grading processes ignore it and the parent decides.
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


def _rename(result: SubmissionResult, local: str, shown: str) -> None:
    result.submission = shown
    result.errors = [e.replace(local, shown) for e in result.errors]
    result.warnings = [w.replace(local, shown) for w in result.warnings]
    for test in result.tests:
        test.message = test.message.replace(local, shown)
