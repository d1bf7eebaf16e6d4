"""Output checks for PyTorch modules: the reference's weights in the student's module.

Two models compute the same function only if they agree with the same weights, so the
reference's parameters and buffers (BatchNorm's running statistics included) are copied
into the student's layers paired by the graph match (`align_graphs`, the pairing the
architecture check reports), both are called on the same inputs in the requested mode
(`train()`: batch statistics; `eval()`: running statistics), and the outputs compared.
Both modules get their own weights and modes back afterwards, whatever happens.

A student's convolution with a bias where the reference has none (`bias=False` before
BatchNorm) gets a zero bias: BatchNorm subtracts any per-channel constant, so the two
compute the same, and the copy must not fail them for it. The reverse (the reference has
the bias) moves the student's BatchNorm running mean by that bias, which is what the
reference computes in `eval()`.

Both merge orders take this one path (`expect_same_torch_outputs`), the transplant being
its parameter: the fixed order's is `transplant` below; `merge_order="either"` passes the
one permuted after a reordered `torch.cat` (`grader.frameworks.torch.weights`). So the
remembered reference outputs, the messages and the `train()`/`eval()` handling cannot
drift apart between the two.

The reference's outputs are remembered on the reference module (`_ReferenceOutputs`):
the reference, its weights and a visible test's inputs are the same for every
submission a grading process grades, so its forward passes were paid again and again
for the same numbers. A remembered output is used only for the same inputs, mode and
state (every parameter and buffer, every submodule's mode, compared by content), and
never for a forward pass that drew random numbers (a dropout in `train()`).
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from grader.checks import CheckFailed
from grader.checks.equivalence import align_graphs
from grader.checks.graph import layer_graph
from grader.checks.merge_order import MIXES, MIXES_TRANSPOSED, PER_CHANNEL, Permuted, permutations
from grader.frameworks.torch.shapes import record_input_shape


def _state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


# The axis a layer's weight keeps its input channels on, by how it reads them
# (`grader.checks.merge_order`): a Conv2d's (out, in, kh, kw) and a Linear's (out, in)
# weight on axis 1, a transposed convolution's (in, out, kh, kw) on axis 0; BatchNorm's
# vectors per channel.
_CHANNEL_AXIS = {MIXES: 1, MIXES_TRANSPOSED: 0, PER_CHANNEL: None}


def permuted_state(source: dict, permuted: Permuted | None) -> dict:
    """A reference layer's state as the student's layer reads it when its input channels
    come in another order (`permuted`, after a reordered `torch.cat`); unchanged for None."""
    if permuted is None:
        return source
    axis = _CHANNEL_AXIS[permuted.role]
    out = dict(source)
    if axis is None:
        for key, value in source.items():
            if value.dim() == 1 and value.shape[0] == len(permuted.perm):
                out[key] = value[list(permuted.perm)]
    elif "weight" in source:
        out["weight"] = torch.from_numpy(permuted.apply([source["weight"].detach().cpu().numpy()], axis)[0])
    return out


def transplant(reference: nn.Module, student: nn.Module, *, merge_order: str = "fixed") -> list[str]:
    """Copy the reference's layer states into the paired student layers; returns the
    student layers left with their own weights (a shape that does not fit). With
    `merge_order="either"`, the layers after a `torch.cat` written in another order take
    the reference's weights permuted alike (none, when the order cannot be absorbed: the
    outputs then differ and the graph check says why)."""
    ref, stu = layer_graph(reference), layer_graph(student)
    pairs = align_graphs(ref, stu).pairs
    permuted = (permutations(ref, stu, pairs) or {}) if merge_order == "either" else {}
    skipped = []
    folded: list[tuple[int, torch.Tensor]] = []  # (student conv node, the reference's bias it lacks)
    with torch.no_grad():
        for e, f in pairs.items():
            source, target = ref.nodes[e].layer, stu.nodes[f].layer
            # A student kit's reference layer is its recorded state dict, not a module.
            if not hasattr(source, "state_dict") or not isinstance(target, nn.Module):
                continue
            theirs = permuted_state(dict(source.state_dict()), permuted.get(f))
            if isinstance(target, nn.Conv2d) and target.bias is None and theirs.get("bias") is not None:
                folded.append((f, theirs["bias"]))
            for key, tensor in target.state_dict().items():
                value = theirs.get(key)
                if value is None:
                    if key == "bias" and "weight" in theirs:  # bias=True where the reference has none
                        tensor.zero_()
                    continue
                if value.shape != tensor.shape:
                    skipped.append(stu.specs[f].label())
                    break
                tensor.copy_(value)
        for f, bias in folded:  # bias=False before BatchNorm where the reference has one: the same model
            _fold_bias(stu, f, bias)
    return skipped


def _fold_bias(graph: Any, conv: int, bias: torch.Tensor) -> None:
    """The reference adds `bias` before its BatchNorm, the student's convolution has none:
    in train() BatchNorm cancels it; in eval() the running mean must absorb it, so the
    student's BatchNorm's running mean is moved by the bias (running_mean - b)."""
    readers = graph.consumers(conv)
    if len(readers) != 1:
        return
    bn = graph.nodes[readers[0]].layer
    if isinstance(bn, (nn.BatchNorm2d, nn.BatchNorm1d)) and bn.running_mean is not None \
            and bn.running_mean.shape == bias.shape:
        bn.running_mean.sub_(bias)


def _run(module: nn.Module, x: torch.Tensor, training: bool | None, who: str) -> list[np.ndarray]:
    """One forward pass on one intra-op thread: grading runs a process per core, and on a busy
    2-core machine two threads waiting on each other made conv_bn_torch's passes 10-15x slower
    in wall time and CPU than one (bench/torch_bench.py)."""
    if training is not None:
        module.train(training)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            out = module(x)
    except CheckFailed:
        raise
    except Exception as exc:  # noqa: BLE001 - any error in the forward pass is feedback
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckFailed(f"Calling {who} on a batch of shape {tuple(x.shape)} failed: {text[:400]}",
                          hint="check each layer's in_channels / in_features against the previous layer's output, "
                               "and the input shape (N, C, H, W) of the specification.",
                          diagnosis="model_call_failed") from None
    finally:
        torch.set_num_threads(threads)
    flat = list(out) if isinstance(out, (tuple, list)) else [out]
    return [o.detach().cpu().numpy() if isinstance(o, torch.Tensor) else np.asarray(o) for o in flat]


def _bytes(tensor: torch.Tensor) -> np.ndarray:
    """A tensor's memory as bytes to hash, whatever its dtype (NumPy has no bfloat16)."""
    flat = tensor.detach().cpu().contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy() if flat.numel() else np.zeros(0, np.uint8)


class _ReferenceOutputs:
    """A reference module's outputs by (inputs, mode, state), kept on the module itself so
    they go when it goes. Bounded: a hidden test's inputs differ per submission."""

    ATTRIBUTE = "_grader_reference_outputs"
    LIMIT = 16

    @classmethod
    def of(cls, module: nn.Module) -> "OrderedDict[tuple, list[np.ndarray]]":
        held = module.__dict__.get(cls.ATTRIBUTE)
        if not isinstance(held, OrderedDict):
            held = module.__dict__[cls.ATTRIBUTE] = OrderedDict()
        return held

    @staticmethod
    def key(module: nn.Module, x: torch.Tensor, training: bool | None) -> tuple:
        """Everything a forward pass of a deterministic module reads: the inputs, the
        mode asked for (or, for None, each submodule's own), and the state by content."""
        h = hashlib.blake2b(digest_size=16)
        h.update(_bytes(x))
        for name, tensor in module.state_dict(keep_vars=False).items():
            h.update(f"{name}\0{tuple(tensor.shape)}\0{tensor.dtype}\0".encode())
            h.update(_bytes(tensor))
        modes = tuple(m.training for m in module.modules()) if training is None else ()
        return (tuple(x.shape), str(x.dtype), training, modes, h.digest())

    @classmethod
    def run(cls, module: nn.Module, x: torch.Tensor, training: bool | None, who: str) -> list[np.ndarray]:
        """`_run(module, ...)`, or what it returned before for the same key. A pass that
        moved torch's random number generator is not remembered: its outputs are draws."""
        held, key = cls.of(module), cls.key(module, x, training)
        if key in held:
            held.move_to_end(key)
            return held[key]
        rng = torch.random.get_rng_state()
        state, modes = _state(module), [(m, m.training) for m in module.modules()]
        try:
            out = _run(module, x, training, who)
        finally:  # a train() pass moves BatchNorm's running statistics
            with torch.no_grad():
                module.load_state_dict(state)
            for m, mode in modes:
                m.training = mode
        if torch.equal(rng, torch.random.get_rng_state()):
            out = [np.array(array) for array in out]  # not a view of the test's inputs (an Identity)
            for array in out:
                array.setflags(write=False)  # shared by every later check that asks
            held[key] = out
            while len(held) > cls.LIMIT:
                held.popitem(last=False)
        return out


def one_input(inputs: Any, who: str) -> torch.Tensor:
    """The test's input as the one float32 tensor a module is called on; several inputs
    (a list of arrays) are refused by name rather than stacked into one batch."""
    items = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    if len(items) != 1:
        raise CheckFailed(f"{who[:1].upper() + who[1:]} was given {len(items)} inputs; the PyTorch checks call "
                          "a module on one input tensor.", diagnosis="model_call_failed")
    return torch.from_numpy(np.ascontiguousarray(np.asarray(items[0]), dtype=np.float32))


def expect_same_torch_outputs(reference: nn.Module, student: nn.Module, inputs: np.ndarray, *,
                              training: bool | None, rtol: float = 1e-5, atol: float = 1e-6,
                              what: str = "output", merge_order: str = "fixed") -> None:
    """`expect_same_outputs` for two torch modules (the adapter dispatches here, for every
    merge order): training=True calls both in `train()`, False in `eval()`, None in the
    mode each was returned in.

    `merge_order` ("fixed" or "either") picks the transplant (`transplant`: the reference's
    weights permuted after a `torch.cat` written in another order, for "either") and what a
    difference is explained with. The transplant only reads the reference, so the
    reference's outputs are the same in both orders, remembered once for both
    (`_ReferenceOutputs`)."""
    from grader.checks.models import compare_outputs
    origin = getattr(student, "origin_call", None)
    if getattr(student, "fx_graph", 0) is None and origin is not None:  # untraceable: run in the child
        from grader.frameworks.torch.untraced import expect_same_outputs_by_hooks
        submission, name, args, kwargs = origin
        return expect_same_outputs_by_hooks(reference, student, submission, name, inputs, training=training,
                                            args=args, kwargs=kwargs, rtol=rtol, atol=atol)
    x = one_input(inputs, "the reference model")
    for module in (reference, student):  # both graphs (the transplant's pairing) read at the test's shape
        record_input_shape(module, x.shape[1:])
    remembered = isinstance(reference, nn.Module)  # not a kit's recorded or recording stand-in
    if remembered:
        expected = _ReferenceOutputs.run(reference, x, training, "the reference model")
    saved = [(m, _state(m), m.training) for m in ((student,) if remembered else (reference, student))]
    try:
        transplant(reference, student, merge_order=merge_order)
        if not remembered:
            expected = _run(reference, x, training, "the reference model")
        found = _run(student, x, training, "your model")
    finally:
        with torch.no_grad():
            for module, state, mode in saved:
                module.load_state_dict(state)
                module.train(mode)
    compare_outputs(expected, found, reference, student, training=training, rtol=rtol, atol=atol, what=what,
                    merge_order=merge_order, settings_hint=lambda: _torch_settings_hint(training))


def _torch_settings_hint(training: bool | None) -> str:
    mode = {True: "train()", False: "eval()", None: "the mode your model was returned in"}[training]
    return (f"the graph matches the reference's, so compare the settings it does not show: BatchNorm's eps and "
            f"momentum, and any F.dropout / F.batch_norm whose training= ignores {mode}.")


__all__ = ["expect_same_torch_outputs", "one_input", "permuted_state", "transplant"]
