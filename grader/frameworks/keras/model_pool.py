"""Rebuilt student models, kept for the next submission with the same architecture.

Rebuilding a model from its configuration costs about 0.1 s of Keras layer construction,
three times per conv_bn submission, while most of a class hands in the very same
architecture (the same layers, in the same order, with the same generated names). A
model another submission has finished with is reused: every variable is overwritten with
this submission's weights, so what the checks see is exactly what a fresh rebuild gives.

Safe because:
- a model is lent to one submission at a time and comes back only when that submission
  is closed, so no two submissions (nor the visible and hidden sides of one) share it;
- the key is the configuration text Keras rebuilt it from (already vetted by
  `grader.frameworks.keras.rebuild`), the Keras version, the disconnected layers and every weight's shape
  and dtype, so the same key means the same model up to its weights;
- only models whose every variable is one of their weights are kept: a layer with state
  of its own (a Dropout's seed generator) would otherwise carry it into the next grade.

The free models hold at most `max_values` numbers in all (16 MiB of float32 by default):
a ResNet50 (23.6 million weights) is never kept, since holding it would cost a grading
process more memory than rebuilding it costs time.
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any

import numpy as np

from grader.sandbox.protocol import ModelPayload


def pool_key(payload: ModelPayload) -> str | None:
    """None for a model that must always be rebuilt (sent without weights: its fresh
    weights come from initialisers, which a reused model would not rerun)."""
    if payload.weightless:
        return None
    h = hashlib.sha256()
    h.update(f"{payload.keras}\0{payload.class_name}\0".encode())
    h.update(payload.config.encode("utf-8", "surrogatepass"))
    h.update(repr(payload.disconnected).encode("utf-8", "surrogatepass"))
    for w in payload.weights:
        h.update(f"\0{tuple(w.shape)}{np.asarray(w).dtype.str}".encode())
    return h.hexdigest()


def reusable(model: Any) -> bool:
    """Everything the model holds is in `get_weights()`, so setting them resets it."""
    try:
        return len(model.variables) == len(model.weights)
    except Exception:  # noqa: BLE001 - a model we cannot inspect is simply not kept
        return False


def _values(model: Any) -> int:
    try:
        return sum(int(np.prod(tuple(w.shape))) for w in model.weights)
    except Exception:  # noqa: BLE001 - uncountable: treated as too large to keep
        return 1 << 62


class ModelPool:
    """Free models by key, the least recently used keys dropped past `capacity` keys or
    `max_values` numbers held."""

    def __init__(self, capacity: int = 32, per_key: int = 2, max_values: int = 4_000_000):
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
        model, _ = models.pop()
        if not models:
            del self._free[key]
        if any(np.asarray(w).dtype.kind not in "fiub" for w in payload.weights):
            return None  # grader.frameworks.keras.rebuild refuses these: let it say why
        try:
            model.set_weights(list(payload.weights))
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
