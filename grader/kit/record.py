"""Recording the reference's answers for a kit, while the visible tests run at export time.

`recording()` makes every grading in this process hand tests a `Recorder` in place of the
reference: it answers from the real reference and writes down each (function, arguments)
-> value, per test, so `grader.kit.safety` can compare two runs and `export` can write
them. Nothing is recorded outside an export.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from grader.kit import model_records
from grader.kit.plain import NotRecordable
from grader.kit.replay import current_test
from grader.kit.torch_models import is_torch_module_class
from grader.kit.values import Store, call_key, describe_call


@dataclass
class Recording:
    store: Store
    calls: dict[str, dict] = field(default_factory=dict)  # key -> {function, call, value, tests}
    attributes: dict[str, Any] = field(default_factory=dict)
    functions: set[str] = field(default_factory=set)
    keys_by_test: dict[str, set[str]] = field(default_factory=dict)  # for the current run
    problems: dict[str, list[str]] = field(default_factory=dict)  # test -> why it is not kit-safe
    live: dict[int, Any] = field(default_factory=dict)  # id(reference model) -> its LiveModel, for every run
    answers: list = field(default_factory=list)  # (function, args, kwargs, value) of each recorded call
    models: dict[str, Any] = field(default_factory=dict)  # call key -> the model view that call returned

    def problem(self, test: str, why: str) -> None:
        self.problems.setdefault(test, [])
        if why not in self.problems[test]:
            self.problems[test].append(why)


ACTIVE: Recording | None = None


@contextmanager
def recording(folder: Path) -> Iterator[Recording]:
    global ACTIVE
    ACTIVE = Recording(Store(folder))
    try:
        yield ACTIVE
        ACTIVE.store.finish()
    finally:
        ACTIVE = None


class Recorder:
    """Answers like the reference (through the grader's model cache) and records each answer."""

    def __init__(self, inner: Any, rec: Recording):
        self._inner = inner
        self._rec = rec

    def _seen(self, value: Any) -> Any:
        """A reference model is handed to tests as a LiveModel: the tests read it as they
        would the model, and the kit learns which outputs and weights they read."""
        if not model_records.is_model(value):
            return value
        if id(value) not in self._rec.live:
            self._rec.live[id(value)] = model_records.live_model(value)
        return self._rec.live[id(value)]

    def __getattr__(self, name: str):
        attr = getattr(self._inner, name)
        test = current_test()
        if name.startswith("_"):
            self._rec.problem(test, f"it reads reference.{name}, a private name")
            return attr
        if (isinstance(attr, type) and not is_torch_module_class(attr)) or not callable(attr):
            try:
                if name not in self._rec.attributes:
                    self._rec.attributes[name] = self._rec.store.encode(attr)
            except NotRecordable as exc:
                self._rec.problem(test, f"reference.{name} is {exc}, which a kit cannot hold")
            return attr

        def call(*args, **kwargs):
            test_now = current_test()
            try:
                key = call_key(name, args, kwargs)
            except NotRecordable as exc:
                self._rec.problem(test_now, f"it calls reference.{name} with {exc}")
                return attr(*args, **kwargs)
            model = self._rec.models.get(key)
            # A model is built once per call and kept, as the full grader keeps Keras ones:
            # a PyTorch reference built again would have other random weights, and the
            # kit holds one model per call.
            value = model if model is not None else self._seen(attr(*args, **kwargs))
            if model_records.is_live(value):
                self._rec.models[key] = value
            self._rec.functions.add(name)
            self._rec.keys_by_test.setdefault(test_now, set()).add(key)
            entry = self._rec.calls.get(key)
            if entry is None:
                try:
                    tree = self._rec.store.encode(value)
                except NotRecordable as exc:
                    self._rec.problem(test_now, f"reference.{name} returns {exc}, which a kit cannot hold")
                    return value
                entry = self._rec.calls[key] = {"function": name, "call": describe_call(name, args, kwargs),
                                                "value": tree, "tests": []}
                # kept in memory only, for the leak scan's search for functions that answer alike
                self._rec.answers.append((name, args, kwargs, value))
            if test_now not in entry["tests"]:
                entry["tests"].append(test_now)
            return value

        return call


def reference_for(ctx: Any) -> Any | None:
    """What the plugin's `reference` fixture hands tests instead of the reference module:
    a Replay in a kit, a Recorder during an export, else None (the module itself)."""
    from grader.kit.replay import Replay, is_recording

    path = Path(ctx.assignment.reference)
    if is_recording(path):
        return Replay.open(path)
    if ACTIVE is not None:
        return Recorder(ctx.reference_from_source(), ACTIVE)
    return None
