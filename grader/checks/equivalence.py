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
with several inputs, and layers whose weights differ in number or shape. The numerical
test is the framework's (`Adapter.numerically_same`; Keras' in
`grader.frameworks.keras.equivalence`): its fresh layers are built from configs of models
the framework's rebuild already vetted (allow-listed built-in layers) or from the
reference; no student code runs here.
"""
from __future__ import annotations

import math
import re
from typing import Any

from grader.checks.adapters import adapter_for
from grader.checks.graph import LayerGraph
from grader.checks.matching import Alignment, align_specs
from grader.checks.specs import CONV, POOL, LayerSpec

# Settings whose difference is never "the same at this shape": another function, or
# weights of another shape or number (which the numerical test would only build to refuse).
_NEVER_NUMERIC = frozenset({"activation", "rate", "units", "filters", "kernel_size", "use_bias", "center", "scale",
                            "groups", "depth_multiplier"})
_STOCHASTIC = re.compile(r"^(Dropout|SpatialDropout\dD|GaussianDropout|GaussianNoise|AlphaDropout)$")


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


def numerically_same(layer_a: Any, layer_b: Any, input_shape: tuple | None) -> bool:
    """Fresh copies of both layers, built at `input_shape` with the same random weights,
    agree on random inputs in inference and training mode: the framework of `layer_a`
    decides (`grader.checks.adapters`); layers no adapter builds are not the same."""
    adapter = adapter_for(layer_a)
    if adapter is None or adapter.numerically_same is None:
        return False
    return adapter.numerically_same(layer_a, layer_b, input_shape)


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


__all__ = ["align_graphs", "numerically_same", "resolved_params", "same_at_shape"]
