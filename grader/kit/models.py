"""The reference's Keras models in a student kit: what the checks read of them, and nothing that builds one.

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
A PyTorch module's recording is `grader.kit.torch_models`; `grader.kit.model_records`
says which of the two a value or a file is.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from grader.kit.plain import (NotRecordedOutput, from_plain, layer_values, load_arrays, output_arrays,
                              outputs_key, read_outputs, remember_graph, to_plain)


def _flat(result: Any) -> list[np.ndarray]:
    if isinstance(result, dict):
        return [np.asarray(result[k]) for k in sorted(result)]
    if isinstance(result, (list, tuple)):
        return [np.asarray(r) for r in result]
    return [np.asarray(result)]


def is_keras_model(value: Any) -> bool:
    """Duck-typed, so that recognising one never imports Keras."""
    return hasattr(value, "to_json") and hasattr(value, "get_weights") and hasattr(value, "layers")


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
        remember_graph(self, self.graph)

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


def _weight_name(variable: Any) -> str:
    return str(getattr(variable, "name", "weight")).split("/")[-1].split(":")[0]


def write(live: LiveModel, folder: Path, name: str) -> dict:
    """Write one reference model's recording; returns the answers.json entry that finds it."""
    layers: dict[int, int] = {}
    graph = to_plain(live.graph, layers)
    by_id = {id(node.layer): node.layer for node in live.graph.nodes if node.layer is not None}
    with_weights = live.weights_used  # a test that never copied weights gets none
    described, arrays = [], {}
    for layer_id, index in sorted(layers.items(), key=lambda item: item[1]):
        layer = by_id[layer_id]
        described.append({"class_name": type(layer).__name__,
                          "weights": [{"name": _weight_name(v), "shape": [int(d) for d in v.shape],
                                       "dtype": str(np.dtype(str(getattr(v, "dtype", "float32")).replace("tf.", "")))}
                                      for v in layer.weights]})
        for k, value in enumerate(layer.get_weights() if with_weights else []):
            arrays[f"l{index:04d}_w{k:02d}"] = np.asarray(value)
    index_of, outputs = output_arrays(live.outputs)
    data = {"graph": graph, "layers": described, "outputs": index_of}
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
        remember_graph(self, graph)

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


def read(data: dict, entry: dict, folder: Path, inside) -> RecordedModel:
    """The recorded Keras model of an answers.json entry, from its parsed graph file `data`;
    `inside` keeps file names in the folder."""
    name = str(entry["$graph_model"])
    weights_file = inside(folder, f"{name}.weights.npz")
    stored = load_arrays(weights_file) if entry.get("weights") and weights_file.is_file() else {}
    layers: list = []
    for index, described in enumerate(data["layers"]):
        weights = [RecordedWeight(str(w["name"]), tuple(int(d) for d in w["shape"]), str(w["dtype"]))
                   for w in described["weights"]]
        layers.append(RecordedLayer(str(described["class_name"]), weights, layer_values(stored, index, len(weights))))
    outputs: dict[str, tuple[list, bool]] = {}
    outputs_file = inside(folder, f"{name}.outputs.npz")
    if data["outputs"] and outputs_file.is_file():
        with np.load(outputs_file, allow_pickle=False) as npz:
            outputs = read_outputs(data["outputs"], npz)
    return RecordedModel(from_plain(data["graph"], layers), layers, outputs)


__all__ = ["LiveModel", "NotRecordedOutput", "RecordedLayer", "RecordedModel", "is_keras_model", "outputs_key",
           "read", "write"]
