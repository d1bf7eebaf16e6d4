"""Numerical checks: the student's model computes what the reference computes.

Two independently built models start from different random weights, so their outputs
can only be compared once the reference's weights are copied into the student's model.
The copy follows the architecture alignment (`grader.checks.architecture`), not the
framework's own layer order, so it pairs the same layers the architecture feedback talks
about.

How a model runs, and how weights get in, is the framework's: the checks here ask the
student model's adapter (`grader.checks.adapters`, each framework's own code under
`grader.frameworks`). What is compared, and what the feedback says, is the same for
every framework: `compare_outputs` and `_compare` below. Every
adapter leaves both models as it found them (weights, BatchNormalization statistics,
modes), so the order of training and inference checks cannot change a verdict.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from grader.checks import CheckFailed
from grader.checks.adapters import require
from grader.checks.equivalence import align_graphs
from grader.checks.explain import explain_difference
from grader.checks.graph import LayerGraph, layer_graph
from grader.checks.matching import Alignment
from grader.checks.merge_order import check_merge_order, permutations
from grader.checks.naming import ordinal
from grader.checks.specs import CONV, POOL

_BLOCKING = ("missing", "extra", "swapped", "moved", "replaced")


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


def _flat_outputs(result: Any) -> list[np.ndarray]:
    if isinstance(result, dict):
        return [np.asarray(result[k]) for k in sorted(result)]
    if isinstance(result, (list, tuple)):
        return [np.asarray(r) for r in result]
    return [np.asarray(result)]


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


def _shape_hint(model: Any) -> str:
    """Where an output's shape comes from, in terms of the model graded: a classifier's
    from its last Dense/Flatten, a fully convolutional model's from its convolutions'
    filters, strides and padding (and its pooling)."""
    try:
        kinds = {spec.kind for spec in layer_graph(model).specs}
    except CheckFailed:
        kinds = set()
    if "Dense" in kinds or "Flatten" in kinds:
        return "check the last layers (the units of the last Dense, Flatten) against the specification."
    if any(CONV.match(k) for k in kinds):
        sizing = "strides, padding" + (" and pooling" if any(POOL.match(k) for k in kinds) else "")
        return (f"check the filters of the last convolution (the output's channels) and the {sizing} on the way "
                "(the output's height and width) against the specification.")
    return "check the layers that set the output's shape against the specification."


def _compare(expected: np.ndarray, found: np.ndarray, *, training: bool | None, rtol: float, atol: float,
             what: str, shape_hint: str = "check the layers that set the output's shape against the specification.",
             cause: Any = None, settings_hint: Any = None) -> None:
    """`cause()` gives the graph check's verdict, asked only when values differ; when it
    finds nothing, `settings_hint()` says what to compare."""
    if expected.shape != found.shape:
        raise CheckFailed(
            f"Your model's {what} has shape {found.shape}; the reference's has shape {expected.shape}.",
            hint=shape_hint, diagnosis="wrong_output_shape")
    exp64, got64 = expected.astype(np.float64), found.astype(np.float64)
    bad = ~np.isclose(got64, exp64, rtol=rtol, atol=atol, equal_nan=True)
    if not bad.any():
        return
    diff = np.where(np.isnan(got64) != np.isnan(exp64), np.inf, np.abs(got64 - exp64))
    diff = np.where(bad, np.nan_to_num(diff, nan=0.0, posinf=np.inf), 0.0)
    index = tuple(int(i) for i in np.unravel_index(int(np.argmax(diff)), diff.shape))
    found_cause = cause() if callable(cause) else None
    because, hint = (f" The layer graph shows why: {found_cause.message}", found_cause.hint) if found_cause else (
        " With the same weights both models should compute the same numbers, so some layer computes something "
        "else.", "")
    raise CheckFailed(
        f"In {_mode(training)}, with the reference's weights copied in, your model's {what} differs from the "
        f"reference's by up to {diff[index]:.3g} (at {_position(index)}: yours {got64[index]:.6g}, reference "
        f"{exp64[index]:.6g}; tolerance {atol:g} + {rtol:g} x |reference|); {int(bad.sum())} of {bad.size} values "
        f"differ.{because}",
        hint=hint or (settings_hint() if callable(settings_hint) else "compare each layer's settings with the "
                                                                                 "specification."),
        diagnosis=(found_cause.diagnosis if found_cause and found_cause.diagnosis == "wrong_input_order"
                   else f"outputs_differ_{'training' if training else 'inference'}"))


def _settings_hint(model: Any, training: bool | None) -> str:
    """What to compare when the graphs match and the numbers do not, for the layers this
    model has: settings the graph check does not grade (epsilon), a `training=` written
    into a call, or a setting that matters only at the shapes of this check."""
    try:
        kinds = {spec.kind for spec in layer_graph(model).specs}
    except CheckFailed:
        kinds = set()
    parts = ["each layer's activation"]
    if any(CONV.match(k) or POOL.match(k) for k in kinds):
        parts.append("padding (which can matter only at some input sizes)")
    if "BatchNormalization" in kinds:
        parts.append("BatchNormalization's epsilon and any training= written into its call")
    if any(k.startswith(("Dropout", "SpatialDropout")) for k in kinds):
        parts.append("any training= written into a Dropout call" + (" (a training-mode check runs dropout)"
                                                                   if training else ""))
    return f"compare {', '.join(parts[:-1]) + ' and ' + parts[-1] if len(parts) > 1 else parts[0]} with the specification."


def _graph_cause(reference_model: Any, student_model: Any, merge_order: str):
    """A function giving the graph check's verdict (a CheckFailed or None), asked only
    once outputs differ: it names a structural cause, such as a merge's input order."""
    def cause():
        try:
            return explain_difference(layer_graph(reference_model), layer_graph(student_model), exercise="",
                                      merge_order=merge_order)
        except CheckFailed as exc:
            return exc
    return cause


def expect_same_outputs(reference_model: Any, student_model: Any, inputs: np.ndarray, *, training: bool | None,
                        rtol: float = 1e-5, atol: float = 1e-6, what: str = "output",
                        merge_order: str = "fixed") -> None:
    """Fail unless the student's model, given the reference's weights, computes the
    reference's outputs on `inputs` in the given mode, output by output (a model
    returning several tensors is compared in the order it returns them). Inputs are never
    shown in the feedback (they may be hidden test data). Both models are left unchanged.
    `training=None` calls both models without a mode, so a layer called with its own
    `training=` argument keeps it (a BatchNormalization hard-coded to training=True).
    `merge_order="either"` accepts a Concatenate's inputs in another order, as
    `expect_architecture` does (the reference's weights are copied in permuted alike).
    The student model's framework runs both (`grader.checks.adapters`).

        expect_same_outputs(reference.happyModel(), submission.model("happyModel"), x, training=False)
    """
    check_merge_order(merge_order)
    require(student_model, "expect_same_outputs").expect_same_outputs(
        reference_model, student_model, inputs, training=training, rtol=rtol, atol=atol, what=what,
        merge_order=merge_order)


def copy_weights(reference_model: Any, student_model: Any, *, merge_order: str = "fixed") -> None:
    """Copy every weight (BatchNormalization moving statistics included) from the
    reference into the student's model, pairing layers by the architecture alignment.

    Layers must pair one to one by kind; their settings may differ (a Dense with the
    wrong activation still receives the reference weights, so its outputs show the
    difference). All shapes are checked before anything is written, so a failure
    leaves the student's model untouched. `merge_order="either"`: a Concatenate written
    in another order has the layers after it take the reference's weights permuted.
    """
    check_merge_order(merge_order)
    require(student_model, "copy_weights").copy_weights(reference_model, student_model, merge_order=merge_order)


def compare_outputs(expected: list[np.ndarray], found: list[np.ndarray], reference_model: Any, student_model: Any, *,
                    training: bool | None, rtol: float, atol: float, what: str, merge_order: str = "fixed",
                    settings_hint: Any = None) -> None:
    """The verdict on two models' outputs (as arrays, in the order the models return
    them), the same for every framework: their number, then each output's shape and
    values, a difference explained by the graph check when it can be. `settings_hint()`
    says what to compare when the graphs match (default: this module's, by layer kind)."""
    if len(expected) != len(found):
        raise CheckFailed(f"Your model returns {len(found)} output{'s' if len(found) != 1 else ''}; the reference "
                          f"returns {len(expected)}.",
                          hint=(f"return the {len(expected)} values of the specification, in its order."
                                if len(expected) > 1 else "return a single output, as in the specification."),
                          diagnosis="wrong_output_count")
    cause = _graph_cause(reference_model, student_model, merge_order)
    reordered = merge_order == "either" and _reordered(reference_model, student_model)
    hint = settings_hint if callable(settings_hint) else (lambda: _settings_hint(student_model, training))
    for k, (e, f) in enumerate(zip(expected, found)):
        label = what if len(expected) == 1 else f"{what} {k + 1} (the {ordinal(k)} value returned)"
        # Channels in another order are summed in another order: float32 rounding then
        # differs by about 1e-6 of the output's scale (measured on a full-size U-Net: up to
        # 7e-7), so the absolute tolerance follows that scale, with a wide margin.
        floor = REORDERED_ATOL * float(np.max(np.abs(e))) if reordered and e.size else 0.0
        _compare(e, f, training=training, rtol=rtol, atol=max(atol, floor), what=label,
                 shape_hint=_shape_hint(student_model), cause=cause, settings_hint=hint)


# Absolute tolerance per unit of the output's largest value when a Concatenate's inputs
# came in another order and the weights were permuted to match (see expect_same_outputs).
REORDERED_ATOL = 2e-5


def _reordered(reference_model: Any, student_model: Any) -> bool:
    """Whether any layer takes the reference's weights permuted (`merge_order="either"`)."""
    try:
        ref, stu = layer_graph(reference_model), layer_graph(student_model)
        return bool(permutations(ref, stu, align_graphs(ref, stu).pairs))
    except CheckFailed:
        return False


def expect_output_shape(model: Any, inputs: np.ndarray, expected_shape: Sequence[int | None]) -> None:
    """Fail unless calling `model` on `inputs` (inference mode, which changes no state)
    gives `expected_shape`; None in `expected_shape` matches any size."""
    found = require(model, "outputs").outputs(model, inputs, False, "your model")
    if len(found) != 1:
        raise CheckFailed(f"Your model returns {len(found)} outputs; expected one of shape {tuple(expected_shape)}.",
                          hint="return a single output, as in the specification.", diagnosis="wrong_output_count")
    shape = tuple(found[0].shape)
    wanted = tuple(expected_shape)
    if len(shape) != len(wanted) or any(w is not None and w != s for w, s in zip(wanted, shape)):
        shown = "(" + ", ".join("any" if w is None else str(w) for w in wanted) + ")"
        raise CheckFailed(
            f"Your model's output has shape {shape}; expected {shown}. Later steps (the loss, accuracy) rely on "
            "this shape.", hint=_shape_hint(model), diagnosis="wrong_output_shape")


def expect_input_shape(model: Any, shape: Sequence[int], *, function: str, usual: Sequence[int] = ()) -> None:
    """Fail unless `model`'s input follows the shape it was built for: a function taking
    `input_shape` must not hard-code the shape of the images it was written with. Checked
    before any output, because a hard-coded shape would otherwise surface as the framework's error
    about weight or batch shapes. The message never reveals `shape` (it may be hidden);
    `usual` is the shape the student wrote for, named as "still" when the model kept it."""
    found, wanted = tuple(require(model, "input_shape").input_shape(model)), tuple(shape)
    # None: a size the model takes at any value (a fully convolutional module's height)
    if len(found) != len(wanted) or any(f is not None and f != w for f, w in zip(found, wanted)):
        still = "still " if usual and found == tuple(usual) else ""
        raise CheckFailed(
            f"Called with another input shape, `{function}` returned a model whose input is "
            f"{still}{'x'.join(map(str, found))}, not the shape it was given: the model does not follow its "
            f"`input_shape` argument, so it only works for images of one size.",
            hint=("compute each layer's sizes (in_channels, in_features) from the argument, not from a fixed image "
                  "size." if require(model, "input_shape").name == "torch" else
                  "build the input from the argument: `tf.keras.Input(shape=input_shape)`, not a fixed shape."),
            diagnosis="input_shape_ignored")


__all__ = ["compare_outputs", "copy_weights", "expect_same_outputs", "expect_output_shape", "expect_input_shape"]
