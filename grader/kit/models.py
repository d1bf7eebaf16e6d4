"""The reference's models in a student kit: what the checks read of them, and nothing that builds one.

A Keras config with its weights would hand students the reference model itself: pasted
into a notebook, `model_from_json(...)` scored marks with no layer written. A kit holds
instead, per reference model the visible tests asked for:

* its layer graph as the checks compare it (`grader.checks.graph.LayerGraph`: each layer's
  kind and settings, and which layer reads which), as plain JSON;
* the weights of each layer as plain arrays (`.npz`, read with `allow_pickle=False`), only
  when a test copied them into the student's model;
* its outputs on the inputs the tests gave it (`.npz`), keyed by the inputs' hash.

`RecordedModel` answers the checks from those: `layer_graph()` returns the recorded graph,
the weight transplant reads the recorded arrays into the student's own model, and a call
returns the recorded output. At export time `LiveModel` wraps the real reference model:
the visible tests run through the same paths, and what they read is written down.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

MAX_DEPTH = 40


class NotRecordedOutput(Exception):
    """A check asked a kit's reference model for an output the export did not record."""


class _AnyKey:
    """`grader.checks.graph.layer_graph` keeps a model's graph as (key, graph) on the model
    and reuses it when the key matches: this key matches every key, so the recorded graph
    is what every check gets, whatever cap it asks with."""

    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = None  # type: ignore[assignment]


_MEMO = "_grader_layer_graph"


def outputs_key(inputs: Any, training: Any) -> str:
    array = np.ascontiguousarray(np.asarray(inputs))
    text = f"{array.dtype.str}:{array.shape}:{training!r}:"
    return hashlib.sha256(text.encode() + array.tobytes()).hexdigest()


def _flat(result: Any) -> list[np.ndarray]:
    if isinstance(result, dict):
        return [np.asarray(result[k]) for k in sorted(result)]
    if isinstance(result, (list, tuple)):
        return [np.asarray(r) for r in result]
    return [np.asarray(result)]


# ---------------------------------------------------------------- export time

class LiveModel:
    """The real reference model during an export: every check sees the real model (its own
    graph and layers); calls and weight reads are written down for the kit."""

    def __init__(self, model: Any):
        from grader.checks.graph import layer_graph

        self._model = model
        self.graph = layer_graph(model)
        self.outputs: dict[str, tuple[list[np.ndarray], bool]] = {}
        self.weights_used = False
        object.__setattr__(self, _MEMO, (_AnyKey(), self.graph))

    @property
    def layers(self) -> list:
        return list(self._model.layers)

    built = True

    def __call__(self, inputs: Any, training: Any = None, **kwargs: Any) -> Any:
        result = self._model(inputs, training=training, **kwargs)
        if not kwargs:
            self.outputs.setdefault(outputs_key(inputs, training),
                                    ([np.array(o) for o in _flat(result)], isinstance(result, (list, tuple))))
        return result

    def get_weights(self) -> list:
        self.weights_used = True
        return self._model.get_weights()

    def set_weights(self, weights: list) -> None:
        self._model.set_weights(weights)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # the checks' own caches belong to the real model, not to this view
            raise AttributeError(name)
        return getattr(self._model, name)


# ---------------------------------------------------------------- the graph as plain data

def _graph_classes() -> dict[str, type]:
    from grader.checks.graph import GraphNode, LayerGraph, Location
    from grader.checks.specs import LayerSpec
    return {c.__name__: c for c in (LayerSpec, GraphNode, LayerGraph, Location)}


def _plain(value: Any, layers: dict[int, int], depth: int = 0) -> Any:
    """JSON for the graph; a node's Keras layer becomes the index of its recorded weights."""
    from grader.kit.values import NotRecordable

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
        return {"$t": [_plain(v, layers, depth + 1) for v in value]}
    if isinstance(value, list):
        return [_plain(v, layers, depth + 1) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"$d": [[k, _plain(v, layers, depth + 1)] for k, v in value.items()]}
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
            fields[f.name] = _plain(item, layers, depth + 1)
        return {"$dc": type(value).__name__, "f": fields}
    raise NotRecordable(f"a layer setting of type {type(value).__name__}")


def _unplain(tree: Any, layers: list, depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise ValueError("the recorded graph is nested too deeply")
    if tree is None or isinstance(tree, (bool, int, float, str)):
        return tree
    if isinstance(tree, list):
        return [_unplain(v, layers, depth + 1) for v in tree]
    if not isinstance(tree, dict):
        raise ValueError(f"the recorded graph holds an unknown value {type(tree).__name__}")
    if "$float" in tree:
        return float(tree["$float"])
    if "$t" in tree:
        return tuple(_unplain(v, layers, depth + 1) for v in tree["$t"])
    if "$d" in tree:
        return {str(k): _unplain(v, layers, depth + 1) for k, v in tree["$d"]}
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
        fields = {k: _unplain(v, layers, depth + 1) for k, v in dict(tree.get("f", {})).items() if k in known}
        return cls(**fields)
    raise ValueError(f"the recorded graph holds an unknown value {sorted(tree)}")


def _weight_name(variable: Any) -> str:
    return str(getattr(variable, "name", "weight")).split("/")[-1].split(":")[0]


def write(live: Any, folder: Path, name: str) -> dict:
    """Write one reference model's recording; returns the answers.json entry that finds it."""
    from grader.kit.torch_models import TorchLiveModel, layer_arrays, layer_record

    torch_model = isinstance(live, TorchLiveModel)
    layers: dict[int, int] = {}
    graph = _plain(live.graph, layers)
    by_id = {id(node.layer): node.layer for node in live.graph.nodes if node.layer is not None}
    orders = []
    if torch_model:  # the layers forward hooks saw, which a folded graph may not hold
        for layer in live.order_layers:
            by_id.setdefault(id(layer), layer)
            layers.setdefault(id(layer), len(layers))
        for key, (order, values) in sorted(live.orders.items()):
            orders.append({"key": key, "order": [[path, layers[id(live.order_layers[i])]] for path, i in order],
                           "count": len(values)})
    # A torch transplant reads every state entry; a Keras test that never copied weights gets none.
    with_weights = (bool(live.outputs or live.orders)) if torch_model else live.weights_used
    described, arrays = [], {}
    for layer_id, index in sorted(layers.items(), key=lambda item: item[1]):
        layer = by_id[layer_id]
        if torch_model:
            described.append(layer_record(layer))
            values = layer_arrays(layer) if with_weights else []
        else:
            variables = list(layer.weights)
            described.append({"class_name": type(layer).__name__,
                              "weights": [{"name": _weight_name(v), "shape": [int(d) for d in v.shape],
                                           "dtype": str(np.dtype(str(getattr(v, "dtype", "float32")).replace("tf.", "")))}
                                          for v in variables]})
            values = layer.get_weights() if with_weights else []
        for k, value in enumerate(values):
            arrays[f"l{index:04d}_w{k:02d}"] = np.asarray(value)
    outputs, index_of = {}, []
    for n, (key, (values, several)) in enumerate(sorted(live.outputs.items())):
        index_of.append({"key": key, "count": len(values), "several": several})
        for k, value in enumerate(values):
            outputs[f"o{n:04d}_{k:02d}"] = value
    for n, (key, (_, values)) in enumerate(sorted(live.orders.items()) if torch_model else []):
        for k, value in enumerate(values):
            outputs[f"h{n:04d}_{k:02d}"] = value
    data = {"graph": graph, "layers": described, "outputs": index_of}
    if torch_model:
        data.update(framework="torch", orders=orders, training=bool(live.training))
    (folder / f"{name}.graph.json").write_text(json.dumps(data), encoding="utf-8")
    if arrays:
        np.savez(folder / f"{name}.weights.npz", **arrays)
    if outputs:
        np.savez(folder / f"{name}.outputs.npz", **outputs)
    return {"$graph_model": name, "weights": bool(arrays)}


# ---------------------------------------------------------------- in the kit

class RecordedWeight:
    def __init__(self, name: str, shape: tuple, dtype: str):
        self.name, self.shape, self.dtype = name, tuple(shape), dtype


class RecordedLayer:
    """A reference layer in a kit: the shapes of its weights, and their values when a
    test copies them into the student's model. It computes nothing."""

    def __init__(self, class_name: str, weights: list[RecordedWeight], values: list[np.ndarray] | None):
        self.class_name = class_name
        self.weights = weights
        self._values = values

    def get_weights(self) -> list[np.ndarray]:
        if self._values is None:
            raise NotRecordedOutput("the self-check kit holds no weights of this reference model: the full "
                                    "grader still checks it")
        return [v.copy() for v in self._values]

    def set_weights(self, weights: list) -> None:  # the checks restore what they read: nothing to do
        pass


class RecordedModel:
    """A kit's reference model: its recorded graph, weights and outputs."""

    built = True

    def __init__(self, graph: Any, layers: list[RecordedLayer], outputs: dict[str, tuple[list, bool]]):
        self.graph = graph
        self.layers = layers
        self._outputs = outputs
        object.__setattr__(self, _MEMO, (_AnyKey(), graph))

    def __call__(self, inputs: Any, training: Any = None, **kwargs: Any) -> Any:
        found = self._outputs.get(outputs_key(inputs, training))
        if found is None or kwargs:
            raise NotRecordedOutput(
                f"the self-check kit holds no output of this reference model for a batch of shape "
                f"{tuple(np.shape(inputs))} with training={training!r}: this check is not kit-safe; the full "
                f"grader still checks it")
        values, several = found
        return [v.copy() for v in values] if several else values[0].copy()

    def get_weights(self) -> list:
        return []

    def set_weights(self, weights: list) -> None:
        pass


def read(entry: dict, folder: Path, inside) -> Any:
    """The recorded model an answers.json entry names; `inside` keeps file names in the folder."""
    name = str(entry["$graph_model"])
    data = json.loads(inside(folder, f"{name}.graph.json").read_text(encoding="utf-8"))
    torch_model = data.get("framework") == "torch"
    weights_file = inside(folder, f"{name}.weights.npz")
    stored = {}
    if entry.get("weights") and weights_file.is_file():
        with np.load(weights_file, allow_pickle=False) as npz:
            stored = {k: npz[k] for k in npz.files}
    layers: list = []
    for index, described in enumerate(data["layers"]):
        weights = [RecordedWeight(str(w["name"]), tuple(int(d) for d in w["shape"]), str(w["dtype"]))
                   for w in described["weights"]]
        values = None
        if stored:
            values = [stored[f"l{index:04d}_w{k:02d}"] for k in range(len(weights))]
        if torch_model:
            from grader.kit.torch_models import TorchRecordedLayer
            spec = described.get("spec")
            if spec is not None:
                spec = (str(spec[0]), _unplain(spec[1], []), str(spec[2]))
            layers.append(TorchRecordedLayer(str(described["class_name"]), [w.name for w in weights], values, spec))
        else:
            layers.append(RecordedLayer(str(described["class_name"]), weights, values))
    outputs: dict[str, tuple[list, bool]] = {}
    orders: dict[str, tuple[list, list]] = {}
    outputs_file = inside(folder, f"{name}.outputs.npz")
    if (data["outputs"] or data.get("orders")) and outputs_file.is_file():
        with np.load(outputs_file, allow_pickle=False) as npz:
            for n, item in enumerate(data["outputs"]):
                outputs[str(item["key"])] = ([npz[f"o{n:04d}_{k:02d}"] for k in range(int(item["count"]))],
                                             bool(item["several"]))
            for n, item in enumerate(data.get("orders", []) if torch_model else []):
                order = [(str(path), int(i)) for path, i in item["order"]]
                if any(not 0 <= i < len(layers) for _, i in order):
                    raise ValueError("the recorded call order names a layer the recording does not hold")
                orders[str(item["key"])] = (order, [npz[f"h{n:04d}_{k:02d}"] for k in range(int(item["count"]))])
    graph = _unplain(data["graph"], layers)
    if torch_model:
        from grader.kit.torch_models import TorchRecordedModel
        return TorchRecordedModel(graph, [x for x in layers], outputs, orders, layers,
                                  training=bool(data.get("training", True)))
    return RecordedModel(graph, layers, outputs)


__all__ = ["LiveModel", "NotRecordedOutput", "RecordedLayer", "RecordedModel", "outputs_key", "read", "write"]
