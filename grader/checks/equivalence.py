"""Whether two layers compute the same function at the shapes a test uses, when their
canonical specs (`grader.checks.specs`) still differ.

Canonical specs settle spelling: `kernel_size=3` and `(3, 3)`, `axis=-1` and `axis=3`,
`MaxPool2D` and `MaxPooling2D`. What is left can still be the same computation at the
shapes of the graph being graded: `AveragePooling2D(pool_size=2, padding='same')` on a
2x2 map pads nothing, so it is `padding='valid'` there. A student must not lose points
for a setting that changes nothing in what is graded, so two layers of the same kind are
the same layer when:

1. their specs are equal; or
2. they are equal once padding is resolved against the input shape ('same' padding that
   adds no row or column on this input is 'valid'); or
3. built fresh at the recorded input shape, with the same random weights, they give the
   same outputs on random inputs of a wide range of magnitudes, in inference and in
   training mode (the numerical test, for whatever the rules above cannot settle).

The decision holds only at the shapes the graph recorded. A setting that changes the
output at another shape the exercise allows (padding 'same' on an odd-sized map) is
caught by the test that builds the model at that shape: an assignment must grade the
shapes it lets vary (hidden tests with other sizes), as `dls_c4w2a1` and `conv_bn` do.

Never decided numerically: different activations or dropout rates (a sigmoid and a
softmax of one unit can agree on a folded Dense's linear part), stochastic layers, layers
with several inputs, and layers whose weights differ in number or shape. The fresh layers
are built from configs of models that `grader.frameworks.keras.rebuild` already vetted (allow-listed
built-in layers) or from the reference; no student code runs here.
"""
from __future__ import annotations

import json
import math
import re
from collections import OrderedDict
from typing import Any

import numpy as np

from grader.checks.graph import LayerGraph
from grader.checks.matching import Alignment, align_specs
from grader.checks.specs import CONV, POOL, LayerSpec

# Settings whose difference is never "the same at this shape": another function, or
# weights of another shape or number (which the numerical test would only build to refuse).
_NEVER_NUMERIC = frozenset({"activation", "rate", "units", "filters", "kernel_size", "use_bias", "center", "scale",
                            "groups", "depth_multiplier"})
_STOCHASTIC = re.compile(r"^(Dropout|SpatialDropout\dD|GaussianDropout|GaussianNoise|AlphaDropout)$")
# Largest input (per example) built for a numerical test; bigger layers are compared by spec.
MAX_ELEMENTS = 1 << 18
_CACHE_SIZE = 512
_VERDICTS: OrderedDict[tuple, bool] = OrderedDict()


def _spatial(shape: tuple | None) -> tuple[int, ...] | None:
    """A channels-last input's spatial sizes, or None when one is unknown."""
    if shape is None or len(shape) < 3 or any(d is None for d in shape[1:-1]):
        return None
    return tuple(int(d) for d in shape[1:-1])


def _padding_adds_nothing(window: tuple, strides: tuple, sizes: tuple, dilation: tuple | None = None) -> bool:
    """'same' padding pads max((ceil(n/s) - 1) * s + k - n, 0) per dimension: none at all
    exactly when the window, stepped by the stride, already covers the input."""
    dilation = dilation or (1,) * len(window)
    for k, s, n, d in zip(window, strides, sizes, dilation):
        span = (k - 1) * d + 1
        if max((math.ceil(n / s) - 1) * s + span - n, 0) != 0:
            return False
    return True


def resolved_params(spec: LayerSpec, input_shape: tuple | None) -> tuple:
    """The spec's settings with 'same' padding written 'valid' where, at this input
    shape, it adds no padding (so the two compute the same)."""
    params = dict(spec.params)
    if params.get("padding") != "same" or spec.kind.endswith("Transpose"):
        return spec.params
    sizes = _spatial(input_shape)
    if sizes is None:
        return spec.params
    if CONV.match(spec.kind):
        window, strides = params.get("kernel_size"), params.get("strides")
    elif POOL.match(spec.kind):
        window, strides = params.get("pool_size"), params.get("strides")
    else:
        return spec.params
    if not (isinstance(window, tuple) and isinstance(strides, tuple) and len(window) == len(sizes) == len(strides)):
        return spec.params
    if not _padding_adds_nothing(window, strides, sizes, params.get("dilation_rate")):
        return spec.params
    return tuple((k, "valid" if k == "padding" else v) for k, v in spec.params)


def same_at_shape(exp: LayerGraph, e: int, fnd: LayerGraph, f: int) -> bool:
    """Whether node `e` of the reference's graph and node `f` of the student's compute
    the same function at the input shapes their graphs recorded (see the module)."""
    a, b = exp.nodes[e], fnd.nodes[f]
    if a.spec.kind != b.spec.kind:
        return False
    if a.spec.same_layer(b.spec):
        return True
    if a.input_shape != b.input_shape or len(a.sources or (0,)) > 1 or len(b.sources or (0,)) > 1:
        return False
    if resolved_params(a.spec, a.input_shape) == resolved_params(b.spec, b.input_shape):
        return True
    differing = {k for k, _ in set(a.spec.params) ^ set(b.spec.params)}
    if differing & _NEVER_NUMERIC or _STOCHASTIC.match(a.spec.kind):
        return False
    return numerically_same(a.layer, b.layer, a.input_shape)


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


def align_graphs(exp: LayerGraph, fnd: LayerGraph) -> Alignment:
    """Align two graphs' layer lists, layers the same when `same_at_shape` says so.
    Remembered on the student's graph for this reference graph: the graph check and the
    weight transplant of the output checks then pair exactly the same layers."""
    memo = fnd.memo.setdefault("alignments", {})
    held = memo.get(id(exp))
    if held is not None and held[0] is exp:
        return held[1]
    alignment = align_specs(exp.specs, fnd.specs, lambda e, f: same_at_shape(exp, e, fnd, f))
    if len(memo) > 8:
        memo.clear()
    memo[id(exp)] = (exp, alignment)
    return alignment


__all__ = ["align_graphs", "numerically_same", "resolved_params", "same_at_shape", "MAX_ELEMENTS"]
