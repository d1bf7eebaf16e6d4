"""Numerical checks: the student's model computes what the reference computes.

Two independently built models start from different random weights, so their outputs
can only be compared once the reference's weights are copied into the student's model.
The copy follows the architecture alignment (`grader.checks.architecture`), not
`model.layers` order, so it pairs the same layers the architecture feedback talks about.

State: `model(x, training=True)` moves BatchNormalization's moving mean and variance.
`expect_same_outputs` therefore never leaves a trace in either model. A Keras 3 model
runs without writing anything (`grader.checks.forward`): the reference's weights are read
in place of the student's, and the statistics a training call would move are dropped.
Other models (tf_keras) get the old way: both models' weights (moving statistics
included) are snapshotted, the reference's are copied into the student's model, both
run, and both snapshots are restored, whatever happens. The two ways compute the same
numbers. Every call sees the same starting state and leaves both models as it found
them, so the order of training and inference checks cannot change a verdict.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from grader.checks import CheckFailed
from grader.checks.forward import call_model, stateless
from grader.checks.graph import LayerGraph, layer_graph
from grader.checks.matching import Alignment, align_specs
from grader.checks.residual import describe

_BLOCKING = ("missing", "extra", "swapped", "moved", "replaced")


def _shape_text(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape)


def _weight_name(variable: Any) -> str:
    """'kernel' from Keras 3's 'kernel' and Keras 2's 'conv2d/kernel:0'."""
    return str(getattr(variable, "name", "weight")).split("/")[-1].split(":")[0]


def _layer_pairs(ref: LayerGraph, stu: LayerGraph, alignment: Alignment) -> list[tuple[int, int]]:
    """Aligned (reference, student) node pairs; only a one-to-one alignment of the same
    kinds (settings may differ) lets weights be copied meaningfully."""
    blocking = [r for r in alignment.rows if r.op in _BLOCKING]
    if blocking:
        row = blocking[0]
        side = ref.specs[row.expected].label() if row.expected is not None else stu.specs[row.found].label()
        raise CheckFailed(
            "The reference weights cannot be copied into your model because its layers differ from the "
            f"specification (first difference: {side}, {row.op}); fix the layer structure first.",
            hint="make the layers match the specification; the architecture check shows where they differ.",
            diagnosis="architecture_mismatch")
    return [(r.expected, r.found) for r in alignment.rows]


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


def _weighted_pairs(reference_model: Any, student_model: Any) -> list[tuple[Any, Any, str]]:
    ref, stu = layer_graph(reference_model), layer_graph(student_model)
    pairs = _layer_pairs(ref, stu, align_specs(ref.specs, stu.specs))
    out, seen = [], set()
    for e, f in pairs:
        a, b = ref.nodes[e].layer, stu.nodes[f].layer
        if a is None or b is None or id(b) in seen:
            continue
        seen.add(id(b))
        out.append((a, b, describe(stu, f)))
    return out


def copy_weights(reference_model: Any, student_model: Any) -> None:
    """Copy every weight (BatchNormalization moving statistics included) from the
    reference into the student's model, pairing layers by the architecture alignment.

    Layers must pair one to one by kind; their settings may differ (a Dense with the
    wrong activation still receives the reference weights, so its outputs show the
    difference). All shapes are checked before anything is written, so a failure
    leaves the student's model untouched.
    """
    pairs = _weighted_pairs(reference_model, student_model)
    for ref_layer, stu_layer, who in pairs:
        _check_shapes(ref_layer, stu_layer, who)
    for ref_layer, stu_layer, _ in pairs:
        stu_layer.set_weights(ref_layer.get_weights())


def _substitution(reference_model: Any, student_model: Any) -> list[tuple[Any, Any]] | None:
    """What `copy_weights` would write, as (student variable, reference variable) pairs to
    read in place instead (same checks, same CheckFailed); None when the models cannot run
    that way (tf_keras, state outside the weights, a weight of another dtype)."""
    if not (stateless(reference_model) and stateless(student_model)):
        return None
    pairs = _weighted_pairs(reference_model, student_model)
    for ref_layer, stu_layer, who in pairs:
        _check_shapes(ref_layer, stu_layer, who)
    substitute = [(s, r) for ref_layer, stu_layer, _ in pairs for r, s in zip(ref_layer.weights, stu_layer.weights)]
    if any(s.dtype != r.dtype for s, r in substitute):
        return None
    return substitute


def _flat_outputs(result: Any) -> list[np.ndarray]:
    if isinstance(result, dict):
        return [np.asarray(result[k]) for k in sorted(result)]
    if isinstance(result, (list, tuple)):
        return [np.asarray(r) for r in result]
    return [np.asarray(result)]


def _call(model: Any, inputs: np.ndarray, training: bool | None, who: str,
          substitute: list[tuple[Any, Any]] | None = None) -> list[np.ndarray]:
    try:
        return _flat_outputs(call_model(model, inputs, training, substitute or ()))
    except Exception as exc:  # noqa: BLE001 - any Keras error becomes feedback
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckFailed(
            f"Calling {who} on a batch of shape {tuple(np.shape(inputs))} failed: {first_line}",
            hint="check the model's input shape against the specification.",
            diagnosis="model_call_failed") from None


def _position(index: tuple[int, ...]) -> str:
    if len(index) == 1:
        return f"sample {index[0]}"
    if len(index) == 2:
        return f"sample {index[0]}, unit {index[1]}"
    return f"sample {index[0]}, position {tuple(int(i) for i in index[1:])}"


def _mode(training: bool | None) -> str:
    if training is None:
        return "the mode each layer was built for (called without training=)"
    return "training mode (training=True)" if training else "inference mode (training=False)"


def _compare(expected: np.ndarray, found: np.ndarray, *, training: bool | None, rtol: float, atol: float,
             what: str) -> None:
    if expected.shape != found.shape:
        raise CheckFailed(
            f"Your model's {what} has shape {found.shape}; the reference's has shape {expected.shape}.",
            hint="check the last layers (units, Flatten) against the specification.",
            diagnosis="wrong_output_shape")
    exp64, got64 = expected.astype(np.float64), found.astype(np.float64)
    bad = ~np.isclose(got64, exp64, rtol=rtol, atol=atol, equal_nan=True)
    if not bad.any():
        return
    diff = np.where(np.isnan(got64) != np.isnan(exp64), np.inf, np.abs(got64 - exp64))
    diff = np.where(bad, np.nan_to_num(diff, nan=0.0, posinf=np.inf), 0.0)
    index = tuple(int(i) for i in np.unravel_index(int(np.argmax(diff)), diff.shape))
    raise CheckFailed(
        f"In {_mode(training)}, with the reference's weights copied in, your model's {what} differs from the "
        f"reference's by up to {diff[index]:.3g} (at {_position(index)}: yours {got64[index]:.6g}, reference "
        f"{exp64[index]:.6g}; tolerance {atol:g} + {rtol:g} x |reference|); {int(bad.sum())} of {bad.size} values "
        "differ. With the same weights both models should compute the same numbers, so some layer computes "
        "something else.",
        hint="compare each layer's activation, padding and BatchNormalization settings with the specification.",
        diagnosis=f"outputs_differ_{'training' if training else 'inference'}")


def _outputs_without_copy(reference_model: Any, student_model: Any, inputs: np.ndarray,
                          training: bool | None) -> tuple[list | None, list | None]:
    """Both models' outputs, the reference's weights read in place of the student's: nothing
    is written to either model, so there is nothing to snapshot and restore (about 5 ms a
    check). (None, None) when this cannot be done, or when a call fails: the copying path
    then runs and explains the failure in its own words."""
    substitute = _substitution(reference_model, student_model)
    if substitute is None:
        return None, None
    try:
        return (_call(reference_model, inputs, training, "the reference model"),
                _call(student_model, inputs, training, "your model", substitute))
    except CheckFailed:
        return None, None


def _outputs_with_copy(reference_model: Any, student_model: Any, inputs: np.ndarray,
                       training: bool | None) -> tuple[list, list]:
    ref_state, stu_state = reference_model.get_weights(), student_model.get_weights()
    try:
        copy_weights(reference_model, student_model)
        return (_call(reference_model, inputs, training, "the reference model"),
                _call(student_model, inputs, training, "your model"))
    finally:
        reference_model.set_weights(ref_state)
        student_model.set_weights(stu_state)


def expect_same_outputs(reference_model: Any, student_model: Any, inputs: np.ndarray, *, training: bool | None,
                        rtol: float = 1e-5, atol: float = 1e-6, what: str = "output") -> None:
    """Fail unless the student's model, given the reference's weights, computes the
    reference's outputs on `inputs` in the given mode. Inputs are never shown in the
    feedback (they may be hidden test data). Both models are left unchanged.
    `training=None` calls both models without a mode, so a layer called with its own
    `training=` argument keeps it (a BatchNormalization hard-coded to training=True).

        expect_same_outputs(reference.happyModel(), submission.model("happyModel"), x, training=False)
    """
    expected, found = _outputs_without_copy(reference_model, student_model, inputs, training)
    if expected is None:
        expected, found = _outputs_with_copy(reference_model, student_model, inputs, training)
    if len(expected) != len(found):
        raise CheckFailed(f"Your model returns {len(found)} outputs; the reference returns {len(expected)}.",
                          hint="return a single output, as in the specification.", diagnosis="wrong_output_count")
    for k, (e, f) in enumerate(zip(expected, found)):
        label = what if len(expected) == 1 else f"{what} {k + 1}"
        _compare(e, f, training=training, rtol=rtol, atol=atol, what=label)


def expect_output_shape(model: Any, inputs: np.ndarray, expected_shape: Sequence[int | None]) -> None:
    """Fail unless calling `model` on `inputs` (inference mode, which changes no state)
    gives `expected_shape`; None in `expected_shape` matches any size."""
    found = _call(model, inputs, False, "your model")
    if len(found) != 1:
        raise CheckFailed(f"Your model returns {len(found)} outputs; expected one of shape {tuple(expected_shape)}.",
                          hint="return a single output, as in the specification.", diagnosis="wrong_output_count")
    shape = tuple(found[0].shape)
    wanted = tuple(expected_shape)
    if len(shape) != len(wanted) or any(w is not None and w != s for w, s in zip(wanted, shape)):
        shown = "(" + ", ".join("any" if w is None else str(w) for w in wanted) + ")"
        raise CheckFailed(
            f"Your model's output has shape {shape}; expected {shown}. Later steps (the loss, accuracy) rely on "
            "this shape.", hint="check the last layers (units, Flatten) against the specification.",
            diagnosis="wrong_output_shape")


def expect_input_shape(model: Any, shape: Sequence[int], *, function: str, usual: Sequence[int] = ()) -> None:
    """Fail unless `model`'s input follows the shape it was built for: a function taking
    `input_shape` must not hard-code the shape of the images it was written with. Checked
    before any output, because a hard-coded shape would otherwise surface as a Keras error
    about weight or batch shapes. The message never reveals `shape` (it may be hidden);
    `usual` is the shape the student wrote for, named as "still" when the model kept it."""
    found = tuple(model.inputs[0].shape)[1:]
    if found != tuple(shape):
        still = "still " if usual and found == tuple(usual) else ""
        raise CheckFailed(
            f"Called with another input shape, `{function}` returned a model whose input is "
            f"{still}{'x'.join(map(str, found))}, not the shape it was given: the model does not follow its "
            f"`input_shape` argument, so it only works for images of one size.",
            hint="build the input from the argument: `tf.keras.Input(shape=input_shape)`, not a fixed shape.",
            diagnosis="input_shape_ignored")


__all__ = ["copy_weights", "expect_same_outputs", "expect_output_shape", "expect_input_shape"]
