"""The order a merge takes its inputs in: the policy, and the weight permutation that
makes another order compute the same.

Policy (documented in docs/authoring.md, "Merge order"):
- Commutative merges (Add, Multiply, Average, Maximum, Minimum) match in any order: the
  adapters list their inputs canonically (Keras': `grader.frameworks.keras.walk`).
- Everything else keeps the order the student wrote, and by default that order is part of
  the architecture (`merge_order="fixed"`): `concatenate([contractive_input, up])` where
  the specification says `concatenate([up, contractive_input])` fails, naming the merge
  and both inputs. The same holds for a block's own inputs (a model input is a source
  like any layer), so a lone block and the whole model give the same verdict.
- `merge_order="either"` accepts a Concatenate on the channel axis in any order when
  the layers after it can absorb the order: the channels then arrive permuted, which the
  next layer that mixes channels (Conv, Conv2DTranspose, Dense) undoes with its input
  weights permuted alike, and channel-wise layers on the way (BatchNormalization,
  activations, pooling, dropout, padding) carry along with their per-channel weights
  permuted. The output checks copy the reference's weights in permuted that way, so the
  graph check and the output checks agree (the permutation is neutral; which weight axis
  it runs along is the framework adapter's: `Permuted.role`). A swap that reaches the model's output, or a
  layer that cannot absorb it, still fails.
- PyTorch's `torch.cat` follows the same policy: its graph records shapes channels last
  like every graph, and its specs count dims as torch does, where dim 1 is the channel
  axis (`_CHANNELS_FIRST`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
import numpy as np

from grader.checks.graph import LayerGraph
from grader.checks.specs import ACTIVATIONS, POOL

MERGE_ORDERS = ("fixed", "either")
# A reference input with no counterpart in the student's graph (never equal to a source).
UNPAIRED = -10**9
_PASS_THROUGH = re.compile(r"^(Dropout|SpatialDropout\dD|GaussianDropout|GaussianNoise|AlphaDropout|ZeroPadding\dD|"
                           r"Cropping\dD|UpSampling\dD|Identity)$")
_MIXES = re.compile(r"^(Conv\dD|Dense)$")
_TRANSPOSED = re.compile(r"^Conv\dDTranspose$")


def check_merge_order(value: str) -> str:
    """The instructor's `merge_order=`, or a ValueError naming the accepted values."""
    if value not in MERGE_ORDERS:
        raise ValueError(f"merge_order must be one of {', '.join(map(repr, MERGE_ORDERS))}, not {value!r}")
    return value


# What a permuted layer's weights run over the channels with (`Permuted.role`): a layer
# mixing channels has one axis of its kernel over its input channels, where that axis
# lies is the framework's layout; a channel-wise layer has per-channel vectors.
MIXES, MIXES_TRANSPOSED, PER_CHANNEL = "mixes", "mixes_transposed", "per_channel"


@dataclass(frozen=True)
class Permuted:
    """A student's layer whose weights take the reference's permuted: `perm[i]` is the
    reference's channel that the student's channel i holds; `role` which weights run
    over those channels (see above). The framework's adapter says which axis that is."""

    node: int
    perm: tuple[int, ...]
    role: str

    def apply(self, weights: list, axis: int | None) -> list[np.ndarray]:
        """The weights permuted: the first one (the kernel) along `axis`, or with
        `axis=None` every per-channel vector."""
        index = np.asarray(self.perm)
        out = []
        for k, w in enumerate(weights):
            w = np.asarray(w)
            if axis is None:
                out.append(np.take(w, index, axis=0) if w.ndim == 1 and w.shape[0] == len(index) else w)
            elif k == 0:
                out.append(np.take(w, index, axis=axis))
            else:
                out.append(w)
        return out


def wanted_and_got(exp: LayerGraph, e: int, fnd: LayerGraph, f: int, pairs: dict) -> tuple[list[int], list[int]]:
    """The reference's inputs of `e` mapped to the student's nodes (model inputs as
    `-1 - k` on both sides), and the student's inputs of `f`, each in call order."""
    wanted = [pairs.get(s, UNPAIRED) if s >= 0 else s for s in exp.feeds(e)]
    return wanted, list(fnd.feeds(f))


# Graphs whose specs count axes channels first, as their students write them (PyTorch's
# NCHW: `torch.cat(..., dim=1)`), although every graph records shapes channels last.
_CHANNELS_FIRST = frozenset({"torch"})


def channel_concat(g: LayerGraph, i: int) -> bool:
    """A Concatenate joining along the channel axis: the last (Keras), or dim 1 of a
    channels-first framework's tensor."""
    node = g.nodes[i]
    rank = len(node.input_shape) if node.input_shape is not None else None
    if node.spec.kind != "Concatenate" or rank is None:
        return False
    if node.spec.framework in _CHANNELS_FIRST:
        return node.spec.param("axis") in (1, 1 - rank)
    return node.spec.param("axis") in (rank - 1, -1)


def _segments(shapes: tuple, count: int) -> list[int] | None:
    sizes = [s[-1] if s else None for s in shapes]
    if len(sizes) != count or any(not isinstance(n, int) for n in sizes):
        return None
    return sizes


def channel_permutation(exp: LayerGraph, e: int, fnd: LayerGraph, f: int, pairs: dict) -> tuple[int, ...] | None:
    """For a channel Concatenate whose inputs the student wrote in another order: which
    reference channel each of the student's channels holds; None when the inputs are not
    the same set or their channel counts are unknown."""
    wanted, got = wanted_and_got(exp, e, fnd, f, pairs)
    if sorted(wanted) != sorted(got) or not (channel_concat(exp, e) and channel_concat(fnd, f)):
        return None
    ref_sizes = _segments(exp.nodes[e].input_shapes, len(wanted))
    stu_sizes = _segments(fnd.nodes[f].input_shapes, len(got))
    if ref_sizes is None or stu_sizes is None:
        return None
    offsets = np.cumsum([0] + ref_sizes)
    used: set[int] = set()
    perm: list[int] = []
    for k, source in enumerate(got):
        r = next((r for r, w in enumerate(wanted) if w == source and r not in used), None)
        if r is None or ref_sizes[r] != stu_sizes[k]:
            return None
        used.add(r)
        perm += range(int(offsets[r]), int(offsets[r]) + ref_sizes[r])
    return tuple(perm)


def absorbers(fnd: LayerGraph, f: int, perm: tuple[int, ...]) -> list[Permuted] | None:
    """The layers after the student's merge `f` whose weights, permuted, make the
    permuted channels compute what the reference computes; None when the permutation
    reaches the model's output or a layer that cannot absorb it."""
    found: list[Permuted] = []
    seen, stack = set(), [f]
    while stack:
        i = stack.pop()
        if i in fnd.outputs:
            return None
        for c in fnd.consumers(i):
            if c in seen:
                continue
            seen.add(c)
            node = fnd.nodes[c]
            kind = node.spec.kind
            if len(fnd.feeds(c)) != 1:
                return None
            if _MIXES.match(kind) or _TRANSPOSED.match(kind):
                if node.layer is None:
                    return None
                found.append(Permuted(c, perm, MIXES_TRANSPOSED if _TRANSPOSED.match(kind) else MIXES))
            elif kind == "BatchNormalization" and node.spec.param("axis") == "channels":
                found.append(Permuted(c, perm, PER_CHANNEL))
                stack.append(c)
            elif kind in ACTIVATIONS and kind != "Softmax" or POOL.match(kind) or _PASS_THROUGH.match(kind):
                stack.append(c)
            else:
                return None
    return found


def permutations(exp: LayerGraph, fnd: LayerGraph, pairs: dict) -> dict[int, Permuted] | None:
    """Every student layer that needs the reference's weights permuted, by node, for the
    Concatenates written in another order than the reference's; None when one such
    order cannot be absorbed (see `absorbers`)."""
    out: dict[int, Permuted] = {}
    for e, f in pairs.items():
        if exp.specs[e].kind != "Concatenate":
            continue
        wanted, got = wanted_and_got(exp, e, fnd, f, pairs)
        if wanted == got:
            continue
        perm = channel_permutation(exp, e, fnd, f, pairs)
        found = absorbers(fnd, f, perm) if perm is not None else None
        if found is None:
            return None
        for p in found:
            if p.node in out:
                return None
            out[p.node] = p
    return out


def layer_permutations(fnd: LayerGraph, by_node: dict[int, Permuted]) -> dict[int, Permuted]:
    """The same, by the id of the student's layer object (the weight transplant's key)."""
    return {id(fnd.nodes[n].layer): p for n, p in by_node.items() if fnd.nodes[n].layer is not None}


def order_accepted(exp: LayerGraph, e: int, fnd: LayerGraph, f: int, pairs: dict, merge_order: str) -> bool:
    """Whether node `f` taking the inputs of `e` in another order passes under the
    assignment's policy (the same inputs, and `merge_order="either"` able to absorb it)."""
    if merge_order != "either" or exp.specs[e].kind != "Concatenate":
        return False
    perm = channel_permutation(exp, e, fnd, f, pairs)
    return perm is not None and absorbers(fnd, f, perm) is not None


__all__ = ["MERGE_ORDERS", "MIXES", "MIXES_TRANSPOSED", "PER_CHANNEL", "UNPAIRED", "Permuted", "absorbers",
           "channel_concat", "channel_permutation", "check_merge_order", "layer_permutations", "order_accepted",
           "permutations", "wanted_and_got"]
