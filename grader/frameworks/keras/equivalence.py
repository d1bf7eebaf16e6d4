"""The Keras adapter's numerical test of two layers (`grader.checks.equivalence` says when
it is asked): fresh copies built from the layers' configs, with the same random weights,
run on random inputs of a wide range of magnitudes in inference and training mode.

The configs come from models `grader.frameworks.keras.rebuild` already vetted (allow-listed
built-in layers) or from the reference; no student code runs here.
"""
from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

import numpy as np

# Largest input (per example) built for a numerical test; bigger layers are compared by spec.
MAX_ELEMENTS = 1 << 18
_CACHE_SIZE = 512
_VERDICTS: OrderedDict[tuple, bool] = OrderedDict()


def _config(layer: Any) -> dict | None:
    try:
        cfg = dict(layer.get_config())
    except Exception:  # noqa: BLE001 - a layer without a config cannot be rebuilt: not the same
        return None
    cfg.pop("name", None)
    if "activation" in cfg:  # a Conv's own activation is a node of its own, compared as such
        cfg["activation"] = "linear"
    return cfg


def numerically_same(layer_a: Any, layer_b: Any, input_shape: tuple | None) -> bool:
    """Fresh copies of both layers, built at `input_shape` (batch of 2) with the same
    random weights, agree on random inputs in inference and training mode. Remembered per
    pair of configs and shape: a class hands in the same few variants again and again."""
    if layer_a is None or layer_b is None or type(layer_a) is not type(layer_b):
        return False
    if input_shape is None or any(d is None for d in input_shape[1:]):
        return False
    shape = (2, *(int(d) for d in input_shape[1:]))
    if int(np.prod(shape)) > 2 * MAX_ELEMENTS:
        return False
    cfg_a, cfg_b = _config(layer_a), _config(layer_b)
    if cfg_a is None or cfg_b is None:
        return False
    key = (type(layer_a).__module__, type(layer_a).__name__, _text(cfg_a), _text(cfg_b), shape)
    if key in _VERDICTS:
        _VERDICTS.move_to_end(key)
        return _VERDICTS[key]
    verdict = _run_both(type(layer_a), cfg_a, cfg_b, shape)
    _VERDICTS[key] = verdict
    while len(_VERDICTS) > _CACHE_SIZE:
        _VERDICTS.popitem(last=False)
    return verdict


def _text(cfg: dict) -> str:
    return json.dumps(cfg, sort_keys=True, default=repr)


def _random_weights(rng: np.random.Generator, weights: list) -> list[np.ndarray]:
    """Values no initializer would give (a zero bias or a unit scale hides differences);
    variances stay positive."""
    out = []
    for w in weights:
        shape, name = tuple(w.shape), str(getattr(w, "name", "")).lower()
        value = rng.normal(0.0, 0.5, size=shape)
        if "variance" in name:
            value = np.abs(value) + 0.5
        out.append(value.astype(np.asarray(w).dtype, copy=False))
    return out


def _run_both(cls: type, cfg_a: dict, cfg_b: dict, shape: tuple) -> bool:
    try:
        a, b = cls.from_config(dict(cfg_a)), cls.from_config(dict(cfg_b))
        a.build(shape)
        b.build(shape)
        if len(a.weights) != len(b.weights) or any(tuple(x.shape) != tuple(y.shape)
                                                    for x, y in zip(a.weights, b.weights)):
            return False
        rng = np.random.default_rng(20261206)
        weights = _random_weights(rng, a.weights)
        a.set_weights(weights)
        b.set_weights(weights)
        scale = rng.choice(np.array([0.01, 0.3, 1.0, 7.0, 100.0]), size=shape)
        x = (rng.normal(0.0, 1.0, size=shape) * scale).astype(np.float32)
        for training in (False, True):
            ya, yb = np.asarray(a(x, training=training)), np.asarray(b(x, training=training))
            if ya.shape != yb.shape:
                return False
            tolerance = 1e-5 * max(1.0, float(np.max(np.abs(ya))) if ya.size else 1.0)
            if not np.allclose(ya, yb, rtol=1e-5, atol=tolerance, equal_nan=True):
                return False
        return True
    except Exception:  # noqa: BLE001 - layers that cannot be built alike are not the same
        return False


__all__ = ["numerically_same", "MAX_ELEMENTS"]
