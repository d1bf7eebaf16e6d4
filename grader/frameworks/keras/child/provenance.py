"""Where the student's code created each Keras layer, recorded in the sandbox child.

Feedback should point at the student's own code ("the Conv2D created in cell In [12],
line 14 (`X = Conv2D(F2, ...)`)"), not at names Keras made up (`conv2d_6`). Only the child
knows where a layer was created, so before any student code runs it wraps the base
`Layer.__init__` of the Keras packages already imported (Keras 3, and tf_keras when
the worker preloaded it for a keras = "2" assignment): each new layer's name is mapped
to the innermost frame of the student's cells on the stack. Layer names survive
`to_json()` and the rebuild in the grading process, so the map travels with the
model payload (`payload.ModelPayload.locations`) and is attached to the rebuilt model.

Only data leaves: (name, cell label, line, trimmed source line), bounded in count and
length here and validated again on the trusted side. A layer created outside the
student's cells (inside Keras, or instructor code) gets no location: the checks then
fall back to describing it by position.

Mounted with the rest of this package in the sandbox: it imports nothing from the rest of
`grader`. The limits below are checked again on the trusted side (`grader.sandbox.protocol`).
"""
from __future__ import annotations

import inspect
import linecache
import sys
from typing import Any

MAX_LOCATIONS = 5000  # entries kept (the most recent) and sent per model
MAX_NAME = 200
MAX_LABEL = 200  # a cell's name (grader.notebook.cellnames) and " [function]"
MAX_SOURCE = 120
MAX_LINE = 10_000_000
_MAX_FRAMES = 200  # stack frames searched per layer

_RECORDED: dict[str, tuple[str, int, str]] = {}
_LABELS: set[str] = set()


def trim(source: str) -> str:
    """One line of code, whitespace collapsed, cut with an ellipsis at MAX_SOURCE."""
    text = "".join(c if c.isprintable() else "?" for c in " ".join(source.split()))
    return text if len(text) <= MAX_SOURCE else text[:MAX_SOURCE - 3].rstrip() + "..."


def _student_frame(labels: set[str]) -> tuple[str, int] | None:
    frame = sys._getframe(2)
    for _ in range(_MAX_FRAMES):
        if frame is None:
            return None
        if frame.f_code.co_filename in labels:
            return frame.f_code.co_filename, frame.f_lineno
        frame = frame.f_back
    return None


def _record(layer: Any) -> None:
    try:
        where = _student_frame(_LABELS)
        if where is None:
            return
        label, line = where
        name = str(getattr(layer, "name", ""))[:MAX_NAME]
        if not name:
            return
        _RECORDED.pop(name, None)  # the latest creation wins, and moves to the end
        _RECORDED[name] = (label[:MAX_LABEL], int(line), trim(linecache.getline(label, line)))
        if len(_RECORDED) > MAX_LOCATIONS:
            _RECORDED.pop(next(iter(_RECORDED)))
    except Exception:  # noqa: BLE001 - a location is a nicety; never break the student's model
        pass


def _wrap(cls: Any) -> bool:
    original = cls.__dict__.get("__init__")
    if original is None or getattr(original, "_grader_provenance", False):
        return False

    def __init__(self, *args, **kwargs):  # noqa: N807 - replaces Layer.__init__
        original(self, *args, **kwargs)
        _record(self)

    __init__._grader_provenance = True  # type: ignore[attr-defined]
    __init__.__wrapped__ = original  # type: ignore[attr-defined]
    # Keras 3 binds a layer's constructor arguments with inspect.getfullargspec(cls.__init__),
    # which ignores __wrapped__: a subclass without its own __init__ then failed with KeyError.
    __init__.__signature__ = inspect.signature(original)  # type: ignore[attr-defined]
    cls.__init__ = __init__
    return True


def install(labels: set[str]) -> list[str]:
    """Start recording layers created from the cells named `labels` (the compile()
    filenames of the student's chunks). Returns the packages patched."""
    _LABELS.clear()
    _LABELS.update(labels)
    patched = []
    for package in ("keras", "tf_keras"):
        module = sys.modules.get(package)
        layer_cls = getattr(getattr(module, "layers", None), "Layer", None) if module else None
        if layer_cls is not None and _wrap(layer_cls):
            patched.append(package)
    return patched


def _layer_names(model: Any, limit: int) -> list[str]:
    """Names of the model's layers, nested models' layers included, at most `limit`."""
    names, stack = [], [iter(getattr(model, "layers", ()) or ())]
    while stack and len(names) < limit:
        layer = next(stack[-1], None)
        if layer is None:
            stack.pop()
            continue
        names.append(str(getattr(layer, "name", "")))
        inner = getattr(layer, "layers", None)
        if inner and len(stack) < 16:
            stack.append(iter(inner))
    return names


def locations_for(model: Any, extra_names: list[str] | tuple = ()) -> list[list]:
    """[name, cell label, line, source] for the model's layers (and `extra_names`, e.g.
    its disconnected layers) that were recorded; [] outside the sandbox child."""
    if not _RECORDED:
        return []
    try:
        names = _layer_names(model, MAX_LOCATIONS) + [str(n) for n in extra_names]
    except Exception:  # noqa: BLE001 - best effort
        return []
    out, seen = [], set()
    for name in names:
        entry = _RECORDED.get(name)
        if entry is not None and name not in seen and len(out) < MAX_LOCATIONS:
            seen.add(name)
            out.append([name, *entry])
    return out


__all__ = ["MAX_LOCATIONS", "install", "locations_for", "trim"]
