"""The PyTorch adapter's weight transplant and forward passes, as the neutral checks ask
for them (`copy_weights`, `outputs`, `input_shape`).

`copy_weights` is the transplant an instructor calls: layers paired by the graph match
(`align_graphs`), every shape checked before anything is written (a failure leaves the
student's module as it was), the reference's parameters and buffers (BatchNorm's running
statistics) copied in. A convolution's bias before BatchNorm follows the output checks'
rule (`grader.frameworks.torch.outputs`): zeroed where the reference has none, folded
into the running mean where the student has none.

`merge_order="either"`: a `torch.cat` whose inputs the student wrote in another order
delivers the reference's channels permuted; the layers after it take the reference's
weights permuted alike (`grader.checks.merge_order` finds which and how;
`outputs.permuted_state` applies it to torch's weight layout). The output check of both
orders is `outputs.expect_same_torch_outputs`.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn

from grader.checks import CheckFailed
from grader.checks.equivalence import align_graphs
from grader.checks.graph import layer_graph
from grader.checks.merge_order import check_merge_order, permutations
from grader.checks.models import _layer_pairs
from grader.checks.naming import ordinal
from grader.frameworks.torch.outputs import _fold_bias, _run, _state, one_input, permuted_state
from grader.frameworks.torch.shapes import derived_input_shape, record_input_shape, recorded_input_shape

def _untraced(module: Any) -> bool:
    return isinstance(module, nn.Module) and getattr(module, "fx_graph", 0) is None


def _no_graph(operation: str) -> CheckFailed:
    return CheckFailed(
        f"{operation} needs the module's layer graph, and `forward` of this module cannot be traced by torch.fx "
        "(an `if` on a tensor's value), so its layers cannot be paired with the reference's.",
        hint="(for the instructor) grade such a module with expect_same_outputs, which runs it in the sandbox with "
             "the reference's weights, or with grader.frameworks.torch.untraced.",
        diagnosis="untraceable_forward")


def _who(graph: Any, f: int) -> str:
    label = graph.specs[f].display or graph.specs[f].label()
    rank, count = graph.kind_rank(f)
    return label if count == 1 else f"the {ordinal(rank)} {label}"


def _plan(reference: nn.Module, student: nn.Module, merge_order: str) -> tuple[list, list]:
    """What the transplant writes, as (student tensor, value) pairs, and the BatchNorm
    folds (student graph, conv node, bias); CheckFailed naming the first layer whose
    weights do not fit, before anything is written."""
    ref, stu = layer_graph(reference), layer_graph(student)
    alignment = align_graphs(ref, stu)
    pairs = _layer_pairs(ref, stu, alignment)
    permuted = (permutations(ref, stu, alignment.pairs) or {}) if merge_order == "either" else {}
    writes: list[tuple[torch.Tensor, torch.Tensor]] = []
    folds: list[tuple[Any, int, torch.Tensor]] = []
    seen: set[int] = set()
    for e, f in pairs:
        source, target = ref.nodes[e].layer, stu.nodes[f].layer
        if not hasattr(source, "state_dict") or not isinstance(target, nn.Module) or id(target) in seen:
            continue
        seen.add(id(target))
        theirs = permuted_state(dict(source.state_dict()), permuted.get(f))
        if isinstance(target, nn.Conv2d) and target.bias is None and theirs.get("bias") is not None:
            folds.append((stu, f, theirs["bias"]))
        for key, tensor in target.state_dict(keep_vars=True).items():
            value = theirs.get(key)
            if value is None:
                if key == "bias" and "weight" in theirs:  # bias=True where the reference has none
                    writes.append((tensor, torch.zeros_like(tensor)))
                continue
            if tuple(value.shape) != tuple(tensor.shape):
                raise CheckFailed(
                    f"{_who(stu, f)}'s {key} has shape {tuple(tensor.shape)}; the reference's has shape "
                    f"{tuple(value.shape)}, so the reference's weights cannot be copied. A weight's shape follows "
                    "from the layer's settings (in_channels, out_channels, kernel_size, in_features).",
                    hint="check this layer's settings against the specification.", diagnosis="weight_shape_mismatch")
            writes.append((tensor, value))
    return writes, folds


def copy_weights(reference: nn.Module, student: nn.Module, *, merge_order: str = "fixed") -> None:
    """The reference's parameters and buffers written into the paired layers of the
    student's module (see the module docstring)."""
    check_merge_order(merge_order)
    if _untraced(student):
        raise _no_graph("copy_weights")
    writes, folds = _plan(reference, student, merge_order)
    with torch.no_grad():
        for tensor, value in writes:
            tensor.copy_(value.to(tensor.dtype))
        for graph, conv, bias in folds:
            _fold_bias(graph, conv, bias)


def run(module: nn.Module, inputs: Any, training: bool | None, who: str) -> list[np.ndarray]:
    """One forward pass in the mode asked (`train()` for True, `eval()` for False, the
    module's own for None) on one input (several are refused); the module's mode and
    state (a BatchNorm's running statistics move in `train()`) are restored, and a pass
    that ran records its input shape."""
    x = one_input(inputs, who)
    state, mode = _state(module), module.training
    try:
        found = _run(module, x, training, who)
    finally:
        with torch.no_grad():
            module.load_state_dict(state)
        module.train(mode)
    record_input_shape(module, x.shape[1:])
    return found


def outputs(model: nn.Module, inputs: Any, training: bool | None, who: str) -> list[np.ndarray]:
    """The adapter's `outputs`: a module torch.fx cannot trace runs where it lives, in the
    sandbox child (it remembers the call that returned it); any other runs here."""
    origin = getattr(model, "origin_call", None)
    if _untraced(model) and origin is not None:
        from grader.frameworks.torch.untraced import hooked_run
        submission, name, args, kwargs = origin
        found = list(hooked_run(submission, name, inputs, args=args, kwargs=kwargs, training=training).outputs)
        record_input_shape(model, np.shape(inputs)[1:])
        return found
    return run(model, inputs, training, who)


def input_shape(model: nn.Module) -> tuple:
    """The shape the module last ran on through the grader (or was recorded for), batch
    axis left out, NCHW; else what its layers say (`shapes.derived_input_shape`)."""
    recorded = recorded_input_shape(model)
    if recorded is not None:
        return recorded
    if _untraced(model):
        raise CheckFailed(
            "The grader cannot tell which input shape this PyTorch module was built for: its forward cannot be "
            "traced by torch.fx, and a module does not record its input.",
            hint="(for the instructor) run it on an input of the shape first: expect_output_shape records it.",
            diagnosis="input_shape_unknown")
    from grader.frameworks.torch.graph import _fx_graph
    graph, root, _ = _fx_graph(model)
    return derived_input_shape(root, graph)


__all__ = ["copy_weights", "input_shape", "outputs", "run"]
