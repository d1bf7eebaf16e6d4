"""A submission's calls on one side of the grade (visible or hidden), in children that are
replaced when they fail.

Why children are replaceable: one forked child used to serve every call of a submission,
so a `happyModel` that looped forever, called `os._exit` or broke its process also zeroed
a correct `convolutional_model` graded after it. Here a child that dies, times out or is
killed costs only the call made to it: the next call gets a fresh child, loaded with the
same definitions and seed, so what it computes is what the first child would have.

Why two sides: a hidden test's inputs must never be seen by a child that later answers a
visible test (a student's function could keep them in a global and print them there).
Each side gets its own children; what they return is kept apart by the caller.

Why a shared load failure: definitions that cannot load (an infinite loop at import time)
would fail the same way in every fresh child; they are loaded once, and every later call
fails at once with that message instead of costing another load timeout.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from .client import Worker
from .errors import ProbeError, SandboxCrashed, SandboxError, WorkerFailed
from .session import CallResult, Session

# Fresh children one side of one submission may use before the grader stops trying: each
# failed call costs at most one, and a bound keeps a submission whose every call crashes
# from forking without end.
MAX_CHILDREN = 16


@dataclass(frozen=True)
class Recipe:
    """What every child of one submission is started with: the same for all of them."""

    chunks: tuple[dict, ...]
    support: dict[str, str] = field(default_factory=dict)
    seed: int = 0
    timeout: float = 60.0
    future: tuple[str, ...] = ()
    probes: str | None = None  # the assignment's probe source, sent only once a probe is called


@dataclass
class LoadState:
    """Shared by both sides of a submission: whether its definitions load at all."""

    failure: SandboxError | None = None
    first: Session | None = None  # the first child that loaded: its errors, names and output


class Channel:
    """One side's current child, replaced after any failure that ended it."""

    def __init__(self, worker: Worker, recipe: Recipe, state: LoadState, name: str = "visible"):
        self.worker = worker
        self.recipe = recipe
        self.state = state
        self.name = name
        self.session: Session | None = None
        self.children = 0
        self._probes_sent = False

    def ensure(self, doing: str = "the next call") -> Session:
        """A live child for the next call (the current one, or a fresh one)."""
        if self.state.failure is not None:
            raise type(self.state.failure)(str(self.state.failure))
        if self.session is not None and not self.session.dead_reason and not self.session.closed:
            return self.session
        self._retire()
        if self.children >= MAX_CHILDREN:
            raise SandboxCrashed(f"{doing} was not run: earlier calls ended {self.children} sandbox processes, "
                                 f"the most the grader starts for one submission")
        self.children += 1
        try:
            session = self.worker.session(list(self.recipe.chunks), support=self.recipe.support,
                                          seed=self.recipe.seed, timeout=self.recipe.timeout,
                                          future=list(self.recipe.future))
        except WorkerFailed:
            raise
        except SandboxError as exc:  # the definitions themselves do not load: no child will do better
            self.state.failure = exc
            raise
        self.session, self._probes_sent = session, False
        if self.state.first is None:
            self.state.first = session
        return session

    def call(self, name: str, args: Sequence, kwargs: dict, *, probe: bool = False, weights: bool = True,
             return_args: bool = False, seed: int = 0, timeout: float | None = None) -> CallResult:
        session = self.ensure(f"`{name}`")
        if probe and not self._probes_sent:
            if self.recipe.probes is None:
                raise ProbeError(f"`{name}` is called as a probe, but the assignment declares no probes "
                                 f"(spec key `probes` in assignment.toml)")
            session.load_probes(self.recipe.probes, timeout)
            self._probes_sent = True
        return session.call(name, *args, timeout=timeout, return_args=return_args, seed=seed,
                            probe=probe, weights=weights, **kwargs)

    def _retire(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None

    def close(self) -> None:
        self._retire()
