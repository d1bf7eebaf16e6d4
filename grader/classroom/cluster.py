"""Grade on a Dask distributed cluster (`grader grade ... --cluster tcp://HOST:8786`).

Dask does the scheduling; this module only adapts grading to it. Each Dask worker holds
one budgeted grading process (its own preloaded sandbox worker; see
grader.classroom.supervisor), started by a WorkerPlugin when the worker joins and stopped
when it leaves, exactly as a local run holds one per job: a submission over the budget
costs only itself, and a fresh process takes over. The client sends each notebook's bytes rather than its path, so the machines need
no shared file system; results stream back in completion order into the same gradebook.

Every worker must run the same grader and the same assignment as the client: each result
carries the fingerprint of the assignment that graded it, and one graded against another
version is not stored as a grade (see docs/cluster.md for setting machines up).
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import uuid
from collections import deque
from dataclasses import replace
from pathlib import Path
from typing import Iterable, Iterator

from distributed.diagnostics.plugin import WorkerPlugin

from grader.classroom.process import Graded, Options, failed
from grader.classroom.submissions import refusal
from grader.classroom.supervisor import BUDGET_FLOOR, Slot, budget_for, over_budget_message

PLUGIN = "grader-sandbox"
# Submissions in flight per worker thread: enough that a worker never waits for the next
# notebook, few enough that an interrupted run abandons little and memory stays flat.
IN_FLIGHT_PER_THREAD = 2


class ClusterError(Exception):
    """The cluster cannot be used (unreachable, no workers); nothing was graded."""


class SandboxPlugin(WorkerPlugin):
    """Starts a budgeted grading process (with its sandbox worker) on every Dask worker,
    current or future, and stops it when the worker closes or the plugin is removed."""

    idempotent = False

    def __init__(self, options: Options):
        self.options = options
        self.process: Slot | None = None
        self.budget = BUDGET_FLOOR
        self._lock: threading.Lock | None = None  # made on the worker: the plugin travels pickled

    def setup(self, worker) -> None:
        # Only starts the process: waiting for its TensorFlow import here would block this
        # Dask worker's event loop (and its heartbeats) for seconds.
        self._lock = threading.Lock()  # one submission at a time per grading process
        self.options = _local_options(self.options)
        try:
            from grader.assignment.spec import load_assignment
            self.budget = budget_for(load_assignment(self.options.assignment), self.options)
        except Exception:  # noqa: BLE001 - the grading process reports the assignment's problem
            self.budget = self.options.grading_timeout or BUDGET_FLOOR
        self.process = Slot(self.options, self.budget)

    def grade_bytes(self, name: str, data: bytes, shown: str) -> dict:
        """Grade a notebook sent as bytes; over the budget (or if the process died), a fresh
        process takes over and the submission is reported as such."""
        with self._lock, tempfile.TemporaryDirectory(prefix="grader-") as folder:
            local = Path(folder) / (Path(name).name or "submission.ipynb")
            local.write_bytes(data)
            if self.process is None:
                self.process = Slot(self.options, self.budget)
            reply = self.process.grade(local, shown)
            if reply is not None:
                return reply
            died = self.process.died
            self.process.kill()
            self.process = Slot(self.options, self.budget)
            message = ("could not be graded: the grading process died while grading it" if died
                       else over_budget_message(self.budget))
            graded = failed(Path(shown), self.options.assignment, message, transient=died)
            return {"result": graded.result.to_dict(), "sha256": hashlib.sha256(data).hexdigest(), "code": {},
                    "host": "", "wall": self.budget,
                    "transient": died, "fingerprint": "", "order": 0, "problems": []}

    def teardown(self, worker) -> None:
        process, self.process = self.process, None
        if process is not None:
            process.close()


def _local_options(options: Options) -> Options:
    """The client names the assignment by its folder on the client's machine; a worker on
    another machine finds the same assignment by name in its own checkout."""
    from grader.assignment.spec import AssignmentError, resolve
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
    return plugin.grade_bytes(name, data, shown)


def _read_locally(path: Path, assignment: str) -> bytes | Graded:
    """The notebook's bytes, or, when they cannot be sent, the result saying why (the same
    student-facing reason a local grading would give)."""
    from grader.notebook import MAX_NOTEBOOK_BYTES, LoadError, load_notebook
    refused = refusal(path)
    if refused:
        return failed(path, assignment, refused, transient=False)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as f:
            data = f.read(MAX_NOTEBOOK_BYTES + 1)
        if len(data) <= MAX_NOTEBOOK_BYTES:
            return data
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
