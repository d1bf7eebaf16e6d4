"""Grade on a Dask distributed cluster (`grader grade ... --cluster tcp://HOST:8786`).

Dask does the scheduling; this module only adapts grading to it. Each Dask worker holds
one `GradingProcess` (its own preloaded sandbox worker), created by a WorkerPlugin when
the worker joins and stopped when it leaves, exactly as a local grading process holds
one. The client sends each notebook's bytes rather than its path, so the machines need
no shared file system; results stream back in completion order into the same gradebook.

Every worker must run the same grader and the same assignment as the client: each result
carries the fingerprint of the assignment that graded it, and one graded against another
version is not stored as a grade (see docs/cluster.md for setting machines up).
"""
from __future__ import annotations

import os
import uuid
from collections import deque
from dataclasses import replace
from pathlib import Path
from typing import Iterable, Iterator

from distributed.diagnostics.plugin import WorkerPlugin

from grader.batch import GradingProcess, Graded, Options, failed

PLUGIN = "grader-sandbox"
# Submissions in flight per worker thread: enough that a worker never waits for the next
# notebook, few enough that an interrupted run abandons little and memory stays flat.
IN_FLIGHT_PER_THREAD = 2


class ClusterError(Exception):
    """The cluster cannot be used (unreachable, no workers); nothing was graded."""


class SandboxPlugin(WorkerPlugin):
    """Starts a grading process (with its sandbox worker) on every Dask worker, current or
    future, and stops it when the worker closes or the plugin is removed."""

    idempotent = False

    def __init__(self, options: Options):
        self.options = options
        self.process: GradingProcess | None = None

    def setup(self, worker) -> None:
        # Only launches the sandbox worker: waiting for its TensorFlow import here would
        # block this Dask worker's event loop (and its heartbeats) for seconds.
        self.process = GradingProcess(_local_options(self.options))

    def teardown(self, worker) -> None:
        process, self.process = self.process, None
        if process is not None:
            process.close()


def _local_options(options: Options) -> Options:
    """The client names the assignment by its folder on the client's machine; a worker on
    another machine finds the same assignment by name in its own checkout."""
    from grader.assignment import AssignmentError, resolve
    try:
        resolve(options.assignment)
        return options
    except AssignmentError:
        return replace(options, assignment=Path(options.assignment).name)


def grade_remote(name: str, data: bytes, shown: str) -> dict:
    """The task each submission becomes; runs on a Dask worker."""
    from distributed import get_worker
    plugin = get_worker().plugins.get(PLUGIN)
    if plugin is None or plugin.process is None:
        raise RuntimeError(f"the grader plugin is not running on Dask worker {get_worker().address}")
    return plugin.process.grade_bytes(name, data, shown)


def _read_locally(path: Path, assignment: str) -> bytes | Graded:
    """The notebook's bytes, or, when they cannot be sent, the result saying why (the same
    student-facing reason a local grading would give)."""
    from grader.notebook import MAX_NOTEBOOK_BYTES, LoadError, load_notebook
    try:
        if path.is_file() and path.stat().st_size <= MAX_NOTEBOOK_BYTES:
            return path.read_bytes()
    except OSError:
        pass
    problem = load_notebook(path)
    if isinstance(problem, LoadError):
        return failed(path, assignment, problem.problem, transient=False)
    return failed(path, assignment, "could not be read to send it to the cluster")


def grade_on_cluster(paths: Iterable[Path], options: Options, address: str, *, fingerprint: str,
                     connect_timeout: float = 30.0, worker_timeout: float = 120.0) -> Iterator[Graded]:
    """Yield one `Graded` per path, in completion order, graded on the cluster at `address`."""
    from distributed import Client, as_completed

    paths = [Path(p) for p in paths]
    if not paths:
        return
    try:
        client = Client(address, timeout=connect_timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ClusterError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    running: dict = {}
    try:
        try:
            client.wait_for_workers(1, timeout=worker_timeout)
        except TimeoutError:
            raise ClusterError(f"no Dask worker joined the scheduler at {address} within "
                               f"{worker_timeout:.0f} s") from None
        client.register_plugin(SandboxPlugin(options), name=PLUGIN)
        window = max(2, IN_FLIGHT_PER_THREAD * sum(client.nthreads().values()))
        queue = deque(paths)
        completed = as_completed(loop=client.loop)
        done = 0
        while queue or running:
            if done and done % 20 == 0:  # workers that joined since get their share
                window = max(2, IN_FLIGHT_PER_THREAD * sum(client.nthreads().values()))
            while queue and len(running) < window:
                path = queue.popleft()
                data = _read_locally(path, options.assignment)
                if isinstance(data, Graded):
                    yield data
                    continue
                future = client.submit(grade_remote, path.name, data, str(path), pure=False, retries=1,
                                       key=f"grade-{path.stem[:40]}-{uuid.uuid4().hex[:12]}")
                running[future] = path
                completed.add(future)
            if not running:
                continue
            future = next(completed)
            path = running.pop(future)
            try:
                graded = Graded.from_reply(path, future.result())
            except Exception as exc:  # noqa: BLE001 - a worker died, a task was lost: this one only
                graded = failed(path, options.assignment, f"could not be graded on the cluster: "
                                                          f"{type(exc).__name__}: {exc}")
            future.release()
            done += 1
            if graded.fingerprint and graded.fingerprint != fingerprint:
                graded = failed(path, options.assignment,
                                f"could not be graded: Dask worker {graded.host} has another version of the "
                                f"assignment (fingerprint {graded.fingerprint}, expected {fingerprint}); "
                                f"update its checkout")
            yield graded
    finally:
        if running:
            client.cancel(list(running), force=True)
        try:
            client.unregister_worker_plugin(PLUGIN)  # stops the sandbox workers it started
        except Exception:  # noqa: BLE001 - never registered, or the cluster is already gone
            pass
        client.close()


def describe(address: str) -> str:
    return f"dask {address}"


def local_cluster(n_workers: int = 2, **kwargs):
    """A LocalCluster shaped like a real grading cluster (one process and one thread per
    grading slot, loopback only), for tests and benchmarks."""
    import logging
    from distributed import LocalCluster
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    settings = dict(n_workers=n_workers, processes=True, threads_per_worker=1, host="127.0.0.1",
                    dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR)
    settings.update(kwargs)
    return LocalCluster(**settings)
