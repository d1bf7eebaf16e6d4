"""A submitted notebook, opened for grading: what was located in it, the sandbox children
running its definitions, and calls whose results come back as checked data.

This is what an assignment's tests see as the `submission` fixture. Every value it hands
to a test is data (arrays, numbers) or a model rebuilt from allow-listed layers.

Calls run on one of two channels, "visible" and "hidden" (the plugin switches before each
test): each has its own sandbox children and its own cache, so nothing a child computed
after seeing a hidden test's inputs can reach a visible test's result, message or output.
"""
from __future__ import annotations

import dataclasses
import hashlib
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grader.run.calltrace import Trace, parse_trace
from grader.checks import CheckFailed
from grader.frameworks.keras.model_pool import POOL, pool_key
from grader.notebook import LoadError, Program, extract_program, load_notebook
from grader.notebook.cellnames import split_label
from grader.frameworks.keras.rebuild import ModelRejected, rebuild
from grader.sandbox import client
from grader.sandbox.channel import Channel, LoadState, Recipe
from grader.frameworks.keras.child.payload import ModelPayload
from grader.frameworks.torch.child.payload import TorchModulePayload
from grader.sandbox.protocol import Unsupported, encode_value
from grader.sandbox.trace import PROBE_SOURCE, TRACE_PROBE
from grader.frameworks.torch.probe import TORCH_PROBE_SOURCE

CHANNELS = ("visible", "hidden")
# Failures that ended a child: a second identical call would only fail the same way, after
# another full time limit, so they are remembered like results.
_CHILD_ENDED = (client.SandboxTimeout, client.SandboxCrashed, client.ReplyRejected)


def _program_chunks(program: Program) -> list[dict]:
    return [{"source": c.source, "line": c.line, "label": c.label, "kind": c.kind} for c in program.chunks]


class Submission:
    def __init__(self, path: Path, assignment, worker: client.Worker | None, *, seed: int = 0,
                 notebook=None):
        self.path = Path(path)
        # The notebook as read already (or the LoadError reading it gave), when the caller
        # reads it for something else too (written answers): read once, not twice.
        self._notebook = notebook
        self.assignment = assignment
        self.worker = worker
        self.seed = seed
        self.load_error: LoadError | None = None
        self.program: Program | None = None
        self.session_error: client.SandboxError | None = None
        self.warnings: list[str] = []
        # For the instructor only: e.g. the import of a course module the spec declares
        # missing (`[modules]`), which every student's notebook has and none can fix.
        self.notes: list[str] = []
        self.output: list[str] = []  # what the student's code printed during the current test
        self.channel = "visible"  # which children the running test's calls go to
        self._load = LoadState()
        self._channels: dict[str, Channel] = {}
        self._cache: dict[tuple, Any] = {}
        self._failures: dict[tuple, client.SandboxError] = {}
        self._borrowed: list[tuple[str | None, Any]] = []  # rebuilt models, lent back to POOL at close
        # Replies of visible children, as they came: a hidden test making the very same call
        # takes one (a child that never saw hidden inputs computed it) instead of building a
        # ResNet50 again, and rebuilds its own model from it (the sides never share a model).
        self._visible_replies: dict[tuple, client.CallResult] = {}

    @property
    def session(self) -> client.Session | None:
        """The first child that loaded this submission's definitions (what it reported about
        them and about its confinement holds for every later child)."""
        return self._load.first

    @property
    def digest(self) -> str:
        """The extracted program's content: the same when a submission is graded again,
        different between submissions (it seeds hidden inputs, with the secret)."""
        if self.program is None:
            return ""
        h = hashlib.sha256()
        for c in self.program.chunks:
            h.update(f"{c.label}\0{c.line}\0{c.kind}\0{len(c.source)}\0".encode())
            h.update(c.source.encode("utf-8", "surrogatepass"))
        return h.hexdigest()

    def use_channel(self, visibility: str) -> None:
        """Route the next calls to the visible test's children or to the hidden ones."""
        self.channel = "visible" if str(visibility) == "visible" else "hidden"

    # -- opening
    def open(self) -> "Submission":
        nb = self._notebook if self._notebook is not None else load_notebook(self.path)
        if isinstance(nb, LoadError):
            self.load_error = nb
            return self
        self.program = extract_program(nb, self.assignment.exercises)
        self.warnings.extend(self.program.warnings)
        if self.worker is None:
            return self
        probes = getattr(self.assignment, "probes", None)
        recipe = Recipe(chunks=tuple(_program_chunks(self.program)), support=self.assignment.support_files(),
                        seed=self.seed, timeout=self.assignment.call_timeout, future=tuple(self.program.future),
                        probes=(Path(probes).read_text(encoding="utf-8") if probes else "") + PROBE_SOURCE
                        + (TORCH_PROBE_SOURCE if getattr(self.assignment, "framework", "keras") == "torch" else ""))
        self._channels = {name: Channel(self.worker, recipe, self._load, name) for name in CHANNELS}
        try:
            self._channels["visible"].ensure()
        except client.WorkerFailed as exc:
            # The sandbox itself could not be brought up: the grader's failure, not the student's.
            self.load_error = LoadError(str(self.path), f"could not be graded: {exc}")
            return self
        except client.SandboxError as exc:
            self.session_error = exc
            self.warnings.append(f"your notebook's definitions could not be loaded: {exc}")
            return self
        missing = getattr(self.assignment, "missing_modules", frozenset())
        expected = []
        for err in self.session.load_errors:
            if _declared_missing(err, missing):
                expected.append(err)
            else:
                self.warnings.append(self._describe_load_error(err))
        if expected:
            self.notes.append(_missing_note(expected))
        if self.session.load_output.strip():
            self.output.append(self.session.load_output)
        return self

    @staticmethod
    def _describe_load_error(err: dict) -> str:
        what = "an import" if err.get("kind") == "import" else "a definition"
        first = str(err.get("traceback", "")).strip().splitlines()[-1:] or [f"{err.get('type')}: {err.get('message')}"]
        cell = split_label(str(err.get("label", "")))[0]  # what failed is said next
        return f"{cell}, line {err.get('line')}: {what} failed and was skipped ({first[0]})"

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()
        borrowed, self._borrowed = self._borrowed, []
        for key, model in borrowed:
            POOL.give_back(key, model)
        self._cache.clear()  # replies (up to the reply cap each) must not outlive the grade
        self._visible_replies.clear()

    # -- what tests call
    def call(self, name: str, *args, **kwargs) -> Any:
        """Run `name(*args, **kwargs)` in the sandbox; a returned model comes back rebuilt."""
        return self.call_full(name, *args, **kwargs).value

    def call_full(self, name: str, *args, return_args: bool = False, **kwargs) -> client.CallResult:
        """Results are cached per (function, arguments) within a submission: a student's function
        is deterministic here (each call is seeded the same), and rebuilding a model costs
        ~0.25 s. A cached model is shared between tests, so checks must leave it as they found
        it (grader.checks.models restores weights after every comparison)."""
        return self._cached(("call", name, True), name, args, kwargs, return_args=return_args)

    def probe(self, name: str, *args, **kwargs) -> Any:
        """Run the assignment's probe `name` in the sandbox, beside the student's code: data
        comes back exactly as from `call` (a returned model is rebuilt here)."""
        return self._cached(("probe", name, True), name, args, kwargs).value

    def probe_model(self, name: str, *args, expected: str = "a tf.keras model", weights: bool = True, **kwargs):
        """A probe that must return a Keras model; explained like `model` when it does not."""
        value = self._cached(("probe", name, weights), name, args, kwargs).value
        return self._expect_model(name, value, expected)

    def _cached(self, kind: tuple, name: str, args: tuple, kwargs: dict, *,
                return_args: bool = False) -> client.CallResult:
        key = self._cache_key(kind, args, kwargs)
        if key is not None:
            key = (self.channel, *key)
            if key in self._failures:  # the same call already ended a child: fail the same way at once
                failure = self._failures[key]
                raise type(failure)(str(failure))
            if not return_args and key in self._cache:
                return self._cache[key]
        try:
            result = self._call_uncached(kind, name, args, kwargs, return_args=return_args)
        except _CHILD_ENDED as exc:
            if key is not None:
                self._failures[key] = exc
            raise
        if key is not None and not return_args:
            self._cache[key] = result
        return result

    def _cache_key(self, kind: tuple, args: tuple, kwargs: dict):
        try:  # written as they will be sent: a framework's tensors by their contents
            tree, blob = encode_value((list(args), kwargs), side=self.worker.encoder())
        except TypeError:
            return None
        return kind, repr(tree), hashlib.sha256(blob).hexdigest()

    def _call_uncached(self, kind: tuple, name: str, args: tuple, kwargs: dict, *,
                       return_args: bool = False) -> client.CallResult:
        what, _, weights = kind
        probe = what == "probe"
        self._check_callable(name, probe=probe)
        reply_key = None if return_args else self._cache_key(kind, args, kwargs)
        result = self._visible_replies.get(reply_key) if self.channel == "hidden" else None
        if result is None:
            try:
                result = self._channels[self.channel].call(
                    name, args, kwargs, probe=probe, weights=weights, return_args=return_args,
                    seed=self.seed, timeout=self.assignment.call_timeout)
            except client.StudentCodeError as exc:
                if exc.output:
                    self.output.append(exc.output)
                raise
            if result.output:
                self.output.append(result.output)
            if self.channel == "visible" and reply_key is not None:
                self._visible_replies[reply_key] = result
        value = self._materialize(name, result.value)
        if not probe and getattr(value, "fx_graph", 0) is None:  # a torch module fx cannot trace: its output
            value.origin_call = (self, name, tuple(args), dict(kwargs))  # checks run it where it lives
        return dataclasses.replace(result, value=value)

    def trace(self, name: str, *args, watch: Sequence[str] = (), **kwargs) -> Trace:
        """Call the student's `name(*args, **kwargs)` and record each call of their own
        functions in `watch`: arguments' shapes, and which earlier call's output (and which
        element of it) each argument is. For explaining a composite function, e.g. a U-Net
        whose decoder block is paired with the wrong encoder block; when it raises part-way,
        the calls so far come back with the error (`Trace.error`) instead of an exception."""
        watch = [str(w) for w in ([watch] if isinstance(watch, str) else watch)]
        for function in [name, *watch]:
            self._check_callable(function)
        value = self._cached(("probe", TRACE_PROBE, True), TRACE_PROBE, (name, list(args), kwargs, watch), {}).value
        if isinstance(value, dict) and isinstance(value.get("missing"), str):
            raise client.MissingFunction(f"`{value['missing'][:200]}` is not a function defined in your notebook")
        return parse_trace(name, value)

    def model(self, name: str, *args, expected: str = "a tf.keras model", weights: bool = True, **kwargs):
        """Call a function that must return a Keras model; explain clearly when it does not.
        With `weights=False` only its configuration leaves the sandbox (the rebuilt model has
        placeholder weights, and the child never draws the student's): for checks that
        transplant the reference's weights anyway."""
        value = self._cached(("call", name, weights), name, args, kwargs).value
        return self._expect_model(name, value, expected)

    def variable(self, name: str, *, exercise: str | None = None, marker: str | None = None,
                 expected: str | None = None, weights: bool = True):
        """A value the notebook builds at the top level (`model`, `optimizer`, `model.optimizer`),
        built without the training around it: see grader/run/toplevel_values.py."""
        from grader.run.toplevel_values import read_variable
        return read_variable(self, name, exercise=exercise, marker=marker, expected=expected, weights=weights)

    @staticmethod
    def _expect_model(name: str, value: Any, expected: str):
        if value is None:
            raise CheckFailed(f"`{name}` returned None instead of {expected}.",
                              hint="End the function with `return model`.", diagnosis="returned_none")
        if not _is_keras_model(value):
            shown = value.type_name if isinstance(value, Unsupported) else type(value).__name__
            raise CheckFailed(f"`{name}` returned a {shown}, not {expected}.",
                              hint="Return the model object itself (not its summary, output or history).",
                              diagnosis="not_a_model")
        return value

    def source(self, name: str) -> str:
        from grader.notebook import source_of
        return source_of(self.program, name) if self.program else ""

    def take_output(self) -> str:
        text = "".join(self.output)
        self.output.clear()
        return text

    # -- internals
    def _check_callable(self, name: str, *, probe: bool = False) -> None:
        if not probe and self.program is not None and name in self.program.missing:
            raise client.MissingFunction(self.program.missing[name])
        if self._load.failure is not None:
            raise type(self._load.failure)(str(self._load.failure))
        if self.session_error is not None:
            raise type(self.session_error)(str(self.session_error))
        if self.session is None or not self._channels:
            raise client.SandboxError("no sandbox is running for this submission")
        if probe:
            return  # a probe reports a student name it cannot find itself (MissingFunction)
        if name not in self.session.defined:
            failed = [e for e in self.session.load_errors if split_label(str(e.get("label", "")))[1] == name]
            if failed:
                raise client.MissingFunction(f"`{name}` could not be defined: {self._describe_load_error(failed[0])}")
            raise client.MissingFunction(f"`{name}` is not defined in your notebook")

    def _materialize(self, name: str, value: Any) -> Any:
        if isinstance(value, ModelPayload):
            key = pool_key(value)
            model = POOL.take(key, value)
            if model is not None:
                self._borrowed.append((key, model))
                return model
            try:
                model = rebuild(value)
                self._borrowed.append((key, model))
                return model
            except ModelRejected as exc:
                raise CheckFailed(f"The model returned by `{name}` cannot be graded: {exc}",
                                  diagnosis="model_rejected") from None
        if isinstance(value, TorchModulePayload):  # only torch assignments' children send these
            from grader.frameworks.torch.rebuild import rebuild_torch
            try:
                return rebuild_torch(value)
            except ModelRejected as exc:
                raise CheckFailed(f"The model returned by `{name}` cannot be graded: {exc}",
                                  diagnosis="model_rejected") from None
        if isinstance(value, tuple):
            return tuple(self._materialize(name, v) for v in value)
        if isinstance(value, list):
            return [self._materialize(name, v) for v in value]
        return value


_NO_MODULE = re.compile(r"No module named '([A-Za-z0-9_.]{1,200})'")


def _declared_missing(err: dict, missing: frozenset[str]) -> bool:
    """An import that failed only because a module the spec declares missing is absent
    (`test_utils`, or `test_utils.x` below it); any other failure is the student's to see."""
    if not missing or err.get("kind") != "import" or err.get("type") != "ModuleNotFoundError":
        return False
    found = _NO_MODULE.search(str(err.get("message", "")))
    if found is None:
        return False
    module = found.group(1)
    return any(module == m or module.startswith(m + ".") for m in missing)


def _missing_note(errors: list[dict]) -> str:
    """One line for the instructor: which declared-missing modules the notebook imports, where."""
    where: dict[str, list[str]] = {}
    for err in errors:
        found = _NO_MODULE.search(str(err.get("message", "")))
        module = found.group(1) if found else "?"
        where.setdefault(module, []).append(f"{err.get('label')}, line {err.get('line')}")
    return ("imports of modules the spec declares missing ([modules]) were skipped: "
            + "; ".join(f"`{m}` ({', '.join(places)})" for m, places in where.items()))


def _is_keras_model(value: Any) -> bool:
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.nn.Module):  # a rebuilt PyTorch module
        return True
    return hasattr(value, "layers") and hasattr(value, "get_weights") and hasattr(value, "outputs")
