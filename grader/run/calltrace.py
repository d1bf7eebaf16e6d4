"""What `submission.trace(...)` returns: the calls a student's composite function made to
their own building blocks, and which call's output fed which argument.

Built in the grading process from data the sandbox child sent (`grader.sandbox.trace`),
so every field is checked and bounded here: a child that sends anything else gives an
empty, harmless trace, never an exception in a test.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Source:
    """Which watched call produced an argument: `conv_block` call 2, element 1 of what it
    returned (None when it returned one value). `via`: layers in between, when the
    argument was computed from that output (`Dropout()(cblock4[0])` gives ("Dropout",))."""
    function: str
    number: int
    element: int | None = None
    via: tuple[str, ...] = ()

    def __str__(self) -> str:
        text = f"{self.function} call {self.number}'s output" + ("" if self.element is None else f" [{self.element}]")
        return text + (f" through {' -> '.join(self.via)}" if self.via else "")


@dataclass(frozen=True)
class TracedArg:
    name: str  # the parameter's name in the student's signature ("arg0", ... when it cannot be bound)
    shape: tuple[int | None, ...] | None  # a tensor's shape, None for anything else
    source: Source | None  # the watched call it came from, None for anything else (an Input, a number)
    value: Any = None  # small data passed as is (numbers, text, short lists); None for tensors


@dataclass(frozen=True)
class TracedCall:
    function: str
    number: int  # 1 for the function's first call, 2 for its second ...
    args: tuple[TracedArg, ...]
    outputs: tuple[tuple[int | None, tuple[int | None, ...] | None], ...]  # (element, shape) per returned value
    raised: bool  # the call raised (the composite's error came from inside it)

    def arg(self, name: str) -> TracedArg:
        for a in self.args:
            if a.name == name:
                return a
        raise KeyError(f"{self.function} call {self.number} has no argument {name!r} "
                       f"(it has {', '.join(a.name for a in self.args) or 'none'})")

    def __str__(self) -> str:
        return f"{self.function} call {self.number}"


@dataclass(frozen=True)
class TraceError:
    """The student's error when the composite raised: as `StudentCodeError` reports it."""
    type: str
    message: str
    where: str = ""  # the student's cell ("cell 7 [unet_model]")
    line: int | None = None
    traceback: str = ""


@dataclass(frozen=True)
class Trace:
    function: str
    calls: tuple[TracedCall, ...]
    error: TraceError | None = None
    returned: tuple[tuple[str, tuple[int | None, ...] | None], ...] = ()  # (type, shape) per output
    notes: tuple[str, ...] = field(default=())

    def of(self, function: str) -> tuple[TracedCall, ...]:
        return tuple(c for c in self.calls if c.function == function)

    def call(self, function: str, number: int) -> TracedCall:
        for c in self.calls:
            if c.function == function and c.number == number:
                return c
        raise KeyError(f"{function} was called {len(self.of(function))} time(s), not {number}")

    def pairing(self, function: str, number: int, arg: str) -> str:
        """"upsampling_block call 2's contractive_input is conv_block call 2's output [1]"."""
        a = self.call(function, number).arg(arg)
        fed = str(a.source) if a.source is not None else "not the output of a watched call"
        return f"{function} call {number}'s {arg} is {fed}"


def _shape(value: Any) -> tuple[int | None, ...] | None:
    if not isinstance(value, list) or len(value) > 16:
        return None
    if not all(v is None or (type(v) is int) for v in value):
        return None
    return tuple(value)


def _text(value: Any, limit: int = 200) -> str:
    return str(value)[:limit] if isinstance(value, (str, int, float)) else ""


def _number(value: Any) -> int | None:
    return value if type(value) is int else None


def _source(data: Any) -> Source | None:
    if not isinstance(data, dict) or not _text(data.get("function")) or _number(data.get("number")) is None:
        return None
    via = data.get("via")
    return Source(_text(data["function"]), data["number"], _number(data.get("element")),
                  tuple(_text(v, 100) for v in via[:20]) if isinstance(via, list) else ())


def _small(value: Any, depth: int = 0) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return value[:200]
    if isinstance(value, (list, tuple)) and depth < 3:
        return [_small(v, depth + 1) for v in value[:16]]
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        return f"<{value['type'][:100]}>"
    return None


def _call(data: Any) -> TracedCall | None:
    if not isinstance(data, dict) or not _text(data.get("function")) or _number(data.get("number")) is None:
        return None
    args = []
    for a in data.get("args") if isinstance(data.get("args"), list) else []:
        if isinstance(a, dict) and _text(a.get("name")):
            args.append(TracedArg(_text(a["name"], 100), _shape(a.get("shape")), _source(a.get("source")),
                                  _small(a.get("value"))))
    outputs = tuple((_number(o.get("element")), _shape(o.get("shape")))
                    for o in (data.get("outputs") if isinstance(data.get("outputs"), list) else [])[:64]
                    if isinstance(o, dict))
    return TracedCall(_text(data["function"]), data["number"], tuple(args[:32]), outputs, data.get("raised") is True)


def _error(data: Any) -> TraceError | None:
    if not isinstance(data, dict):
        return None
    return TraceError(_text(data.get("type"), 100) or "Exception", _text(data.get("message"), 2000),
                      _text(data.get("where")), _number(data.get("line")), _text(data.get("traceback"), 8000))


def parse_trace(function: str, data: Any) -> Trace:
    """A `Trace` from what the child sent, checked field by field."""
    if not isinstance(data, dict):
        return Trace(function, (), notes=("the sandbox sent no trace",))
    calls = [c for c in (_call(d) for d in (data.get("calls") if isinstance(data.get("calls"), list) else [])[:2000])
             if c is not None]
    returned = tuple((_text(r.get("type"), 100), _shape(r.get("shape")))
                     for r in (data.get("returned") if isinstance(data.get("returned"), list) else [])[:64]
                     if isinstance(r, dict))
    return Trace(function, tuple(calls), _error(data.get("error")), returned)
