"""The child side of `submission.trace`: run a student's composite function with their own
watched functions wrapped, and say, as data, which call's output fed which argument.

A composite that does not build (`unet_model` pairing a decoder block with the wrong
encoder block) only says "ValueError: ... incompatible shapes" by itself. Recording each
call of the student's building blocks (their arguments' shapes, and which earlier call's
output, and which element of it, each argument is) lets a test name the mistake in the
student's terms: "upsampling_block call 2 is paired with conv_block call 2's output [1]".

Runs in the sandbox child, called through a built-in probe (`PROBE_SOURCE`): the wrapping
happens on the student's own namespace (the `__globals__` their functions look names up
in) and is undone before the call returns, whatever happened. Only data leaves: names,
numbers, shapes and the error's text. Nothing here runs in the grading process.
"""
from __future__ import annotations

import inspect
import linecache
import types
from typing import Any

from . import hooks

# The built-in probe through which the grading process asks for a trace. Defined in the
# probe source so that it runs with the student's names in scope; never a student's name.
TRACE_PROBE = "grader_trace"
PROBE_SOURCE = f'''

def {TRACE_PROBE}(name, args, kwargs, watch):
    try:  # the sandbox package is `grader_sandbox` where bubblewrap mounts it alone
        from grader_sandbox.trace import trace_call as _trace_call
    except ImportError:
        from grader.sandbox.trace import trace_call as _trace_call
    return _trace_call(globals(), name, args, kwargs, watch)
'''

MAX_CALLS = 2000  # a composite calling its blocks in a runaway loop still answers in bounded size
MAX_HISTORY = 200  # layers walked back from an argument to the watched output it derives from


def _shape(value: Any) -> list | None:
    shape = getattr(value, "shape", None)
    if shape is None or isinstance(value, type):
        return None
    try:
        return [None if d is None else int(d) for d in tuple(shape)][:16]
    except (TypeError, ValueError):
        return None


def _plain(value: Any, depth: int = 0) -> Any:
    """Small data (numbers, text, short lists of them) as is; anything else by its type name."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return value[:200]
    if isinstance(value, (list, tuple)) and len(value) <= 16 and depth < 3:
        items = [_plain(v, depth + 1) for v in value]
        if all(not isinstance(i, dict) for i in items):
            return items
    return {"type": type(value).__name__[:100]}


class _Recorder:
    """The calls so far, and which object each watched call returned."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.counts: dict[str, int] = {}
        self.produced: dict[int, dict] = {}
        self.keep: list[Any] = []  # outputs kept alive so that no id() is reused meanwhile

    def register(self, function: str, number: int, value: Any) -> list[dict]:
        elements = list(enumerate(value)) if isinstance(value, (tuple, list)) and len(value) <= 64 else [(None, value)]
        described = []
        for index, item in elements:
            self.keep.append(item)
            self.produced.setdefault(id(item), {"function": function, "number": number, "element": index})
            described.append({"element": index, "shape": _shape(item)})
        self.keep.append(value)
        return described

    def source(self, value: Any) -> dict | None:
        """The watched call whose output `value` is, or derives from through layers that are
        not watched (`Dropout()(cblock4[0])`): then `via` names those layers."""
        direct = self.produced.get(id(value))
        if direct is not None:
            return dict(direct)
        return self._through_layers(value)

    def _through_layers(self, value: Any) -> dict | None:
        """Back from `value` through the layers that made it, one step at a time: each step is
        the framework's to take (`tensor_parents`, see `hooks`), as only it knows how a
        tensor remembers its layer."""
        frontier, via, steps = [(value, [])], None, 0
        seen: set[int] = set()
        while frontier and steps < MAX_HISTORY:
            tensor, path = frontier.pop(0)
            steps += 1
            if id(tensor) in seen:
                continue
            seen.add(id(tensor))
            try:
                step = hooks.call("tensor_parents", tensor)
            except Exception:  # noqa: BLE001 - an odd tensor ends this path, nothing more
                step = None
            if not step:
                continue
            layer_name, inputs = step
            via = path + [str(layer_name)[:100]]
            for parent in inputs:
                found = self.produced.get(id(parent))
                if found is not None:
                    return {**found, "via": list(reversed(via))[:20]}
                frontier.append((parent, via))
        return None


def _student_labels(namespace: dict) -> set[str]:
    """The notebook cells' labels (the child registers their source in linecache with no
    modification time): the frames an error names come from these only."""
    labels = set()
    for value in list(namespace.values()):
        code = getattr(value, "__code__", None)
        filename = getattr(code, "co_filename", "")
        entry = linecache.cache.get(filename)
        if filename and isinstance(entry, tuple) and len(entry) == 4 and entry[1] is None:
            labels.add(filename)
    return labels


def _wrapper(recorder: _Recorder, function: str, original):
    try:
        signature = inspect.signature(original)
    except (TypeError, ValueError):
        signature = None

    def watched(*args, **kwargs):
        number = recorder.counts.get(function, 0) + 1
        recorder.counts[function] = number
        call = {"function": function, "number": number, "args": _describe_args(recorder, signature, args, kwargs),
                "outputs": [], "raised": False}
        if len(recorder.calls) < MAX_CALLS:
            recorder.calls.append(call)
        try:
            result = original(*args, **kwargs)
        except BaseException:
            call["raised"] = True
            raise
        call["outputs"] = recorder.register(function, number, result)
        return result

    watched.__wrapped__ = original
    return watched


def _describe_args(recorder: _Recorder, signature, args: tuple, kwargs: dict) -> list[dict]:
    named: list[tuple[str, Any]]
    try:
        bound = signature.bind(*args, **kwargs) if signature is not None else None
    except TypeError:
        bound = None
    if bound is not None:
        named = list(bound.arguments.items())
    else:
        named = [(f"arg{i}", a) for i, a in enumerate(args)] + list(kwargs.items())
    described = []
    for name, value in named[:32]:
        shape = _shape(value)
        entry: dict[str, Any] = {"name": str(name)[:100], "shape": shape, "source": recorder.source(value)}
        if shape is None:
            entry["value"] = _plain(value)
        described.append(entry)
    return described


def trace_call(scope: dict, name: str, args: list, kwargs: dict, watch: list) -> dict:
    """Call the student's `name(*args, **kwargs)` with each function in `watch` recorded.

    Returns {"calls": [...], "error": {...} or None, "returned": [...] or None}: every call of
    a watched function in order, even when the composite raised part-way."""
    from . import child

    composite = scope.get(name)
    if not isinstance(composite, types.FunctionType):
        return {"missing": str(name)[:200]}
    namespace = composite.__globals__  # the student's own: where their blocks look each other up
    recorder = _Recorder()
    originals: dict[str, Any] = {}
    for function in dict.fromkeys(str(w) for w in watch):
        original = namespace.get(function)
        if not isinstance(original, types.FunctionType):
            return {"missing": function[:200]}
        originals[function] = original
    labels = _student_labels(namespace)
    error = returned = None
    try:
        for function, original in originals.items():
            namespace[function] = _wrapper(recorder, function, original)
        try:
            value = composite(*args, **dict(kwargs))
            returned = _returned(value)
        except BaseException as exc:  # noqa: BLE001 - the student's failure is the point: data
            error = child._error(exc, labels)
    finally:
        for function, original in originals.items():
            namespace[function] = original
    return {"calls": recorder.calls, "error": error, "returned": returned}


def _returned(value: Any) -> list[dict]:
    """What the composite returned: a model by its outputs' shapes, else by its own shape."""
    outputs = getattr(value, "outputs", None)
    if outputs is not None and hasattr(value, "layers"):
        try:
            return [{"type": type(value).__name__[:100], "shape": _shape(o)} for o in list(outputs)[:64]]
        except TypeError:
            pass
    return [{"type": type(value).__name__[:100], "shape": _shape(value)}]
