"""`submission.variable("model")`: a value the notebook builds at the top level of a cell
that also trains it, graded without the training.

The statements that build it (`grader.notebook.toplevel`) run in a child of their own,
after the submission's usual definitions: the default selection, and so every other
test's grade, is unchanged. A built-in probe reads the value there and only data comes
back: a model as the usual model payload (rebuilt from allow-listed layers), an optimizer
as its class, hyperparameters and parameter shapes (`grader.checks.optimizer`), anything
else as arrays, numbers and text. Values take no inputs from a test, so one child serves
visible and hidden tests alike; it never sees a hidden input.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from grader.checks import CheckFailed
from grader.checks.optimizer import parse_optimizer
from grader.frameworks.keras.optimizer import KERAS_OPTIMIZER_SOURCE
from grader.frameworks.torch.optimizer import TORCH_OPTIMIZER_SOURCE
from grader.notebook import LoadError, load_notebook
from grader.notebook.toplevel import ValueSlice, select_value
from grader.sandbox import client
from grader.sandbox.channel import Channel, LoadState

VALUE_PROBE = "grader_toplevel_value"
VALUE_PROBE_SOURCE = f'''

def _grader_plain(value):
    import sys
    if value is None or isinstance(value, (bool, int, float, str)):
        return value if not isinstance(value, str) else value[:200]
    if isinstance(value, (list, tuple)) and len(value) <= 16:
        return [_grader_plain(v) for v in value]
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    try:
        import numpy
        if isinstance(value, numpy.generic):
            return value.item()
    except ImportError:
        pass
    return "<" + type(value).__name__[:100] + ">"
{TORCH_OPTIMIZER_SOURCE}
{KERAS_OPTIMIZER_SOURCE}

def {VALUE_PROBE}(path):
    scope = globals()
    if path[0] not in scope:
        return {{"missing": path[0]}}
    value = scope[path[0]]
    for attribute in path[1:]:
        value = getattr(value, attribute)
    described = _grader_torch_optimizer(value, scope, _grader_plain)
    if described is None:
        described = _grader_keras_optimizer(value, _grader_plain)
    if described is not None:
        return {{"optimizer": described}}
    return {{"value": value}}
'''


@dataclasses.dataclass
class _Values:
    """Per submission: the notebook, one child per distinct slice, values already read."""

    notebook: Any = None
    channels: dict[tuple, Channel] = dataclasses.field(default_factory=dict)
    cache: dict[tuple, Any] = dataclasses.field(default_factory=dict)
    chosen: dict[tuple, ValueSlice] = dataclasses.field(default_factory=dict)


def read_variable(submission, name: str, *, exercise: str | None = None, marker: str | None = None,
                  expected: str | None = None, weights: bool = True) -> Any:
    """The top-level value `name` (dotted for an attribute of it: `"model.optimizer"`) as the
    notebook built it in the binding `exercise`/`marker` choose (see `select_value`)."""
    path = name.split(".")
    if not path or not all(p.isidentifier() for p in path):
        raise ValueError(f"not a variable name: {name!r}")
    state = _state(submission)
    key = (name, exercise, marker, weights)
    if key in state.cache:
        value = state.cache[key]
    else:
        value = state.cache[key] = _read(submission, state, key, path, exercise, marker, weights)
    if isinstance(value, BaseException):
        raise value
    if expected is not None and value is None:
        where = _where(state, key)
        raise CheckFailed(f"`{name}`{where} is still None: the model is not built yet.",
                          hint=f"Assign the model to `{name}` in that cell.", diagnosis="returned_none")
    if expected is not None:
        return submission._expect_model(name, value, expected)
    return value


def _where(state: _Values, key: tuple) -> str:
    chosen = state.chosen.get(key)
    return f" ({chosen.where}: `{chosen.source.splitlines()[0][:60]}`)" if chosen is not None and chosen.where else ""


def _state(submission) -> _Values:
    state = submission.__dict__.get("_toplevel_values")
    if state is None:
        state = submission.__dict__["_toplevel_values"] = _Values()
    return state


def _read(submission, state: _Values, key: tuple, path: list[str], exercise, marker, weights) -> Any:
    """The value, or the CheckFailed / sandbox error to raise (remembered like a value: the
    same request fails the same way without another child)."""
    if state.notebook is None:
        state.notebook = submission._notebook if submission._notebook is not None else load_notebook(submission.path)
    if isinstance(state.notebook, LoadError) or submission.program is None:
        return client.SandboxError("the notebook could not be read")
    chosen = select_value(state.notebook, path[0], exercise=exercise, marker=marker,
                          graded=submission.assignment.exercises)
    state.chosen[key] = chosen
    if chosen.problem:
        return CheckFailed(f"`{path[0]}` could not be built: {chosen.problem}.", diagnosis="value_missing")
    try:
        channel = _channel(submission, state, chosen)
        session = channel.ensure(f"`{path[0]}`")
        failed = _failure(chosen, session.load_errors)
        if failed:
            return failed
        result = channel.call(VALUE_PROBE, [path], {}, probe=True, weights=weights, seed=submission.seed,
                              timeout=submission.assignment.call_timeout)
    except client.StudentCodeError as exc:
        return CheckFailed(f"Reading `{'.'.join(path)}` ({chosen.where}) raised {exc.type}: {exc.detail}",
                           diagnosis="value_error")
    except client.SandboxError as exc:
        return exc
    reply = result.value
    if not isinstance(reply, dict):
        return client.SandboxError("the sandbox sent a malformed value")
    if "missing" in reply:
        return CheckFailed(f"The statements that build `{path[0]}` ({chosen.where}) ran but did not define it.",
                           diagnosis="value_missing")
    if "optimizer" in reply:
        optimizer = parse_optimizer(reply["optimizer"])
        return optimizer if optimizer is not None else client.SandboxError("the sandbox sent a malformed optimizer")
    value = reply.get("value")
    try:
        return submission._materialize(path[0], value)
    except CheckFailed as exc:
        return exc


def _channel(submission, state: _Values, chosen: ValueSlice) -> Channel:
    key = tuple((c.cell, c.line) for c in chosen.chunks)
    channel = state.channels.get(key)
    if channel is None:
        base = submission._channels["visible"].recipe if submission._channels else None
        if base is None:
            raise client.SandboxError("no sandbox is running for this submission")
        extra = tuple({"source": c.source, "line": c.line, "label": c.label, "kind": c.kind} for c in chosen.chunks)
        recipe = dataclasses.replace(base, chunks=base.chunks + extra, probes=(base.probes or "") + VALUE_PROBE_SOURCE)
        channel = state.channels[key] = Channel(submission.worker, recipe, LoadState(), "toplevel")
        # closed with the submission's own children
        submission._channels[f"toplevel:{len(state.channels)}"] = channel
    return channel


def _failure(chosen: ValueSlice, errors: list[dict]) -> CheckFailed | None:
    """The first of the slice's own statements that raised: the value cannot be trusted."""
    mine = {(c.label, c.line): c for c in chosen.own}
    for err in errors:
        chunk = mine.get((err.get("label"), err.get("line")))
        if chunk is None:
            continue
        first = chunk.source.splitlines()[0] if chunk.source else ""
        shown = first if len(first) <= 70 else first[:69] + "…"
        if err.get("not_implemented"):
            return CheckFailed(f"`{chosen.name}` is not written yet: {chunk.label}, line {chunk.line} raises "
                               "NotImplementedError.", diagnosis="not_implemented")
        message = str(err.get("message", ""))[:300]
        why = next((n for n in chosen.notes if err.get("type") == "NameError" and n.split("`")[1:2]
                    and f"'{n.split('`')[1]}'" in message), "")
        return CheckFailed(
            f"Building `{chosen.name}` failed: {chunk.label}, line {chunk.line} (`{shown}`) raised "
            f"{err.get('type')}: {message}" + (f". {why[0].upper()}{why[1:]}." if why else ""),
            hint="Run that cell again from a fresh kernel: it must work without the cells that train.",
            diagnosis="value_error")
    return None
