"""The Keras adapter's output checks: the reference's weights in the student's model.

State: `model(x, training=True)` moves BatchNormalization's moving mean and variance.
`expect_same_outputs` therefore never leaves a trace in either model. A Keras 3 model
runs without writing anything (`grader.frameworks.keras.forward`): the reference's weights
are read in place of the student's, and the statistics a training call would move are
dropped. Other models (tf_keras, a kit's recorded reference) get the old way: both
models' weights (moving statistics included) are snapshotted, the reference's are copied
into the student's model, both run, and both snapshots are restored, whatever happens.
The two ways compute the same numbers. The verdict on the outputs is the neutral one
(`grader.checks.models.compare_outputs`).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from grader.checks import CheckFailed
from grader.checks.equivalence import align_graphs
from grader.checks.graph import layer_graph
from grader.checks.merge_order import MIXES, MIXES_TRANSPOSED, PER_CHANNEL, Permuted, check_merge_order, permutations
from grader.checks.models import _flat_outputs, _layer_pairs, compare_outputs
from grader.checks.residual import describe
from grader.frameworks.keras.forward import call_model, stateless
from grader.frameworks.keras.reference_outputs import reference_outputs


# Where a permuted layer's channels run in Keras' weights: a kernel's input channels are
# its second-to-last axis (Conv (h, w, in, out), Dense (in, out)), a transposed
# convolution's its last (h, w, out, in); BatchNormalization's vectors are per channel.
_CHANNEL_AXIS = {MIXES: -2, MIXES_TRANSPOSED: -1, PER_CHANNEL: None}


def _permute(permuted: Permuted, values: list) -> list:
    return permuted.apply(values, _CHANNEL_AXIS[permuted.role])


def _shape_text(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape)


def _weight_name(variable: Any) -> str:
    """'kernel' from Keras 3's 'kernel' and Keras 2's 'conv2d/kernel:0'."""
    return str(getattr(variable, "name", "weight")).split("/")[-1].split(":")[0]



def _check_shapes(ref_layer: Any, stu_layer: Any, who: str) -> None:
    """`who` names the student's layer as they can find it (never Keras' own name)."""
    who = who[:1].upper() + who[1:]
    ref_vars, stu_vars = list(ref_layer.weights), list(stu_layer.weights)
    names = lambda vs: ", ".join(_weight_name(v) for v in vs) or "none"  # noqa: E731
    if len(ref_vars) != len(stu_vars):
        raise CheckFailed(
            f"{who} has weights ({names(stu_vars)}); the reference's has ({names(ref_vars)}), "
            "so the reference weights cannot be copied.",
            hint="create the layer with the specification's settings (for example use_bias).",
            diagnosis="weight_shape_mismatch")
    for r, s in zip(ref_vars, stu_vars):
        if tuple(r.shape) != tuple(s.shape):
            raise CheckFailed(
                f"{who}'s {_weight_name(s)} has shape {_shape_text(s.shape)}; the reference's "
                f"has shape {_shape_text(r.shape)}, so the reference weights cannot be copied. A weight's shape "
                "follows from the layer's settings and from the shape of its input.",
                hint="check this layer's settings and the model's input shape against the specification.",
                diagnosis="weight_shape_mismatch")


def _weighted_pairs(reference_model: Any, student_model: Any,
                    merge_order: str = "fixed") -> list[tuple[Any, Any, str, Permuted | None]]:
    """(reference layer, student layer, the student's name for it, the permutation its
    weights take) per pair of layers with weights. With `merge_order="either"`, a
    Concatenate written in another order has the layers after it take the reference's
    weights permuted (`grader.checks.merge_order`), so the outputs agree with the graph
    check's verdict."""
    ref, stu = layer_graph(reference_model), layer_graph(student_model)
    alignment = align_graphs(ref, stu)
    pairs = _layer_pairs(ref, stu, alignment)
    permuted = (permutations(ref, stu, alignment.pairs) or {}) if merge_order == "either" else {}
    out, seen = [], set()
    for e, f in pairs:
        a, b = ref.nodes[e].layer, stu.nodes[f].layer
        if a is None or b is None or id(b) in seen:
            continue
        seen.add(id(b))
        out.append((a, b, describe(stu, f), permuted.get(f)))
    return out


def _reference_values(ref_layer: Any, permuted: Permuted | None) -> list:
    values = ref_layer.get_weights()
    return _permute(permuted, values) if permuted is not None else values


def copy_weights(reference_model: Any, student_model: Any, *, merge_order: str = "fixed") -> None:
    """Copy every weight (BatchNormalization moving statistics included) from the
    reference into the student's model, pairing layers by the architecture alignment.

    Layers must pair one to one by kind; their settings may differ (a Dense with the
    wrong activation still receives the reference weights, so its outputs show the
    difference). All shapes are checked before anything is written, so a failure
    leaves the student's model untouched. `merge_order="either"`: see `_weighted_pairs`.
    """
    pairs = _weighted_pairs(reference_model, student_model, check_merge_order(merge_order))
    for ref_layer, stu_layer, who, _ in pairs:
        _check_shapes(ref_layer, stu_layer, who)
    _materialize(student_model)
    for ref_layer, stu_layer, _, permuted in pairs:
        stu_layer.set_weights(_reference_values(ref_layer, permuted))


def _materialize(model: Any) -> None:
    """Memory for the variables a weightless rebuild left without it (their reads give
    zeros; grader.frameworks.keras.rebuild), so they can be written: only the copying path
    writes a model's weights."""
    for variable in getattr(model, "variables", ()):
        if getattr(variable, "_value", 0) is None and hasattr(variable, "_deferred_initialize"):
            variable._deferred_initialize()


def _dtype(value: Any) -> str:
    return str(getattr(value, "dtype", "")).replace("tf.", "").replace("<dtype: '", "").rstrip("'>")


def _substitution(reference_model: Any, student_model: Any,
                  merge_order: str = "fixed") -> list[tuple[Any, Any]] | None:
    """What `copy_weights` would write, as (student variable, reference variable or its
    permuted values) pairs to read in place instead (same checks, same CheckFailed);
    None when the models cannot run that way (tf_keras, state outside the weights, a
    weight of another dtype)."""
    if not (stateless(reference_model) and stateless(student_model)):
        return None
    pairs = _weighted_pairs(reference_model, student_model, merge_order)
    for ref_layer, stu_layer, who, _ in pairs:
        _check_shapes(ref_layer, stu_layer, who)
    substitute = []
    for ref_layer, stu_layer, _, permuted in pairs:
        refs = list(ref_layer.weights)
        values = refs if permuted is None else [np.asarray(v).astype(_dtype(r), copy=False)
                                                 for v, r in zip(_permute(permuted, [np.asarray(r) for r in refs]), refs)]
        substitute += list(zip(stu_layer.weights, values))
    if any(_dtype(s) != _dtype(r) for s, r in substitute):
        return None
    return substitute



def _call(model: Any, inputs: np.ndarray, training: bool | None, who: str,
          substitute: list[tuple[Any, Any]] | None = None, trace: bool = True) -> list[np.ndarray]:
    try:
        return _flat_outputs(call_model(model, inputs, training, substitute or (), trace))
    except Exception as exc:  # noqa: BLE001 - any Keras error becomes feedback
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckFailed(
            f"Calling {who} on a batch of shape {tuple(np.shape(inputs))} failed: {first_line}",
            hint="check the model's input shape against the specification.",
            diagnosis="model_call_failed") from None



def _outputs_without_copy(reference_model: Any, student_model: Any, inputs: np.ndarray,
                          training: bool | None, merge_order: str = "fixed") -> tuple[list | None, list | None]:
    """Both models' outputs, the reference's weights read in place of the student's: nothing
    is written to either model, so there is nothing to snapshot and restore (about 5 ms a
    check). (None, None) when this cannot be done, or when a call fails: the copying path
    then runs and explains the failure in its own words."""
    substitute = _substitution(reference_model, student_model, merge_order)
    if substitute is None:
        return None, None
    try:
        expected = reference_outputs(reference_model, inputs, training,
                                     lambda trace: _call(reference_model, inputs, training, "the reference model",
                                                         trace=trace))
        return expected, _call(student_model, inputs, training, "your model", substitute)
    except CheckFailed:
        return None, None


def _outputs_with_copy(reference_model: Any, student_model: Any, inputs: np.ndarray,
                       training: bool | None, merge_order: str = "fixed") -> tuple[list, list]:
    _materialize(student_model)
    ref_state, stu_state = reference_model.get_weights(), student_model.get_weights()
    try:
        copy_weights(reference_model, student_model, merge_order=merge_order)
        return (_call(reference_model, inputs, training, "the reference model"),
                _call(student_model, inputs, training, "your model"))
    finally:
        reference_model.set_weights(ref_state)
        student_model.set_weights(stu_state)


def expect_same_outputs(reference_model: Any, student_model: Any, inputs: np.ndarray, *, training: bool | None,
                        rtol: float = 1e-5, atol: float = 1e-6, what: str = "output",
                        merge_order: str = "fixed") -> None:
    """The Keras adapter's half of `grader.checks.models.expect_same_outputs`, whose docstring
    says what is compared. Both models are left unchanged: the reference's weights are read in
    place of the student's where that can be done, else copied in and restored afterwards.
    """
    check_merge_order(merge_order)
    expected, found = _outputs_without_copy(reference_model, student_model, inputs, training, merge_order)
    if expected is None:
        expected, found = _outputs_with_copy(reference_model, student_model, inputs, training, merge_order)
    compare_outputs(expected, found, reference_model, student_model, training=training, rtol=rtol, atol=atol,
                    what=what, merge_order=merge_order)


def input_shape(model: Any) -> tuple:
    """The shape the model's first input was built for, batch axis left out."""
    return tuple(model.inputs[0].shape)[1:]


__all__ = ["copy_weights", "expect_same_outputs", "input_shape"]
