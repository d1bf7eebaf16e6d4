"""A returned Keras model as the grading process receives it: data, checked for shape.

The child writes `{"$model": ...}` (`encode`); the wire (`grader.sandbox.protocol`) hands
the body here, in the grading process, with a way to fetch the arrays it refers to. Only
the message's form is checked here (types, counts, lengths); what the configuration says
is vetted by `grader.frameworks.keras.rebuild` before anything is built from it. Imports
nothing but NumPy and this package, like the rest of it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .encode import MAX_DISCONNECTED
from .provenance import MAX_LABEL, MAX_LINE, MAX_LOCATIONS, MAX_NAME, MAX_SOURCE


@dataclass(frozen=True)
class ModelPayload:
    """A Keras model as pure data: its JSON config and its weights, in `get_weights()` order.

    The grading process turns this back into a model only through `grader.frameworks.keras.rebuild`, which
    refuses anything outside an allow-list of built-in layers.
    """

    config: str
    weights: tuple[np.ndarray, ...]
    keras: str  # "3" or "2" (tf_keras)
    class_name: str
    # Layers the student's code created and called on the model's tensors but whose
    # results never reach its outputs, as (name, class name). Keras leaves them out of
    # `model.layers` and `to_json()`, so without this list they would vanish here and the
    # checks could only call them "missing".
    disconnected: tuple[tuple[str, str], ...] = ()
    # Sent without its weights (asked for with `weights=False`): a check that transplants the
    # reference's weights anyway need not ship millions of numbers out of the sandbox.
    weightless: bool = False
    # Where the student's code created each layer, as (layer name, cell label, line, source
    # line), recorded in the child (`provenance`); feedback points at the student's code.
    locations: tuple[tuple[str, str, int, str], ...] = ()


def decode_model(body: Any, array: Callable[[Any], np.ndarray]) -> ModelPayload:
    """ValueError for a body that is not what `encode` writes."""
    if not isinstance(body, dict):
        raise ValueError("malformed model in reply")
    weights = body.get("weights")
    if not isinstance(body.get("config"), str) or not isinstance(weights, list):
        raise ValueError("malformed model in reply")
    unreached = body.get("disconnected") or []
    if not (isinstance(unreached, list) and len(unreached) <= MAX_DISCONNECTED
            and all(isinstance(d, list) and len(d) == 2 and all(isinstance(s, str) for s in d)
                    for d in unreached)):
        raise ValueError("malformed model in reply")
    return ModelPayload(config=body["config"], weights=tuple(array(w) for w in weights),
                        keras=str(body.get("keras", "3")), class_name=str(body.get("class_name", "")),
                        disconnected=tuple((d[0][:100], d[1][:100]) for d in unreached),
                        weightless=body.get("weightless") is True and not weights,
                        locations=_locations(body.get("locations")))


def _locations(value: Any) -> tuple[tuple[str, str, int, str], ...]:
    """Layer locations are bounded data: a list that is not one, or too long, is refused;
    a malformed entry is dropped (a location only improves the feedback)."""
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_LOCATIONS:
        raise ValueError("malformed model in reply")
    return tuple((e[0], e[1], e[2], e[3]) for e in value if _valid_location(e))


def _valid_location(entry: Any) -> bool:
    """One received [layer name, cell label, line, source], within the child's own bounds."""
    return (isinstance(entry, list) and len(entry) == 4
            and isinstance(entry[0], str) and 0 < len(entry[0]) <= MAX_NAME
            and isinstance(entry[1], str) and 0 < len(entry[1]) <= MAX_LABEL
            and type(entry[2]) is int and 0 < entry[2] <= MAX_LINE
            and isinstance(entry[3], str) and len(entry[3]) <= MAX_SOURCE
            and not any(ord(c) < 32 for c in entry[1] + entry[3]))


__all__ = ["ModelPayload", "decode_model"]
