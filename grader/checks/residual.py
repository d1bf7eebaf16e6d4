"""Residual blocks in a graph: which layers form the main path and which the shortcut
of each merge, so checks can say "the shortcut branch's Conv2D" or "the main path's
second Conv2D" instead of a position in a list the student never sees.

A block is a merge (Add, or Concatenate, ...) of two or more sources. Its fork is the last layer
both sources depend on (the block's input), or the model input when they share none.
The main path is the deepest source's branch; the others are shortcuts. A source that
depends on another source is not a skip connection at all: the "shortcut" was computed
from the main path (a common mistake: `X_shortcut = Conv2D(...)(X)` after the main path).
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
    shortcut_from_main: bool  # one source depends on another: no real skip connection
    sources: tuple[int, ...]  # node indices feeding the merge; MODEL_INPUT for the input


def _lineage(g: LayerGraph, source: int) -> set[int]:
    return set() if source == MODEL_INPUT else g.ancestors(source) | {source}


def _depth(g: LayerGraph, source: int) -> int:
    return 0 if source == MODEL_INPUT else len(_lineage(g, source))


def block_at(g: LayerGraph, merge: int) -> Block:
    sources = tuple(g.specs[merge].inputs) + (MODEL_INPUT,) * g.nodes[merge].reads_input
    lineages = [_lineage(g, s) for s in sources]
    order = sorted(range(len(sources)), key=lambda k: -_depth(g, sources[k]))
    main_k, short_k = order[0], order[-1]
    from_main = any(sources[a] != MODEL_INPUT and sources[a] in lineages[b]
                    for a in range(len(sources)) for b in range(len(sources)) if a != b)
    common = set.intersection(*lineages) if lineages else set()
    fork = max(common) if common else MODEL_INPUT
    shared = g.ancestors(fork) | {fork} if fork != MODEL_INPUT else set()
    main = tuple(sorted(lineages[main_k] - shared))
    shortcut = tuple(sorted(lineages[short_k] - shared - set(main))) if short_k != main_k else ()
    return Block(merge, fork, main, shortcut, from_main, sources)


def blocks(g: LayerGraph) -> list[Block]:
    """Every merge of two or more sources (Add, Concatenate, ...), in graph order."""
    return [block_at(g, i) for i in range(len(g.nodes)) if g.fan_in(i) >= 2]


def branch_name(g: LayerGraph, found: list[Block], i: int) -> str | None:
    """"the shortcut branch's Conv2D", "the main path's second Conv2D" (with "of the
    third residual block" when the model has several), or None outside any block."""
    kind = g.specs[i].kind
    for n, block in enumerate(found):
        for label, members in (("main path", block.main), ("shortcut branch", block.shortcut)):
            if i not in members or block.shortcut_from_main:
                continue
            same = [j for j in members if g.specs[j].kind == kind]
            rank = "" if len(same) == 1 else f"{ordinal(same.index(i))} "
            where = f" of the {ordinal(n)} residual block" if len(found) > 1 else ""
            return f"the {label}'s {rank}{kind}{where}"
    return None


def describe(g: LayerGraph, i: int, found: list[Block] | None = None) -> str:
    """`who`, but a layer Keras named and nobody located is named by its branch."""
    node = g.nodes[i]
    if node.location is None and node.auto_named and not g.specs[i].name.endswith("/activation"):
        name = branch_name(g, blocks(g) if found is None else found, i)
        if name:
            return name
    return who(g, i)


__all__ = ["Block", "MODEL_INPUT", "block_at", "blocks", "branch_name", "describe"]
