"""Grade many submissions: in parallel across cores, nothing lost, one bad one never stops the rest.

Each parallel job is a separate grading process (started with `spawn`, never `fork`: the
grading process runs TensorFlow ops, and a process forked after an op hangs) that owns
its own preloaded sandbox worker. Results stream back as each submission finishes.
"""
from __future__ import annotations

import multiprocessing
import os
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from grader.results import SubmissionResult, submission_result_from_dict


def find_notebooks(paths: Iterable[str | Path]) -> list[Path]:
    """Every notebook named on the command line or below a named folder, checkpoints skipped.

    A path that does not exist is kept, so it gets its own 'does not exist' line instead
    of silently vanishing from the batch.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir() and path.suffix != ".ipynb":
            for nb in sorted(path.rglob("*.ipynb")):
                if ".ipynb_checkpoints" not in nb.parts:
                    found.append(nb)
        else:
            found.append(path)
    return list(dict.fromkeys(found))


@dataclass(frozen=True)
class Options:
    assignment: str
    isolation: str = "auto"
    include_hidden: bool = True
    seed: int = 0


def _failed(path: Path, assignment: str, message: str) -> SubmissionResult:
    return SubmissionResult(submission=str(path), assignment=assignment, errors=[f"{path}: {message}"])


# ---------------------------------------------------------------- one grading process

_state: dict = {}


def _init(options: Options) -> None:
    from grader.assignment import load_assignment
    from grader.sandbox.client import Worker
    assignment = load_assignment(options.assignment)
    _state["assignment"] = assignment
    _state["options"] = options
    worker = Worker(keras=assignment.keras, isolation=options.isolation).launch()
    _preload_grading_side(assignment.keras)  # overlaps with the worker's own import
    _state["worker"] = worker.wait_ready()


def _preload_grading_side(keras: str) -> None:
    """The grading process rebuilds models too; import Keras while the worker starts."""
    import tensorflow  # noqa: F401
    if keras == "2":
        import tf_keras  # noqa: F401
    else:
        import keras as _keras  # noqa: F401


def _grade_one(path: str) -> dict:
    from grader.grading import grade_submission
    options: Options = _state["options"]
    try:
        result = grade_submission(Path(path), _state["assignment"], _state["worker"],
                                  include_hidden=options.include_hidden, seed=options.seed)
    except Exception as exc:  # noqa: BLE001 - a grader bug on one submission must not stop the batch
        result = _failed(Path(path), _state["assignment"].name,
                         f"could not be graded: internal error {type(exc).__name__}: {exc}")
        result.warnings.append(traceback.format_exc()[-2000:])
    return result.to_dict()


def _shutdown() -> None:
    worker = _state.pop("worker", None)
    if worker is not None:
        worker.stop()


# ---------------------------------------------------------------- the batch

def grade_many(paths: list[Path], options: Options, *, jobs: int = 1,
               on_start: Callable[[int], None] | None = None) -> Iterator[SubmissionResult]:
    """Yield one result per path, as each finishes (in completion order when jobs > 1)."""
    if not paths:
        return
    jobs = max(1, min(jobs, len(paths)))
    if jobs == 1:
        _init(options)
        try:
            for path in paths:
                yield submission_result_from_dict(_grade_one(str(path)))
        finally:
            _shutdown()
        return
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init, initargs=(options,)) as pool:
        pending = {pool.submit(_grade_one, str(p)): p for p in paths}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                path = pending.pop(future)
                try:
                    yield submission_result_from_dict(future.result())
                except Exception as exc:  # noqa: BLE001 - e.g. the grading process itself died
                    yield _failed(path, options.assignment, f"could not be graded: {type(exc).__name__}: {exc}")


def default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


class Progress:
    """Count, rate and ETA: a live bar on a terminal, plain lines otherwise (CI logs, pipes)."""

    def __init__(self, total: int, stream, *, tty: bool):
        self.total, self.stream, self.tty = total, stream, tty
        self.done = 0
        self.started = time.perf_counter()

    def update(self, result: SubmissionResult) -> None:
        self.done += 1
        elapsed = time.perf_counter() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        status = "error" if result.errors else f"{result.score:g}/{result.max_score:g}"
        if self.tty:
            width = 30
            filled = int(width * self.done / self.total)
            self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
                              f"{rate * 60:.0f}/min ETA {eta:.0f}s ")
            if self.done == self.total:
                self.stream.write("\n")
        else:
            self.stream.write(f"graded {self.done}/{self.total} {Path(result.submission).name}: {status} "
                              f"({rate * 60:.0f}/min, ETA {eta:.0f}s)\n")
        self.stream.flush()
