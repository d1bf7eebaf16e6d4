"""A model as a canonical graph of layer specs: what the checks compare and explain.

The graph is framework-neutral: each framework's adapter builds it from its own models
(`grader.checks.adapters`; Keras' from its functional graph in
`grader.frameworks.keras.graph`, the other frameworks' likewise under
`grader.frameworks`). Each layer call becomes one or two `GraphNode`s (a
convolution's own activation is split out), and a linear Dense followed only by a plain
activation layer is folded into one node ("Dense 1, sigmoid": the same computation, and
courses write it either way; `_fold_activations`, shared by the adapters).

Everything a check asks repeatedly (the spec list, who reads a node) is computed once
per graph: checks loop over nodes, and a ResNet50 has about 175 of them.

Each node also carries where the student created its layer (cell, line, source line),
when the sandbox recorded it (`grader.frameworks.keras.child.provenance`), so feedback can point at
the student's own code instead of a framework's internal layer names.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from grader.checks.adapters import adapter_for, require
from grader.checks.limits import MAX_CALLS, GraphTooLarge
from grader.checks.specs import FOLDABLE, LayerSpec


@dataclass(frozen=True)
class Location:
    """Where the student's code created a layer: "cell 7", line 14, `X = Conv2D(F2, ...)`."""

    cell: str
    line: int
    source: str
    # The function whose definition holds the line ("conv_block"), when the cell defines one.
    function: str = ""

    def text(self) -> str:
        """"in cell 7, line 14 (`X = Conv2D(F2, ...)`)", to follow "created"."""
        code = f" (`{self.source}`)" if self.source else ""
        return f"in {self.cell}, line {self.line}{code}"

    def aside(self) -> str:
        """"created in cell 7, line 14: `X = ...`", for inside parentheses."""
        code = f": `{self.source}`" if self.source else ""
        return f"created in {self.cell}, line {self.line}{code}"


@dataclass(frozen=True)
class GraphNode:
    """A spec with what the checks need besides it: the framework's layer holding its weights
    (None for an activation split out of a Conv), its input shape, how many model
    inputs it reads directly, the layer's class as written, whether the framework chose its
    name (so the name means nothing to the student) and where it was created."""

    spec: LayerSpec
    layer: Any
    input_shape: tuple | None
    reads_input: int
    origin: str = ""
    auto_named: bool = True
    location: Location | None = None
    # Every input in the order the layer takes it: a node index, or -1 - k for the
    # model's k-th input; and their shapes.
    sources: tuple[int, ...] = ()
    input_shapes: tuple = ()


@dataclass(frozen=True)
class LayerGraph:
    nodes: tuple[GraphNode, ...]
    outputs: tuple[int, ...]
    disconnected: tuple[str, ...]
    # Every recorded location by layer name, disconnected layers' included.
    located: dict = field(default_factory=dict, compare=False)
    # What other modules derive from the graph once (residual blocks, branch names).
    memo: dict = field(default_factory=dict, compare=False, repr=False)

    @cached_property
    def specs(self) -> list[LayerSpec]:
        return [n.spec for n in self.nodes]

    @cached_property
    def _consumers(self) -> tuple[tuple[int, ...], ...]:
        users: list[list[int]] = [[] for _ in self.nodes]
        for j, node in enumerate(self.nodes):
            for s in node.spec.inputs:
                users[s].append(j)
        return tuple(tuple(u) for u in users)

    @cached_property
    def _kind_ranks(self) -> tuple[tuple[int, int], ...]:
        seen: dict[str, int] = {}
        ranks = []
        for spec in self.specs:
            ranks.append(seen.get(spec.kind, 0))
            seen[spec.kind] = ranks[-1] + 1
        return tuple((rank, seen[spec.kind]) for rank, spec in zip(ranks, self.specs))

    def kind_rank(self, i: int) -> tuple[int, int]:
        """(position among the graph's layers of node i's kind, how many there are)."""
        return self._kind_ranks[i]

    def consumers(self, i: int) -> tuple[int, ...]:
        return self._consumers[i]

    def fan_out(self, i: int) -> int:
        return len(self.consumers(i)) + self.outputs.count(i)

    def fan_in(self, i: int) -> int:
        return len(self.nodes[i].spec.inputs) + self.nodes[i].reads_input

    def input_readers(self) -> tuple[int, ...]:
        return tuple(i for i, n in enumerate(self.nodes) for _ in range(n.reads_input))

    def is_chain(self) -> bool:
        return (len(self.outputs) == 1 and len(self.input_readers()) <= 1
                and all(self.fan_in(i) <= 1 and self.fan_out(i) <= 1 for i in range(len(self.nodes))))

    def producer(self, k: int) -> int:
        """The node whose result is the model's k-th output (0-based)."""
        return self.outputs[k]

    def feeds(self, i: int) -> tuple[int, ...]:
        """What node `i` reads, in the order it takes its inputs: node indices, and
        `-1 - k` for the model's k-th input."""
        node = self.nodes[i]
        return node.sources or tuple(node.spec.inputs) + (-1,) * node.reads_input

    @cached_property
    def _call_ranks(self) -> tuple[tuple[int, int], ...]:
        """Per node: (its rank, how many) among the nodes created at the same line."""
        groups: dict[tuple, list[int]] = {}
        for i, node in enumerate(self.nodes):
            if node.location is not None and not node.spec.name.endswith("/activation"):
                groups.setdefault((node.location.cell, node.location.line, node.spec.kind), []).append(i)
        ranks = [(0, 1)] * len(self.nodes)
        for members in groups.values():
            for k, i in enumerate(members):
                ranks[i] = (k, len(members))
        return tuple(ranks)

    def call_rank(self, i: int) -> tuple[int, int]:
        """(rank, count) of node `i` among the layers of its kind created by the same
        line of code: a line inside a function the model calls four times (or inside a
        loop) creates four layers, and feedback must say which of them it means."""
        return self._call_ranks[i]

    def ancestors(self, i: int) -> set[int]:
        """Every node whose output flows into node `i` (not `i` itself)."""
        seen, stack = set(), list(self.nodes[i].spec.inputs)
        while stack:
            j = stack.pop()
            if j not in seen:
                seen.add(j)
                stack += self.nodes[j].spec.inputs
        return seen


def layer_graph(model: Any, *, cap: int = MAX_CALLS) -> LayerGraph:
    """The model's canonical graph; GraphTooLarge (a CheckFailed) past `cap` calls.

    Built by the adapter of the framework that made the model (`grader.checks.adapters`),
    which may remember it on the model. An object no adapter owns may carry its graph
    itself, as `_grader_layer_graph = (key, graph)`: a student kit's recorded reference
    model (`grader.kit.models`), which holds no framework's model at all."""
    adapter = adapter_for(model)
    if adapter is not None:
        return adapter.layer_graph(model, cap)
    held = getattr(model, MEMO, None)
    if isinstance(held, tuple) and len(held) == 2 and isinstance(held[1], LayerGraph):
        return held[1]
    return require(model, "layer_graph").layer_graph(model, cap)


# The attribute a model's graph is remembered under, as (key, graph): adapters key it by
# what the graph depends on; a recorded model's key matches any.
MEMO = "_grader_layer_graph"


def layer_specs(model: Any) -> list[LayerSpec]:
    """Topological order from the graph, so a branch or an unreached layer cannot hide;
    `inputs` hold list indices rather than layer names, so two models built separately
    compare structurally."""
    return layer_graph(model).specs


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def is_auto_name(name: str, origin: str, kind: str) -> bool:
    """Whether Keras made up this name ("conv2d_6", "re_lu_5", "activation"): such a
    name appears nowhere in the student's code, so it must never be shown to them."""
    base = re.sub(r"_\d+$", "", name.split("/", 1)[0]).replace("_", "")
    return base in {_snake(origin).replace("_", ""), kind.lower(), origin.lower()}


def _fold_activations(nodes: list[GraphNode], outputs: tuple) -> tuple[list[GraphNode], tuple[int, ...]]:
    users: dict[int, list[int]] = {}
    for j, node in enumerate(nodes):
        for s in node.spec.inputs:
            users.setdefault(s, []).append(j)
    target: dict[int, int] = {}
    for d in range(len(nodes)):
        a = _foldable(nodes, outputs, d, users.get(d, []))
        if a is not None:
            act = nodes[a].spec
            fn = act.param("function") if act.kind == "Activation" else act.kind.lower()
            nodes[d] = replace(nodes[d], spec=replace(nodes[d].spec, params=_with(nodes[d].spec.params, "activation", fn)))
            target[a] = d
    return _renumber(nodes, outputs, target)


def _foldable(nodes: list[GraphNode], outputs: tuple, d: int, users: list[int]) -> int | None:
    """The activation node to fold into Dense `d`, if it is d's only consumer."""
    spec = nodes[d].spec
    if spec.kind != "Dense" or spec.param("activation") != "linear" or d in outputs or len(users) != 1:
        return None
    act = nodes[users[0]]
    ok = act.spec.kind in FOLDABLE and act.spec.inputs == (d,) and act.reads_input == 0
    ok = ok and (act.spec.kind == "Activation" or not act.spec.params)
    return users[0] if ok else None


def _with(params: tuple, key: str, value: object) -> tuple:
    return tuple((k, value if k == key else v) for k, v in params)


def _renumber(nodes: list[GraphNode], outputs: tuple, merged: dict[int, int]) -> tuple[list[GraphNode], tuple[int, ...]]:
    kept = [i for i in range(len(nodes)) if i not in merged]
    new = {old: k for k, old in enumerate(kept)}
    where = lambda i: new[merged.get(i, i)]  # noqa: E731
    out = [replace(nodes[i], spec=replace(nodes[i].spec, inputs=tuple(where(s) for s in nodes[i].spec.inputs)),
                   sources=tuple(where(s) if s >= 0 else s for s in nodes[i].sources))
           for i in kept]
    return out, tuple(where(o) for o in outputs)


__all__ = ["GraphNode", "GraphTooLarge", "LayerGraph", "Location", "MAX_CALLS", "layer_graph", "layer_specs",
           "is_auto_name", "MEMO"]
