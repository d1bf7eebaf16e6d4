"""Architecture checks: the student's layer graph next to the reference's, and the
structural rules an assignment can ask for (BatchNormalization after every Conv2D, a
skip connection joined before the final activation).

The work is split by job: `specs` (one layer call in canonical form), `walk` (a Keras
model's graph, bounded, in canonical order), `graph` (the canonical graph the checks
read), `matching` (aligning two graphs), `explain` (what a difference means to a
student), `naming` and `residual` (finding a layer in the student's code and blocks).
This module keeps the public checks and re-exports what assignments' tests use.

Examples:
    expect_architecture(reference.happyModel(), submission.model("happyModel"), exercise="happyModel")
    expect_architecture(ref_block, found_block, exercise="upsampling_block", merge_order="either")
    expect_bn_after_conv(model, every_conv=True)      # each Conv2D, on every branch, then BatchNormalization
    expect_skip_connection(block, projection=True, exercise="convolutional_block")
"""
from __future__ import annotations

from typing import Any, Sequence

from grader.checks import CheckFailed
from grader.checks.explain import HINT_BN, WHY_BN_FIRST, explain_difference, short_table
from grader.checks.graph import GraphNode, GraphTooLarge, LayerGraph, Location, MAX_CALLS, layer_graph, layer_specs
from grader.checks.matching import Alignment, Row, align_specs
from grader.checks.naming import join
from grader.checks.residual import MODEL_INPUT, Block, block_at, describe
from grader.checks.specs import ACTIVATIONS, CONV, LayerSpec, fmt


def expect_architecture(expected_model: Any, found_model: Any, *, exercise: str, merge_order: str = "fixed",
                        compare: Sequence[str] = ()) -> None:
    """Fail unless the student's model computes the reference's graph: same layers,
    same settings, same connections, the same tensor as each output.

    Settings are compared by what they compute at the graph's shapes, not by spelling
    (`grader.checks.equivalence`). Commutative merges (Add, ...) match whatever order
    their inputs were written in; a Concatenate's order is part of the architecture unless
    `merge_order="either"` (`grader.checks.merge_order`). `compare` names further settings
    to grade, such as `("kernel_initializer",)`.

        expect_architecture(ref, found, exercise="upsampling_block", merge_order="either",
                            compare=("kernel_initializer",))
    """
    failure = explain_difference(layer_graph(expected_model), layer_graph(found_model), exercise=exercise,
                                 merge_order=merge_order, compare=compare)
    if failure is not None:
        raise failure


# ------------------------------------------------------------------ BN after Conv

def _bn_violation(g: LayerGraph, i: int) -> tuple[str, str] | None:
    spec = g.specs[i]
    subject = describe(g, i)
    if len(spec.inputs) != 1 or g.nodes[i].reads_input:
        source = "the model input" if g.nodes[i].reads_input and not spec.inputs else "several layers"
        users = [g.specs[c].kind for c in g.consumers(i)]
        diagnosis = "bn_before_conv" if any(CONV.match(u) for u in users) else "bn_not_after_conv"
        return diagnosis, f"{subject} takes its input from {source}, not from a Conv2D"
    source = spec.inputs[0]
    if not CONV.match(g.specs[source].kind):
        diagnosis = "relu_before_bn" if g.specs[source].kind in ACTIVATIONS else "bn_not_after_conv"
        return diagnosis, f"{subject} takes its input from {describe(g, source)}, not from a Conv2D"
    if spec.param("axis") != "channels":
        return "bn_wrong_axis", f"{subject} normalizes axis {fmt(spec.param('axis'))}, not the channel axis"
    return None


def _conv_violation(g: LayerGraph, i: int) -> tuple[str, str] | None:
    """A Conv2D must feed exactly one layer, a BatchNormalization."""
    users = g.consumers(i)
    if len(users) == 1 and g.specs[users[0]].kind == "BatchNormalization" and i not in g.outputs:
        return None
    subject = describe(g, i)
    kinds = [g.specs[u].kind for u in users]
    if "BatchNormalization" in kinds:  # followed by it, and by something else too
        rest = ([describe(g, u) for u in users if g.specs[u].kind != "BatchNormalization"]
                + ["the model's output"] * g.outputs.count(i))
        verb = "reads" if len(rest) == 1 else "read"
        return "bn_not_after_conv", (f"{subject} feeds its BatchNormalization and also {join(rest)}, which "
                                     f"then {verb} its output before it is normalized")
    if kinds and kinds[0] in ACTIVATIONS:
        return "relu_before_bn", f"{subject} is followed by {kinds[0]}, not by BatchNormalization"
    return "bn_missing", f"{subject} is not followed by BatchNormalization"


def expect_bn_after_conv(model: Any, *, minimum: int = 1, every_conv: bool = False) -> None:
    """Every BatchNormalization must read a Conv2D's output directly and normalize its
    channels. `minimum` BatchNormalization layers must exist, so a model without any
    does not pass by having nothing to check (use minimum=0 for an optional BN). With
    `every_conv=True`, also every Conv2D on every branch (a residual block's shortcut
    included) must be followed directly by BatchNormalization.

        expect_bn_after_conv(submission.model("identity_block_model"), every_conv=True)
    """
    g = layer_graph(model)
    bns = [i for i, s in enumerate(g.specs) if s.kind == "BatchNormalization"]
    if len(bns) < minimum:
        raise CheckFailed(f"The model has {len(bns)} BatchNormalization layers; expected at least {minimum}, "
                          "one directly after each Conv2D.", hint=HINT_BN, diagnosis="bn_missing")
    violations = [(i, v) for i in bns if (v := _bn_violation(g, i))]
    if every_conv:
        convs = [i for i, s in enumerate(g.specs) if CONV.match(s.kind)]
        violations += [(i, v) for i in convs if (v := _conv_violation(g, i))]
        violations.sort(key=lambda item: item[0])
    if not violations:
        return
    first, (diagnosis, _) = violations[0]
    text = "; ".join(v[1] for _, v in violations[:4])
    more = f"; and {len(violations) - 4} more" if len(violations) > 4 else ""
    text = text[:1].upper() + text[1:] + more + ". " + WHY_BN_FIRST
    rows = [(str(k + 1), s.label(), join([describe(g, j) for j in s.inputs]) if s.inputs else "the input")
            for k, s in enumerate(g.specs)]
    raise CheckFailed(text, hint=HINT_BN, diagnosis=diagnosis,
                      table=short_table(("#", "layer", "takes its input from"), rows, first))


# ------------------------------------------------------------------ skip connection

_HINT_SKIP = ("keep the block's input as X_shortcut = X before the main path, then after it: "
              "X = Add()([X, X_shortcut]); X = Activation('relu')(X).")
_WHY_SKIP = ("The skip connection lets the block's input reach its output unchanged, so a deep network "
             "can learn the identity easily and its gradients do not vanish.")


def _final_merge(g: LayerGraph) -> Block | None:
    """The block whose Add is nearest the output (the block a block-model is about)."""
    adds = [i for i, s in enumerate(g.specs) if s.kind == "Add" and g.fan_in(i) >= 2]
    return block_at(g, adds[-1]) if adds else None


def _skip_failure(text: str, diagnosis: str, hint: str = _HINT_SKIP) -> CheckFailed:
    return CheckFailed(text, hint=hint, diagnosis=diagnosis)


def _check_merge_then_activation(g: LayerGraph, block: Block, model: str) -> None:
    out = g.outputs[0] if len(g.outputs) == 1 else None
    if out == block.merge:
        after = [s for s in block.sources if s != MODEL_INPUT and g.specs[s].kind in ACTIVATIONS]
        if after:
            raise _skip_failure(
                f"The shortcut is added after the final activation: {model} ends with the Add, which sums the "
                f"shortcut with the output of {describe(g, after[0])}. In a residual block "
                "the Add comes first and the ReLU after it, so the sum of the two paths is what the activation "
                "sees.", "merge_after_activation")
        raise _skip_failure(f"{model[:1].upper() + model[1:]} ends with the Add; the final ReLU after it is missing. "
                            "The activation after the merge is what makes the block non-linear.",
                            "final_activation_missing")
    if out is None or g.specs[out].kind not in ACTIVATIONS or g.specs[out].inputs != (block.merge,):
        ends = describe(g, out) if out is not None else "several outputs"
        raise _skip_failure(f"The Add is not followed by the block's final activation: {model} ends at {ends}. "
                            "A residual block ends with Add then ReLU.", "merge_not_last")


def _check_projection(g: LayerGraph, block: Block, projection: bool) -> None:
    convs = [i for i in block.shortcut if CONV.match(g.specs[i].kind)]
    if projection and not convs:
        raise _skip_failure(
            "The shortcut branch has no Conv2D: the block's input is added as it is. In this block the shortcut "
            "needs its own Conv2D -> BatchNormalization, so that it has the number of channels (and, with a "
            "stride, the size) of the main path's output.", "projection_missing",
            "apply Conv2D then BatchNormalization to X_shortcut (not to X) before the Add.")
    if projection and not any(g.specs[c].kind == "BatchNormalization" for i in convs for c in g.consumers(i)):
        raise _skip_failure(
            f"{describe(g, convs[0])[:1].upper() + describe(g, convs[0])[1:]} is not followed by "
            "BatchNormalization: the shortcut branch must be Conv2D -> BatchNormalization, like the main path, "
            "so both terms of the sum are normalized.", "projection_bn_missing",
            "apply BatchNormalization to X_shortcut right after its Conv2D.")
    if projection is False and block.shortcut:
        raise _skip_failure(
            f"The shortcut branch has layers ({join([_in_branch(g, i) for i in block.shortcut[:3]])}); in this "
            "block it must be the identity: the block's input itself is added to the main path.",
            "projection_unexpected", "add the block's input itself: X = Add()([X, X_shortcut]).")


def _in_branch(g: LayerGraph, i: int) -> str:
    """A layer already known to be on the shortcut branch: its location, or its kind."""
    where = g.nodes[i].location
    return f"{g.specs[i].kind} {where.aside()}" if where else g.specs[i].kind


def expect_skip_connection(model: Any, *, projection: bool | None = None, exercise: str = "") -> None:
    """Fail unless the model (one residual block, from its input to its output) adds
    its input (the shortcut) to the main path with an Add, and ends with the activation
    of that sum. With `projection=True` the shortcut branch must be Conv2D ->
    BatchNormalization (a convolutional block); with False, the identity.

        expect_skip_connection(submission.model("convolutional_block_model"), projection=True)
    """
    g = layer_graph(model)
    model_name = f"the model {exercise} returns" if exercise else "the model"
    block = _final_merge(g)
    if block is None:
        raise _skip_failure(f"There is no skip connection: no Add joins the block's input to the main path. "
                            f"{_WHY_SKIP}", "skip_missing")
    if block.fork != MODEL_INPUT:  # in a one-block model, anything else is on the main path
        raise _skip_failure(
            f"The Add's shortcut starts at {describe(g, block.fork)}, not at the block's input: the shortcut is "
            "computed from the main path's output instead of the block's input, so there is no skip "
            "connection. " + _WHY_SKIP, "shortcut_from_main_path",
            "keep X_shortcut = X at the start of the block and apply the shortcut layers to X_shortcut, not to X.")
    _check_merge_then_activation(g, block, model_name)
    if projection is not None:
        _check_projection(g, block, projection)


__all__ = ["LayerSpec", "LayerGraph", "GraphNode", "GraphTooLarge", "Location", "MAX_CALLS", "Row", "Alignment",
           "layer_specs", "layer_graph", "align_specs", "expect_architecture", "expect_bn_after_conv",
           "expect_skip_connection"]
