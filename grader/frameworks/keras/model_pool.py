"""Rebuilt student models, kept for the next submission with the same architecture.

Rebuilding a model from its configuration costs about 0.1 s of Keras layer construction,
three times per conv_bn submission, and 0.9 s of CPU for a ResNet50 (half of it running
initializers for 23.6 million weights), while most of a class hands in the very same
architecture (the same layers, in the same order, with the same generated names). A
model another submission has finished with is reused: every variable is overwritten with
this submission's weights, so what the checks see is exactly what a fresh rebuild gives.

A model sent without its weights (`weights=False`: a U-Net, a ResNet50) is rebuilt with
placeholder weights (those the initializer would draw at random hold no memory and read as
zeros, the others their constants), which no check reads (the output checks read the reference's in their
place); reused, it keeps the weights of its first rebuild, which the checks leave as they
found them (grader.frameworks.keras.models).

Safe because:
- a model is lent to one submission at a time and comes back only when that submission
  is closed, so no two submissions (nor the visible and hidden sides of one) share it;
- the key is the configuration text Keras rebuilt it from (already vetted by
  `grader.frameworks.keras.rebuild`), the Keras version, the disconnected layers, whether
  weights came with it, and every weight's shape and dtype, so the same key means the
  same model up to its weights;
- only models whose every variable is one of their weights, or the state of a random
  seed generator (a Dropout's), are kept; those seed states are put back to the values
  the rebuild gave them before the model is lent again, so a dropout mask drawn for one
  submission never shifts the next one's.

The free models hold at most `max_values` numbers in all (200 MB of float32 by default):
the visible and the hidden tests' copies of a ResNet50 (23.6 million weights each) fit,
and keeping them costs a grading process no more than grading a submission does, since
both exist while it is graded anyway.
"""
from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from typing import Any

import numpy as np

from grader.frameworks.keras.child.payload import ModelPayload

SEED_STATES = "_grader_seed_states"  # set by grader.frameworks.keras.rebuild: [(variable, value at rebuild)]


def pool_key(payload: ModelPayload) -> str:
    h = hashlib.sha256()
    h.update(f"{payload.keras}\0{payload.class_name}\0{'weightless' if payload.weightless else 'weights'}\0".encode())
    h.update(payload.config.encode("utf-8", "surrogatepass"))
    h.update(repr(payload.disconnected).encode("utf-8", "surrogatepass"))
    for w in payload.weights:
        h.update(f"\0{tuple(w.shape)}{np.asarray(w).dtype.str}".encode())
    return h.hexdigest()


def reusable(model: Any) -> bool:
    """Everything the model holds is in `get_weights()`, or is a seed state the rebuild
    recorded (put back on the next loan), so setting the weights resets it."""
    try:
        weights = {id(w) for w in model.weights}
        extra = [v for v in model.variables if id(v) not in weights]
    except Exception:  # noqa: BLE001 - a model we cannot inspect is simply not kept
        return False
    if not extra:
        return True
    recorded = getattr(model, SEED_STATES, None)
    return isinstance(recorded, list) and {id(v) for v in extra} == {id(v) for v, _ in recorded}


def _values(model: Any) -> int:
    """Counted once per model (a ResNet50's 320 shapes cost ~20 ms on every give-back):
    a model's weight shapes never change."""
    counted = getattr(model, "_grader_values", None)
    if isinstance(counted, int):
        return counted
    try:
        counted = sum(math.prod(tuple(w.shape)) for w in model.weights)
    except Exception:  # noqa: BLE001 - uncountable: treated as too large to keep
        return 1 << 62
    object.__setattr__(model, "_grader_values", int(counted))  # outside Keras' attribute tracking
    return int(counted)


def _reset_seed_states(model: Any) -> None:
    for variable, value in getattr(model, SEED_STATES, None) or []:
        variable.assign(value)


class ModelPool:
    """Free models by key, the least recently used keys dropped past `capacity` keys or
    `max_values` numbers held."""

    def __init__(self, capacity: int = 32, per_key: int = 2, max_values: int = 50_000_000):
        self.capacity = capacity
        self.per_key = per_key
        self.max_values = max_values
        self._free: OrderedDict[str, list[tuple[Any, int]]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def take(self, key: str | None, payload: ModelPayload) -> Any | None:
        """A free model for `key` holding `payload`'s weights and locations, or None."""
        models = self._free.get(key) if key is not None else None
        if not models:
            self.misses += key is not None
            return None
        # First given back, first lent: a submission's first model of this key is lent
        # the model the previous one's first call had, so each keeps being called the same
        # way and runs its traced functions (grader.frameworks.keras.forward).
        model, _ = models.pop(0)
        if not models:
            del self._free[key]
        if any(np.asarray(w).dtype.kind not in "fiub" for w in payload.weights):
            return None  # grader.frameworks.keras.rebuild refuses these: let it say why
        try:
            if not payload.weightless:
                model.set_weights(list(payload.weights))
            _reset_seed_states(model)
        except Exception:  # noqa: BLE001 - fall back to a fresh rebuild, which explains any problem
            return None
        object.__setattr__(model, "_grader_locations",
                           {n: (cell, line, src) for n, cell, line, src in payload.locations})
        self.hits += 1
        return model

    def give_back(self, key: str | None, model: Any) -> None:
        if key is None or not reusable(model):
            return
        size = _values(model)
        if size > self.max_values:
            return
        models = self._free.setdefault(key, [])
        self._free.move_to_end(key)
        if len(models) < self.per_key:
            models.append((model, size))
        while len(self._free) > self.capacity or (len(self._free) > 1 and self.held() > self.max_values):
            self._free.popitem(last=False)

    def held(self) -> int:
        """How many numbers the free models hold."""
        return sum(size for models in self._free.values() for _, size in models)

    def clear(self) -> None:
        self._free.clear()


POOL = ModelPool()
