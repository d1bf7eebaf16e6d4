"""Residual blocks in a graph: which layers form the main path and which the shortcut
of each merge, so checks can say "the shortcut branch's Conv2D" or "the main path's
second Conv2D" (in the student's framework's names: "nn.Conv2d") instead of a position
in a list the student never sees.

A block is a merge (Add, or Concatenate, ...) of two or more sources; only an Add's
block is residual, and only residual blocks name their layers by branch. Its fork is the
last layer all sources depend on (the block's input), or the model input when they share none.
The main path is the deepest source's branch; the others are shortcuts. In a model of
one block the fork must be the model's input: a fork further in means the "shortcut"
was computed from the main path (a common mistake: the shortcut's layers applied to `X`
instead of `X_shortcut`).
"""
from __future__ import annotations

from dataclasses import dataclass

from grader.checks.graph import LayerGraph
from grader.checks.naming import ordinal, who

MODEL_INPUT = -1


@dataclass(frozen=True)
class Block:
    merge: int
    fork: int  # a node index, or MODEL_INPUT
    main: tuple[int, ...]  # nodes between the fork and the merge, topological order
    shortcut: tuple[int, ...]  # the same for the shortest other source ((): identity)
    sources: tuple[int, ...]  # node indices feeding the merge; MODEL_INPUT for the input


def _lineage(g: LayerGraph, source: int) -> set[int]:
    return set() if source == MODEL_INPUT else g.ancestors(source) | {source}


def block_at(g: LayerGraph, merge: int) -> Block:
    sources = tuple(g.specs[merge].inputs) + (MODEL_INPUT,) * g.nodes[merge].reads_input
    lineages = [_lineage(g, s) for s in sources]
    order = sorted(range(len(sources)), key=lambda k: -len(lineages[k]))
    main_k, short_k = order[0], order[-1]
    common = set.intersection(*lineages) if lineages else set()
    fork = max(common) if common else MODEL_INPUT
    shared = g.ancestors(fork) | {fork} if fork != MODEL_INPUT else set()
    main = tuple(sorted(lineages[main_k] - shared))
    shortcut = tuple(sorted(lineages[short_k] - shared - set(main))) if short_k != main_k else ()
    return Block(merge, fork, main, shortcut, sources)


# Past this many merges, layers are not named by branch (a nicety whose cost grows with
# merges x layers); the checks themselves still run. ResNet50 has 16.
MAX_BLOCKS = 300


def blocks(g: LayerGraph) -> list[Block]:
    """Every merge of two or more sources (Add, Concatenate, ...), in graph order;
    computed once per graph."""
    if "blocks" not in g.memo:
        merges = [i for i in range(len(g.nodes)) if g.fan_in(i) >= 2]
        g.memo["blocks"] = [block_at(g, i) for i in merges] if len(merges) <= MAX_BLOCKS else []
    return g.memo["blocks"]


def residual_blocks(g: LayerGraph) -> list[Block]:
    """The blocks whose merge is an Add: the only ones where "main path", "shortcut" and
    "residual block" mean anything. A Concatenate (a U-Net's skip connection, an
    Inception module) joins branches that are neither, and its layers are named by
    where the student created them instead."""
    return [b for b in blocks(g) if g.specs[b.merge].kind == "Add"]


def _branch_names(g: LayerGraph) -> dict[int, str]:
    if "branch_names" in g.memo:
        return g.memo["branch_names"]
    found, names = residual_blocks(g), {}
    for n, block in enumerate(found):
        where = f" of the {ordinal(n)} residual block" if len(found) > 1 else ""
        for label, members in (("main path", block.main), ("shortcut branch", block.shortcut)):
            ranks: dict[str, list[int]] = {}
            for j in members:
                ranks.setdefault(g.specs[j].kind, []).append(j)
            for same in ranks.values():
                for k, j in enumerate(same):
                    rank = "" if len(same) == 1 else f"{ordinal(k)} "
                    noun = g.specs[j].noun().removeprefix("the ")  # "nn.Conv2d" for a PyTorch model
                    names.setdefault(j, f"the {label}'s {rank}{noun}{where}")
    g.memo["branch_names"] = names
    return names


def branch_name(g: LayerGraph, i: int) -> str | None:
    """"the shortcut branch's Conv2D", "the main path's second Conv2D" (with "of the
    third residual block" when the model has several), or None outside any residual
    block."""
    return _branch_names(g).get(i)


def describe(g: LayerGraph, i: int) -> str:
    """`who`, but a layer Keras named and nobody located is named by its branch."""
    node = g.nodes[i]
    if node.location is None and node.auto_named and not g.specs[i].name.endswith("/activation"):
        name = branch_name(g, i)
        if name:
            return name
    return who(g, i)


__all__ = ["Block", "MAX_BLOCKS", "MODEL_INPUT", "block_at", "blocks", "branch_name", "describe", "residual_blocks"]
