"""A submitted notebook, opened for grading: what was located in it, the sandbox session
running its definitions, and calls whose results come back as checked data.

This is what an assignment's tests see as the `submission` fixture. Every value it hands
to a test is data (arrays, numbers) or a model rebuilt from allow-listed layers.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from grader.checks import CheckFailed
from grader.notebook import LoadError, Program, extract_program, load_notebook
from grader.rebuild import ModelRejected, rebuild
from grader.sandbox import client
from grader.sandbox.protocol import ModelPayload, Unsupported


def _program_chunks(program: Program) -> list[dict]:
    return [{"source": c.source, "line": c.line, "label": c.label, "kind": c.kind} for c in program.chunks]


class Submission:
    def __init__(self, path: Path, assignment, worker: client.Worker | None, *, seed: int = 0):
        self.path = Path(path)
        self.assignment = assignment
        self.worker = worker
        self.seed = seed
        self.load_error: LoadError | None = None
        self.program: Program | None = None
        self.session: client.Session | None = None
        self.session_error: client.SandboxError | None = None
        self.warnings: list[str] = []
        self.output: list[str] = []  # what the student's code printed during the current test
        self._cache: dict[tuple, Any] = {}

    # -- opening
    def open(self) -> "Submission":
        nb = load_notebook(self.path)
        if isinstance(nb, LoadError):
            self.load_error = nb
            return self
        self.program = extract_program(nb, self.assignment.exercises)
        self.warnings.extend(self.program.warnings)
        if self.worker is None:
            return self
        try:
            self.session = self.worker.session(_program_chunks(self.program),
                                               support=self.assignment.support_files(), seed=self.seed,
                                               timeout=self.assignment.call_timeout,
                                               future=self.program.future)
        except client.WorkerFailed as exc:
            # The sandbox itself could not be brought up: the grader's failure, not the student's.
            self.load_error = LoadError(str(self.path), f"could not be graded: {exc}")
            return self
        except client.SandboxError as exc:
            self.session_error = exc
            self.warnings.append(f"your notebook's definitions could not be loaded: {exc}")
            return self
        for err in self.session.load_errors:
            self.warnings.append(self._describe_load_error(err))
        if self.session.load_output.strip():
            self.output.append(self.session.load_output)
        return self

    @staticmethod
    def _describe_load_error(err: dict) -> str:
        what = "an import" if err.get("kind") == "import" else "a definition"
        first = str(err.get("traceback", "")).strip().splitlines()[-1:] or [f"{err.get('type')}: {err.get('message')}"]
        return f"{err.get('label')}, line {err.get('line')}: {what} failed and was skipped ({first[0]})"

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None

    # -- what tests call
    def call(self, name: str, *args, **kwargs) -> Any:
        """Run `name(*args, **kwargs)` in the sandbox; a returned model comes back rebuilt."""
        return self.call_full(name, *args, **kwargs).value

    def call_full(self, name: str, *args, return_args: bool = False, **kwargs) -> client.CallResult:
        """Results are cached per (function, arguments) within a submission: a student's function
        is deterministic here (each call is seeded the same), and rebuilding a model costs
        ~0.25 s. A cached model is shared between tests, so checks must leave it as they found
        it (grader.checks.models restores weights after every comparison)."""
        key = self._cache_key(name, args, kwargs) if not return_args else None
        if key is not None and key in self._cache:
            return self._cache[key]
        result = self._call_uncached(name, *args, return_args=return_args, **kwargs)
        if key is not None:
            self._cache[key] = result
        return result

    @staticmethod
    def _cache_key(name: str, args: tuple, kwargs: dict):
        import hashlib
        from grader.sandbox.protocol import encode_value
        try:
            tree, blob = encode_value((list(args), kwargs))
        except TypeError:
            return None
        return name, repr(tree), hashlib.sha256(blob).hexdigest()

    def _call_uncached(self, name: str, *args, return_args: bool = False, **kwargs) -> client.CallResult:
        self._check_callable(name)
        assert self.session is not None
        try:
            result = self.session.call(name, *args, return_args=return_args, seed=self.seed,
                                       timeout=self.assignment.call_timeout, **kwargs)
        except client.StudentCodeError as exc:
            if exc.output:
                self.output.append(exc.output)
            raise
        if result.output:
            self.output.append(result.output)
        return dataclasses.replace(result, value=self._materialize(name, result.value))

    def model(self, name: str, *args, expected: str = "a tf.keras model", **kwargs):
        """Call a function that must return a Keras model; explain clearly when it does not."""
        value = self.call(name, *args, **kwargs)
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
    def _check_callable(self, name: str) -> None:
        if self.program is not None and name in self.program.missing:
            raise client.MissingFunction(self.program.missing[name])
        if self.session_error is not None:
            raise type(self.session_error)(str(self.session_error))
        if self.session is None:
            raise client.SandboxError("no sandbox is running for this submission")
        if self.session.dead_reason:
            raise client.SandboxCrashed(self.session.dead_reason)
        if name not in self.session.defined:
            failed = [e for e in self.session.load_errors if name in str(e.get("label", ""))]
            if failed:
                raise client.MissingFunction(f"`{name}` could not be defined: {self._describe_load_error(failed[0])}")
            raise client.MissingFunction(f"`{name}` is not defined in your notebook")

    def _materialize(self, name: str, value: Any) -> Any:
        if isinstance(value, ModelPayload):
            try:
                return rebuild(value)
            except ModelRejected as exc:
                raise CheckFailed(f"The model returned by `{name}` cannot be graded: {exc}",
                                  diagnosis="model_rejected") from None
        if isinstance(value, tuple):
            return tuple(self._materialize(name, v) for v in value)
        if isinstance(value, list):
            return [self._materialize(name, v) for v in value]
        return value


def _is_keras_model(value: Any) -> bool:
    return hasattr(value, "layers") and hasattr(value, "get_weights") and hasattr(value, "outputs")
