"""A PyTorch reference model in a student kit: its layer graph, its state as arrays and its
outputs, and nothing that computes.

The PyTorch checks read a reference module three ways: its layer graph (every layer's
kind and settings, `grader.frameworks.torch.graph`), its layers' state dicts (copied into
the student's module by `grader.frameworks.torch.outputs.transplant`), and its outputs in
`train()` or `eval()` mode. A kit records exactly those; the recorded module answers a
call only from the outputs recorded for that very batch and mode. A saved module or the
sandbox's module description would be the reference itself (`rebuild_torch` turns a
description back into a working module), so neither is ever written.

Forward hooks (`grader.frameworks.torch.untraced`, for a student's forward that torch.fx
cannot trace) ask the reference for its leaf layers in call order: the kit records that
order as indices of recorded layers, each with the spec the hooks' chain graph reads.

Export time wraps the real module in `TorchLiveModel`, which answers from it and notes
which outputs and call orders the visible tests asked for. Torch is imported only when a
torch model is recorded or read: a Keras kit never needs it.
"""
from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from grader.kit.plain import (NotRecordable, NotRecordedOutput, from_plain, layer_values, load_arrays,
                              output_arrays, outputs_key, read_outputs, remember_graph, to_plain)


def is_torch_module(value: Any) -> bool:
    import sys
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.nn.Module)


def is_torch_module_class(value: Any) -> bool:
    """A reference exercise that is an nn.Module subclass (`ConvolutionalModel`) is called
    like a function: its instances are what the tests compare."""
    import sys
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, type) and issubclass(value, torch.nn.Module)


def is_tensor(value: Any) -> bool:
    """PyTorch reference functions take and return tensors: a kit keys and stores them as
    arrays. Asked without importing torch (a Keras kit never has it)."""
    import sys
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def tensor_array(value: Any) -> np.ndarray:
    """A tensor's values as a NumPy array of the same dtype and shape."""
    try:
        return np.ascontiguousarray(value.detach().cpu().numpy())
    except (TypeError, RuntimeError) as exc:  # bfloat16, sparse, ...: no NumPy twin
        raise NotRecordable(f"a tensor of dtype {value.dtype} ({exc})") from None


def as_tensor(array: np.ndarray) -> Any:
    import torch
    return torch.from_numpy(np.array(array))


def _numpy(value: Any) -> np.ndarray:
    detach = getattr(value, "detach", None)
    if detach is not None:
        return detach().cpu().numpy()
    return np.asarray(value)


def _flat(result: Any) -> tuple[list[np.ndarray], bool]:
    if isinstance(result, (tuple, list)):
        return [np.array(_numpy(r)) for r in result], True
    return [np.array(_numpy(result))], False


def _key(inputs: Any, training: bool) -> str:
    return outputs_key(_numpy(inputs), bool(training))


# ---------------------------------------------------------------- export time

class TorchLiveModel:
    """The real reference module during an export, seen through what the checks use of it."""

    built = True

    def __init__(self, module: Any):
        from grader.checks.graph import layer_graph

        self._model = module
        self.graph = layer_graph(module)
        self.outputs: dict[str, tuple[list[np.ndarray], bool]] = {}
        self.orders: dict[str, tuple[list[tuple[str, int]], list[np.ndarray]]] = {}
        self.order_layers: list[Any] = []  # leaf layers the hooks saw that the graph does not hold
        remember_graph(self, self.graph)

    @property
    def layers(self) -> list:
        return [node.layer for node in self.graph.nodes if node.layer is not None]

    @property
    def training(self) -> bool:
        return bool(self._model.training)

    def train(self, mode: bool = True) -> "TorchLiveModel":
        self._model.train(mode)
        return self

    def eval(self) -> "TorchLiveModel":
        return self.train(False)

    def state_dict(self, *args: Any, **kwargs: Any) -> Any:
        return self._model.state_dict(*args, **kwargs)

    def load_state_dict(self, state: Any, *args: Any, **kwargs: Any) -> Any:
        return self._model.load_state_dict(state, *args, **kwargs)

    def __call__(self, inputs: Any) -> Any:
        result = self._model(inputs)
        self.outputs.setdefault(_key(inputs, self._model.training), _flat(result))
        return result

    def hooked_order(self, inputs: np.ndarray, training: bool | None) -> tuple[list, list]:
        """`grader.frameworks.torch.untraced.local_order` on the real module, recorded."""
        from grader.frameworks.torch.untraced import local_order

        order, outputs = local_order(self._model, inputs, training)
        mode = self._model.training if training is None else training
        key = _key(inputs, mode)
        if key not in self.orders:
            indices = []
            for path, layer in order:
                if not any(layer is known for known in self.order_layers):
                    self.order_layers.append(layer)
                indices.append((path, next(i for i, known in enumerate(self.order_layers) if known is layer)))
            self.orders[key] = (indices, [np.array(o) for o in outputs])
        return order, outputs

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._model, name)


def layer_record(layer: Any) -> dict:
    """One reference layer as the checks read it: class, state entries and, for the hooks'
    chain graph, its canonical spec."""
    from grader.frameworks.torch.graph import _module_spec

    spec = _module_spec(layer)
    return {"class_name": type(layer).__name__,
            "weights": [{"name": str(k), "shape": [int(d) for d in v.shape], "dtype": str(_numpy(v).dtype)}
                        for k, v in layer.state_dict().items()],
            "spec": None if spec is None else [spec[0], to_plain(spec[1], {}), spec[2]]}


def layer_arrays(layer: Any) -> list[np.ndarray]:
    return [np.array(_numpy(v)) for v in layer.state_dict().values()]


def write(live: TorchLiveModel, folder: Path, name: str) -> dict:
    """Write one reference module's recording; returns the answers.json entry that finds it."""
    layers: dict[int, int] = {}
    graph = to_plain(live.graph, layers)
    by_id = {id(node.layer): node.layer for node in live.graph.nodes if node.layer is not None}
    for layer in live.order_layers:  # the layers forward hooks saw, which a folded graph may not hold
        by_id.setdefault(id(layer), layer)
        layers.setdefault(id(layer), len(layers))
    orders = [{"key": key, "order": [[path, layers[id(live.order_layers[i])]] for path, i in order],
               "count": len(values)} for key, (order, values) in sorted(live.orders.items())]
    with_weights = bool(live.outputs or live.orders)  # a transplant reads every state entry
    described, arrays = [], {}
    for layer_id, index in sorted(layers.items(), key=lambda item: item[1]):
        layer = by_id[layer_id]
        described.append(layer_record(layer))
        for k, value in enumerate(layer_arrays(layer) if with_weights else []):
            arrays[f"l{index:04d}_w{k:02d}"] = np.asarray(value)
    index_of, outputs = output_arrays(live.outputs)
    for n, (_, (_, values)) in enumerate(sorted(live.orders.items())):
        for k, value in enumerate(values):
            outputs[f"h{n:04d}_{k:02d}"] = value
    data = {"graph": graph, "layers": described, "outputs": index_of, "framework": "torch", "orders": orders,
            "training": bool(live.training)}
    (folder / f"{name}.graph.json").write_text(json.dumps(data), encoding="utf-8")
    if arrays:
        np.savez(folder / f"{name}.weights.npz", **arrays)
    if outputs:
        np.savez(folder / f"{name}.outputs.npz", **outputs)
    return {"$graph_model": name, "weights": bool(arrays)}


# ---------------------------------------------------------------- in the kit

class TorchRecordedLayer:
    """A reference layer in a kit: its state as arrays (what a transplant copies) and its
    spec; it computes nothing. `bias` is what the hooks' transplant asks of a convolution."""

    def __init__(self, class_name: str, names: list[str], values: list[np.ndarray] | None, spec: Any):
        self.class_name = class_name
        self._names = names
        self._values = values
        self.spec = spec

    def state_dict(self) -> "OrderedDict[str, Any]":
        import torch

        if self._values is None:
            raise NotRecordedOutput("the self-check kit holds no weights of this reference model: the full "
                                    "grader still checks it")
        return OrderedDict((n, torch.from_numpy(v.copy())) for n, v in zip(self._names, self._values))

    @property
    def bias(self) -> Any:
        return self.state_dict().get("bias") if "bias" in self._names else None


class TorchRecordedModel:
    """A kit's PyTorch reference model: recorded graph, layer states and outputs. Its own
    state dict is empty (the checks save and restore it around every run: nothing to do)."""

    built = True

    def __init__(self, graph: Any, layers: list[TorchRecordedLayer],
                 outputs: dict[str, tuple[list[np.ndarray], bool]],
                 orders: dict[str, tuple[list[tuple[str, int]], list[np.ndarray]]], order_layers: list,
                 training: bool = True):
        self.graph = graph
        self.layers = layers
        self._outputs = outputs
        self._orders = orders
        self._order_layers = order_layers
        self.training = training
        remember_graph(self, graph)

    def train(self, mode: bool = True) -> "TorchRecordedModel":
        self.training = bool(mode)
        return self

    def eval(self) -> "TorchRecordedModel":
        return self.train(False)

    def state_dict(self, *args: Any, **kwargs: Any) -> dict:
        return {}

    def load_state_dict(self, state: Any, *args: Any, **kwargs: Any) -> None:
        return None

    def _missing(self, inputs: Any, training: Any, what: str) -> Exception:
        return NotRecordedOutput(
            f"the self-check kit holds no {what} of this reference model for a batch of shape "
            f"{tuple(np.shape(_numpy(inputs)))} in {'train()' if training else 'eval()'} mode: this check is not "
            f"kit-safe; the full grader still checks it")

    def __call__(self, inputs: Any) -> Any:
        found = self._outputs.get(_key(inputs, self.training))
        if found is None:
            raise self._missing(inputs, self.training, "output")
        values, several = found
        return [v.copy() for v in values] if several else values[0].copy()

    def hooked_order(self, inputs: np.ndarray, training: bool | None) -> tuple[list, list]:
        mode = self.training if training is None else training
        found = self._orders.get(_key(inputs, mode))
        if found is None:
            raise self._missing(inputs, mode, "layer call order")
        order, outputs = found
        return [(path, self._order_layers[i]) for path, i in order], [o.copy() for o in outputs]


def read(data: dict, entry: dict, folder: Path, inside) -> TorchRecordedModel:
    """The recorded module of an answers.json entry, from its parsed graph file `data`;
    `inside` keeps file names in the folder."""
    name = str(entry["$graph_model"])
    weights_file = inside(folder, f"{name}.weights.npz")
    stored = load_arrays(weights_file) if entry.get("weights") and weights_file.is_file() else {}
    layers: list = []
    for index, described in enumerate(data["layers"]):
        names = [str(w["name"]) for w in described["weights"]]
        spec = described.get("spec")
        if spec is not None:
            spec = (str(spec[0]), from_plain(spec[1], []), str(spec[2]))
        layers.append(TorchRecordedLayer(str(described["class_name"]), names,
                                         layer_values(stored, index, len(names)), spec))
    outputs: dict[str, tuple[list, bool]] = {}
    orders: dict[str, tuple[list, list]] = {}
    outputs_file = inside(folder, f"{name}.outputs.npz")
    if (data["outputs"] or data.get("orders")) and outputs_file.is_file():
        with np.load(outputs_file, allow_pickle=False) as npz:
            outputs = read_outputs(data["outputs"], npz)
            for n, item in enumerate(data.get("orders", [])):
                order = [(str(path), int(i)) for path, i in item["order"]]
                if any(not 0 <= i < len(layers) for _, i in order):
                    raise ValueError("the recorded call order names a layer the recording does not hold")
                orders[str(item["key"])] = (order, [npz[f"h{n:04d}_{k:02d}"] for k in range(int(item["count"]))])
    return TorchRecordedModel(from_plain(data["graph"], layers), list(layers), outputs, orders, layers,
                              training=bool(data.get("training", True)))


__all__ = ["TorchLiveModel", "TorchRecordedLayer", "TorchRecordedModel", "as_tensor", "is_tensor",
           "is_torch_module", "is_torch_module_class", "layer_arrays", "layer_record", "read", "tensor_array",
           "write"]
