"""A Keras model returned by the student's code, as data.

A model leaves the sandbox as its JSON configuration and its weights in `get_weights()`
order; the grading process rebuilds it from an allow-list (`grader.frameworks.keras.rebuild`).
Two things `to_json()` loses travel beside it: layers created and called on the model's
tensors but never connected to its outputs (so the checks can say "discarded", not
"missing"), and where the student's code created each layer (`provenance`).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from . import provenance

MAX_DISCONNECTED = 100  # layer names listed per returned model (the trusted side checks it again)


def encode_value(value: Any, add_array: Callable[[Any], int], with_weights: bool) -> dict | None:
    """A model as {"$model": ...}; None for anything else (an eager tensor goes through the
    wire's own `.numpy()` rule)."""
    if not (hasattr(value, "to_json") and hasattr(value, "get_weights") and hasattr(value, "layers")):
        return None
    module = type(value).__module__ or ""
    keras = "2" if module.startswith("tf_keras") else "3"
    weights = [add_array(np.asarray(w)) for w in value.get_weights()] if with_weights else []
    unreached = _unreached_layers(value)
    return {"$model": {"config": value.to_json(), "weights": weights, "keras": keras,
                       "class_name": type(value).__name__, "disconnected": unreached,
                       "weightless": not with_weights,
                       "locations": provenance.locations_for(value, [name for name, _ in unreached])}}


def _unreached_layers(model: Any) -> list[list[str]]:
    """[name, class name] of every layer reached forward from the model's own layers
    (through `_outbound_nodes`, Keras 2 and 3 alike) that is not one of them: created
    and called, never connected to the outputs. Best effort: a surprise gives []."""
    try:
        own = list(model.layers)
        seen = {id(layer) for layer in own} | {id(model)}
        frontier, found = own, []
        while frontier and len(found) < MAX_DISCONNECTED:
            for node in list(getattr(frontier.pop(0), "_outbound_nodes", None) or ()):
                layer = getattr(node, "operation", None)
                layer = layer if layer is not None else getattr(node, "layer", None)
                if layer is not None and id(layer) not in seen:
                    seen.add(id(layer))
                    found.append(layer)
                    frontier.append(layer)
        return [[str(getattr(layer, "name", "?"))[:100], type(layer).__name__[:100]]
                for layer in found[:MAX_DISCONNECTED]]
    except Exception:  # noqa: BLE001 - a missing list only weakens the feedback
        return []
