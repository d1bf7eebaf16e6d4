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
from grader.checks.explain import explain_difference, hint_bn, short_table, why_bn_first
from grader.checks.graph import GraphNode, GraphTooLarge, LayerGraph, Location, MAX_CALLS, layer_graph, layer_specs
from grader.checks.matching import Alignment, Row, align_specs
from grader.checks.naming import cap, join, noun_in
from grader.checks.residual import MODEL_INPUT, Block, block_at, describe
from grader.checks.specs import ACTIVATIONS, CONV, LayerSpec, fmt, framework_of, kind_noun
from grader.results import note


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
    expected, found = layer_graph(expected_model), layer_graph(found_model)
    failure = explain_difference(expected, found, exercise=exercise, merge_order=merge_order, compare=compare)
    if failure is not None:
        raise failure
    for text in bias_notes(expected, found):
        note(text)


def _has_bias(spec: LayerSpec) -> bool | None:
    """Whether a convolution adds a bias, from its settings or from what its adapter set
    aside (PyTorch's graph leaves the bias out of the comparison); None when unknown."""
    if spec.param("use_bias") is False:
        return False
    aside = dict(spec.set_aside)
    if "use_bias" in aside:
        return bool(aside["use_bias"])
    return True if not spec.framework else None


def bias_notes(expected: LayerGraph, found: LayerGraph) -> list[str]:
    """Teaching notes for a model that passed: a convolution with a bias right before
    BatchNorm, where the specification has none, computes the same (BatchNorm subtracts
    each channel's mean, bias included, and its own shift takes the bias's place), so it is
    accepted; the student still hears that the bias is wasted. The layers are matched by
    kind and order of appearance: the model passed, so they line up."""
    wanted = [s for s in expected.specs if CONV.match(s.kind)]
    got = [i for i, s in enumerate(found.specs) if CONV.match(s.kind)]
    wasted = [i for e, i in zip(wanted, got) if _has_bias(found.specs[i]) and _has_bias(e) is False
              and [found.specs[c].kind for c in found.consumers(i)] == ["BatchNormalization"]]
    if not wasted:
        return []
    fw = framework_of(found.specs)
    conv, bn = kind_noun("Conv2D", fw), kind_noun("BatchNormalization", fw)
    flag = "bias" if fw == "torch" else "use_bias"
    names = [describe(found, i) for i in wasted[:3]] + ([f"{len(wasted) - 3} more"] if len(wasted) > 3 else [])
    which = f" ({join(names)})" if names != [conv] else ""  # where, when there is more to say than the kind
    return [f"{conv}(..., {flag}=True) before {bn}: accepted{which}; the batch norm subtracts the mean, so the "
            f"convolution's bias has no effect — `{flag}=False` saves parameters."]


# ------------------------------------------------------------------ BN after Conv

def _bn_violation(g: LayerGraph, i: int) -> tuple[str, str] | None:
    spec = g.specs[i]
    subject = describe(g, i)
    conv = noun_in(g, "Conv2D")
    if len(spec.inputs) != 1 or g.nodes[i].reads_input:
        source = "the model input" if g.nodes[i].reads_input and not spec.inputs else "several layers"
        users = [g.specs[c].kind for c in g.consumers(i)]
        diagnosis = "bn_before_conv" if any(CONV.match(u) for u in users) else "bn_not_after_conv"
        return diagnosis, f"{subject} takes its input from {source}, not from a {conv}"
    source = spec.inputs[0]
    if not CONV.match(g.specs[source].kind):
        diagnosis = "relu_before_bn" if g.specs[source].kind in ACTIVATIONS else "bn_not_after_conv"
        return diagnosis, f"{subject} takes its input from {describe(g, source)}, not from a {conv}"
    if spec.param("axis") != "channels":
        return "bn_wrong_axis", f"{subject} normalizes axis {fmt(spec.param('axis'))}, not the channel axis"
    return None


def _conv_violation(g: LayerGraph, i: int) -> tuple[str, str] | None:
    """A Conv2D must feed exactly one layer, a BatchNormalization."""
    users = g.consumers(i)
    if len(users) == 1 and g.specs[users[0]].kind == "BatchNormalization" and i not in g.outputs:
        return None
    subject, bn = describe(g, i), noun_in(g, "BatchNormalization")
    kinds = [g.specs[u].kind for u in users]
    if "BatchNormalization" in kinds:  # followed by it, and by something else too
        rest = ([describe(g, u) for u in users if g.specs[u].kind != "BatchNormalization"]
                + ["the model's output"] * g.outputs.count(i))
        verb = "reads" if len(rest) == 1 else "read"
        return "bn_not_after_conv", (f"{subject} feeds its {bn} and also {join(rest)}, which "
                                     f"then {verb} its output before it is normalized")
    if kinds and kinds[0] in ACTIVATIONS:
        return "relu_before_bn", f"{subject} is followed by {g.specs[users[0]].noun()}, not by {bn}"
    return "bn_missing", f"{subject} is not followed by {bn}"


def expect_bn_after_conv(model: Any, *, minimum: int = 1, every_conv: bool = False) -> None:
    """Every BatchNormalization must read a Conv2D's output directly and normalize its
    channels. `minimum` BatchNormalization layers must exist, so a model without any
    does not pass by having nothing to check (use minimum=0 for an optional BN). With
    `every_conv=True`, also every Conv2D on every branch (a residual block's shortcut
    included) must be followed directly by BatchNormalization.

        expect_bn_after_conv(submission.model("identity_block_model"), every_conv=True)
    """
    g = layer_graph(model)
    fw = framework_of(g.specs)
    bns = [i for i, s in enumerate(g.specs) if s.kind == "BatchNormalization"]
    if len(bns) < minimum:
        raise CheckFailed(f"The model has {len(bns)} {noun_in(g, 'BatchNormalization')} layers; expected at least "
                          f"{minimum}, one directly after each {noun_in(g, 'Conv2D')}.", hint=hint_bn(fw),
                          diagnosis="bn_missing")
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
    text = cap(text) + more + ". " + why_bn_first(fw)
    rows = [(str(k + 1), s.label(), join([describe(g, j) for j in s.inputs]) if s.inputs else "the input")
            for k, s in enumerate(g.specs)]
    raise CheckFailed(text, hint=hint_bn(fw), diagnosis=diagnosis,
                      table=short_table(("#", "layer", "takes its input from"), rows, first))


# ------------------------------------------------------------------ skip connection

_WHY_SKIP = ("The skip connection lets the block's input reach its output unchanged, so a deep network "
             "can learn the identity easily and its gradients do not vanish.")


class _Words:
    """The skip-connection checks' words and code in the student's framework."""

    def __init__(self, g: LayerGraph):
        torch = framework_of(g.specs) == "torch"
        self.add = "the addition (x + shortcut)" if torch else "the Add"
        self.conv, self.bn = noun_in(g, "Conv2D"), noun_in(g, "BatchNormalization")
        self.relu = "ReLU"
        self.keep = "shortcut = x" if torch else "X_shortcut = X"
        self.shortcut = "shortcut" if torch else "X_shortcut"
        self.main = "x" if torch else "X"
        self.sum = "x = x + shortcut" if torch else "X = Add()([X, X_shortcut])"
        self.activate = "x = torch.relu(x)" if torch else "X = Activation('relu')(X)"

    def hint(self) -> str:
        return (f"keep the block's input as {self.keep} before the main path, then after it: "
                f"{self.sum}; {self.activate}.")


def _final_merge(g: LayerGraph) -> Block | None:
    """The block whose Add is nearest the output (the block a block-model is about)."""
    adds = [i for i, s in enumerate(g.specs) if s.kind == "Add" and g.fan_in(i) >= 2]
    return block_at(g, adds[-1]) if adds else None


def _skip_failure(text: str, diagnosis: str, hint: str) -> CheckFailed:
    return CheckFailed(text, hint=hint, diagnosis=diagnosis)


def _check_merge_then_activation(g: LayerGraph, block: Block, model: str, w: _Words) -> None:
    out = g.outputs[0] if len(g.outputs) == 1 else None
    if out == block.merge:
        after = [s for s in block.sources if s != MODEL_INPUT and g.specs[s].kind in ACTIVATIONS]
        if after:
            raise _skip_failure(
                f"The shortcut is added after the final activation: {model} ends with {w.add}, which sums the "
                f"shortcut with the output of {describe(g, after[0])}. In a residual block "
                f"{w.add} comes first and the {w.relu} after it, so the sum of the two paths is what the activation "
                "sees.", "merge_after_activation", w.hint())
        raise _skip_failure(f"{cap(model)} ends with {w.add}; the final {w.relu} after it is missing. "
                            "The activation after the merge is what makes the block non-linear.",
                            "final_activation_missing", w.hint())
    if out is None or g.specs[out].kind not in ACTIVATIONS or g.specs[out].inputs != (block.merge,):
        ends = describe(g, out) if out is not None else "several outputs"
        raise _skip_failure(f"{cap(w.add)} is not followed by the block's final activation: {model} ends at {ends}. "
                            f"A residual block ends with {w.add.removeprefix('the ')} then {w.relu}.",
                            "merge_not_last", w.hint())


def _check_projection(g: LayerGraph, block: Block, projection: bool, w: _Words) -> None:
    convs = [i for i in block.shortcut if CONV.match(g.specs[i].kind)]
    if projection and not convs:
        raise _skip_failure(
            f"The shortcut branch has no {w.conv}: the block's input is added as it is. In this block the shortcut "
            f"needs its own {w.conv} -> {w.bn}, so that it has the number of channels (and, with a "
            "stride, the size) of the main path's output.", "projection_missing",
            f"apply {w.conv} then {w.bn} to {w.shortcut} (not to {w.main}) before {w.add}.")
    if projection and not any(g.specs[c].kind == "BatchNormalization" for i in convs for c in g.consumers(i)):
        raise _skip_failure(
            f"{cap(describe(g, convs[0]))} is not followed by {w.bn}: the shortcut branch must be "
            f"{w.conv} -> {w.bn}, like the main path, so both terms of the sum are normalized.",
            "projection_bn_missing", f"apply {w.bn} to {w.shortcut} right after its {w.conv}.")
    if projection is False and block.shortcut:
        raise _skip_failure(
            f"The shortcut branch has layers ({join([_in_branch(g, i) for i in block.shortcut[:3]])}); in this "
            "block it must be the identity: the block's input itself is added to the main path.",
            "projection_unexpected", f"add the block's input itself: {w.sum}.")


def _in_branch(g: LayerGraph, i: int) -> str:
    """A layer already known to be on the shortcut branch: its location, or its kind."""
    where = g.nodes[i].location
    return f"{g.specs[i].noun()} {where.aside()}" if where else g.specs[i].noun()


def expect_skip_connection(model: Any, *, projection: bool | None = None, exercise: str = "") -> None:
    """Fail unless the model (one residual block, from its input to its output) adds
    its input (the shortcut) to the main path with an Add, and ends with the activation
    of that sum. With `projection=True` the shortcut branch must be Conv2D ->
    BatchNormalization (a convolutional block); with False, the identity. The feedback
    speaks the model's framework (`x + shortcut` and `nn.Conv2d` for PyTorch).

        expect_skip_connection(submission.model("convolutional_block_model"), projection=True)
    """
    g = layer_graph(model)
    w = _Words(g)
    model_name = f"the model {exercise} returns" if exercise else "the model"
    block = _final_merge(g)
    if block is None:
        raise _skip_failure(f"There is no skip connection: no {w.add.removeprefix('the ')} joins the block's input "
                            f"to the main path. {_WHY_SKIP}", "skip_missing", w.hint())
    if block.fork != MODEL_INPUT:  # in a one-block model, anything else is on the main path
        raise _skip_failure(
            f"{cap(w.add)}'s shortcut starts at {describe(g, block.fork)}, not at the block's input: the shortcut is "
            "computed from the main path's output instead of the block's input, so there is no skip "
            "connection. " + _WHY_SKIP, "shortcut_from_main_path",
            f"keep {w.keep} at the start of the block and apply the shortcut layers to {w.shortcut}, "
            f"not to {w.main}.")
    _check_merge_then_activation(g, block, model_name, w)
    if projection is not None:
        _check_projection(g, block, projection, w)


__all__ = ["LayerSpec", "LayerGraph", "GraphNode", "GraphTooLarge", "Location", "MAX_CALLS", "Row", "Alignment",
           "layer_specs", "layer_graph", "align_specs", "expect_architecture", "expect_bn_after_conv",
           "expect_skip_connection"]
