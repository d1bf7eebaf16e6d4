"""A Keras model as the checks' framework-neutral `LayerGraph`.

Built from the walk (`grader.frameworks.keras.walk`): each layer call becomes one or two
`GraphNode`s (a Conv's own activation is split out by `grader.checks.specs.canonical`), a
linear Dense followed only by a plain activation layer is folded into one node (the
neutral `_fold_activations`), and InputLayers are skipped (`keras.Input` and
`input_shape=` are the same model). Nothing here imports a Keras package: the walk is
duck-typed over Keras 3 and tf_keras.

Each node carries where the student created its layer, read from the locations the
sandbox recorded and `grader.frameworks.keras.rebuild` attached to the rebuilt model.
"""
from __future__ import annotations

import re
from typing import Any

from grader.checks.graph import MEMO, GraphNode, LayerGraph, Location, _fold_activations, is_auto_name
from grader.checks.limits import MAX_CALLS
from grader.checks.specs import LayerSpec, canonical
from grader.frameworks.keras.walk import Call, disconnected, walk
from grader.notebook.cellnames import split_label


def keras_layer_graph(model: Any, cap: int = MAX_CALLS) -> LayerGraph:
    """The model's canonical graph; GraphTooLarge past `cap` calls.

    Remembered on the model: one submission's checks ask for the same model's graph
    about ten times, and walking it is most of the graph modules' cost. The key is what
    the graph depends on: the model's layers (a Sequential can still grow), whether it
    is built, the cap, and the recorded locations, compared by value because
    `grader.frameworks.keras.model_pool` hands a rebuilt model to the next submission with that
    submission's locations attached."""
    key = _memo_key(model, cap)
    held = getattr(model, MEMO, None)
    if key is not None and isinstance(held, tuple) and len(held) == 2 and held[0] == key:
        return held[1]
    graph = _build(model, cap)
    if key is not None:
        try:
            object.__setattr__(model, MEMO, (key, graph))
        except (AttributeError, TypeError):  # a model that takes no attributes is walked each time
            pass
    return graph


def _memo_key(model: Any, cap: int) -> tuple | None:
    """None when the model's layers cannot be listed (then nothing is remembered)."""
    try:
        layers = tuple(id(layer) for layer in model.layers)
    except Exception:  # noqa: BLE001 - not a Keras model: walk it every time
        return None
    raw = getattr(model, "_grader_locations", None)
    return (cap, layers, bool(getattr(model, "built", False)), dict(raw) if isinstance(raw, dict) else None)


def _build(model: Any, cap: int) -> LayerGraph:
    result = walk(model, cap=cap)
    locations = _locations(model)
    nodes, outputs = _expand(result.calls, result.outputs, locations)
    nodes, outputs = _fold_activations(nodes, outputs)
    return LayerGraph(tuple(nodes), outputs, disconnected(model, result.reached), locations)


def _locations(model: Any) -> dict[str, Location]:
    """Locations the sandbox recorded, attached to the rebuilt model by `grader.frameworks.keras.rebuild`
    as {layer name: (cell, line, source)}; anything malformed is ignored."""
    raw = getattr(model, "_grader_locations", None)
    out: dict[str, Location] = {}
    if not isinstance(raw, dict):
        return out
    for name, value in raw.items():
        if isinstance(value, Location):
            out[str(name)] = value
        elif isinstance(value, (tuple, list)) and len(value) == 3:
            cell, line, source = value
            if isinstance(cell, str) and isinstance(line, int) and isinstance(source, str):
                out[str(name)] = Location(_cell_name(cell), line, source, _function_name(cell))
    return out


def _cell_name(label: str) -> str:
    """"cell In [12]" from the sandbox's chunk label "cell In [12] [happyModel]"."""
    return split_label(label)[0]


def _function_name(label: str) -> str:
    """"happyModel" from the chunk label "cell 7 [happyModel]" (a chunk holding one
    definition), else ""."""
    match = re.fullmatch(r".* \[([A-Za-z_][A-Za-z0-9_]*)\]", label)
    return match.group(1) if match else ""


def _expand(calls: tuple[Call, ...], outputs: tuple[int, ...],
            locations: dict[str, Location]) -> tuple[list[GraphNode], tuple[int, ...]]:
    nodes: list[GraphNode] = []
    tail: dict[int, int] = {}  # call index -> node holding its output
    seen: dict[tuple[int, int | None], list] = {}  # a layer called many times is read once
    for i, call in enumerate(calls):
        rank = len(call.input_shape) if call.input_shape is not None else None
        inputs = tuple(tail[s] for s in call.inputs)
        sources = tuple(tail[s] if s >= 0 else s for s in call.sources)
        shapes = call.input_shapes
        origin = type(call.layer).__name__
        layer_name = str(getattr(call.layer, "name", origin))
        key = (id(call.layer), rank)
        if key not in seen:
            seen[key] = call.specs or canonical(call.layer, rank)
        for k, (kind, params, name) in enumerate(seen[key]):
            spec = LayerSpec(kind, params, name, inputs)
            nodes.append(GraphNode(spec, call.layer if k == 0 else None, call.input_shape,
                                   call.reads_input if k == 0 else 0, origin,
                                   is_auto_name(layer_name, origin, kind), locations.get(layer_name),
                                   sources, shapes))
            inputs = sources = (len(nodes) - 1,)
            shapes = ()
        tail[i] = len(nodes) - 1
    return nodes, tuple(tail[o] for o in outputs)


__all__ = ["keras_layer_graph"]
