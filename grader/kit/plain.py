"""What the Keras and the PyTorch recordings of a reference model share, as plain data.

Both recordings store a layer graph as JSON, key outputs by the hash of their inputs, and
answer the checks' cached-graph lookup with the recorded graph. Those pieces live here, in
a module that imports nothing else of the kit, so that `models` (Keras), `torch_models`
(PyTorch) and `model_records` (which of the two a value is) all import it and none of them
imports another back: the arrows between the kit's modules point one way.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
from typing import Any

import numpy as np

MAX_DEPTH = 40
# The attribute `grader.checks.graph.layer_graph` remembers a model's graph under.
MEMO = "_grader_layer_graph"


class NotRecordable(Exception):
    """A value the kit cannot hold as data (the message says what it is)."""


class NotRecordedOutput(Exception):
    """A check asked a kit's reference model for an output the export did not record."""


class AnyKey:
    """`grader.checks.graph.layer_graph` keeps a model's graph as (key, graph) on the model
    and reuses it when the key matches: this key matches every key, so the recorded graph
    is what every check gets, whatever cap it asks with."""

    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = None  # type: ignore[assignment]


def remember_graph(view: Any, graph: Any) -> None:
    """Make `graph` the one every check reads of `view` (a live or recorded model)."""
    object.__setattr__(view, MEMO, (AnyKey(), graph))


def outputs_key(inputs: Any, training: Any) -> str:
    """The same for two batches exactly when their dtype, shape, bytes and mode are equal."""
    array = np.ascontiguousarray(np.asarray(inputs))
    text = f"{array.dtype.str}:{array.shape}:{training!r}:"
    return hashlib.sha256(text.encode() + array.tobytes()).hexdigest()


# ---------------------------------------------------------------- the graph as plain data

def _graph_classes() -> dict[str, type]:
    from grader.checks.graph import GraphNode, LayerGraph, Location
    from grader.checks.specs import LayerSpec
    return {c.__name__: c for c in (LayerSpec, GraphNode, LayerGraph, Location)}


def to_plain(value: Any, layers: dict[int, int], depth: int = 0) -> Any:
    """JSON for the graph; a node's layer becomes the index of its record in `layers`
    (id(layer) -> index, filled as layers are met)."""
    if depth > MAX_DEPTH:
        raise NotRecordable("a layer graph nested too deeply")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, np.bool_):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(float(value)) else {"$float": repr(float(value))}
    if isinstance(value, tuple):
        return {"$t": [to_plain(v, layers, depth + 1) for v in value]}
    if isinstance(value, list):
        return [to_plain(v, layers, depth + 1) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"$d": [[k, to_plain(v, layers, depth + 1)] for k, v in value.items()]}
    if dataclasses.is_dataclass(value) and type(value).__name__ in _graph_classes():
        fields = {}
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if f.name in ("located", "memo"):
                item = {}  # the reference's own code locations stay with the instructor
            elif f.name == "location":
                item = None
            elif f.name == "layer":
                fields[f.name] = None if item is None else {"$layer": layers.setdefault(id(item), len(layers))}
                continue
            fields[f.name] = to_plain(item, layers, depth + 1)
        return {"$dc": type(value).__name__, "f": fields}
    raise NotRecordable(f"a layer setting of type {type(value).__name__}")


def from_plain(tree: Any, layers: list, depth: int = 0) -> Any:
    """The graph `to_plain` wrote, its layers taken from `layers` by index."""
    if depth > MAX_DEPTH:
        raise ValueError("the recorded graph is nested too deeply")
    if tree is None or isinstance(tree, (bool, int, float, str)):
        return tree
    if isinstance(tree, list):
        return [from_plain(v, layers, depth + 1) for v in tree]
    if not isinstance(tree, dict):
        raise ValueError(f"the recorded graph holds an unknown value {type(tree).__name__}")
    if "$float" in tree:
        return float(tree["$float"])
    if "$t" in tree:
        return tuple(from_plain(v, layers, depth + 1) for v in tree["$t"])
    if "$d" in tree:
        return {str(k): from_plain(v, layers, depth + 1) for k, v in tree["$d"]}
    if "$layer" in tree:
        index = int(tree["$layer"])
        if not 0 <= index < len(layers):
            raise ValueError(f"the recorded graph names layer {index}, which it does not hold")
        return layers[index]
    if "$dc" in tree:
        cls = _graph_classes().get(str(tree["$dc"]))
        if cls is None:
            raise ValueError(f"the recorded graph holds an unknown record {tree['$dc']!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        fields = {k: from_plain(v, layers, depth + 1) for k, v in dict(tree.get("f", {})).items() if k in known}
        return cls(**fields)
    raise ValueError(f"the recorded graph holds an unknown value {sorted(tree)}")


# ---------------------------------------------------------------- the files of one model

def output_arrays(outputs: dict[str, tuple[list[np.ndarray], bool]]) -> tuple[list[dict], dict[str, np.ndarray]]:
    """The answers.json index of a model's recorded outputs and the arrays it points at."""
    index, arrays = [], {}
    for n, (key, (values, several)) in enumerate(sorted(outputs.items())):
        index.append({"key": key, "count": len(values), "several": several})
        for k, value in enumerate(values):
            arrays[f"o{n:04d}_{k:02d}"] = value
    return index, arrays


def read_outputs(index: list[dict], npz: Any) -> dict[str, tuple[list, bool]]:
    return {str(item["key"]): ([npz[f"o{n:04d}_{k:02d}"] for k in range(int(item["count"]))],
                               bool(item["several"]))
            for n, item in enumerate(index)}


def layer_values(stored: dict[str, np.ndarray], index: int, count: int) -> list[np.ndarray] | None:
    """A recorded layer's weight arrays, or None when the export recorded no weights."""
    if not stored:
        return None
    return [stored[f"l{index:04d}_w{k:02d}"] for k in range(count)]


def load_arrays(path: Any) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


__all__ = ["AnyKey", "MEMO", "NotRecordable", "NotRecordedOutput", "from_plain", "layer_values", "load_arrays",
           "output_arrays", "outputs_key", "read_outputs", "remember_graph", "to_plain"]
