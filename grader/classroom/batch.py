"""Grade many submissions: in parallel across cores, nothing lost, one bad one never stops the rest.

Each job is a separate grading process that owns its own preloaded sandbox worker and is
held to a wall-clock budget per submission (grader.classroom.supervisor). Results stream
back as each submission finishes, so a caller that records each one as it arrives (the
gradebook) loses nothing when the run is interrupted. `grader.classroom.cluster` runs the very same
grading processes on Dask workers.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Iterable, Iterator

from grader.classroom.names import printable
from grader.classroom.process import Graded, GradingProcess, Options, failed
from grader.classroom.submissions import Task, file_sha256, find_notebooks, find_submissions
from grader.classroom.supervisor import budget_for, supervised
from grader.results import SubmissionResult

__all__ = ["Graded", "GradingProcess", "Options", "Progress", "Task", "default_jobs", "failed", "file_sha256",
           "find_notebooks", "find_submissions", "grade_many", "grade_stream"]


def grade_many(paths: list[Path], options: Options, *, jobs: int = 1) -> Iterator[SubmissionResult]:
    """Yield one result per path, as each finishes (in completion order when jobs > 1)."""
    stream = grade_stream(paths, options, jobs=jobs)
    try:
        for graded in stream:
            yield graded.result
    finally:
        stream.close()  # stops the grading processes now, even when the caller stops early


def grade_stream(paths: Iterable[Path], options: Options, *, jobs: int = 1) -> Iterator[Graded]:
    """Like `grade_many`, with the facts the gradebook records about each grading. Every
    submission is graded in a separate grading process held to the assignment's budget,
    `--jobs 1` included (see grader.classroom.supervisor)."""
    paths = [Path(p) for p in paths]
    if not paths:
        return
    jobs = max(1, min(jobs, len(paths)))
    yield from supervised(paths, options, jobs=jobs, budget=_budget(options))


def _budget(options: Options) -> float:
    from grader.assignment.spec import AssignmentError, load_assignment
    from grader.classroom.supervisor import BUDGET_FLOOR
    try:
        return budget_for(load_assignment(options.assignment), options)
    except AssignmentError:  # every submission will say why; the default bounds them meanwhile
        return options.grading_timeout or BUDGET_FLOOR


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
            self.stream.write(f"graded {self.done}/{self.total} {printable(Path(result.submission).name)}: {status} "
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
