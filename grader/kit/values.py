"""Recorded reference values on disk, and the keys that find them again.

A kit reaches students, so what it holds must be data a student's machine can read without
running anything of ours or theirs: JSON for the structure, `.npy` files (read with
`allow_pickle=False`) for arrays, and for a model what the checks read of it (its layer
graph, weights as arrays, outputs; `grader.kit.model_records`), never a config that rebuilds
it. A PyTorch tensor is kept as its array and read back as a tensor: PyTorch reference
functions take and return tensors. A value of any other kind cannot be recorded, and the
export says which function returned it.
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from grader.kit import model_records
from grader.kit.plain import NotRecordable
from grader.kit.torch_models import as_tensor, is_tensor, tensor_array

MAX_DEPTH = 20


# ---------------------------------------------------------------- keys

def _canonical(value: Any, depth: int = 0) -> Any:
    """A JSON-able form in which equal arguments are equal: arrays by dtype, shape and bytes."""
    if depth > MAX_DEPTH:
        raise NotRecordable("an argument nested too deeply")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, np.bool_):
        return {"int": int(value)}
    if isinstance(value, (float, np.floating)):
        return {"float": repr(float(value)), "type": type(value).__name__}
    if isinstance(value, np.bool_):
        return {"bool": bool(value)}
    if isinstance(value, np.ndarray) or is_tensor(value):
        data = np.ascontiguousarray(value) if isinstance(value, np.ndarray) else tensor_array(value)
        return {"array" if isinstance(value, np.ndarray) else "tensor": str(data.dtype), "shape": list(data.shape),
                "sha256": hashlib.sha256(data.tobytes()).hexdigest()}
    if isinstance(value, (tuple, list)):
        return {type(value).__name__: [_canonical(v, depth + 1) for v in value]}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"dict": [[k, _canonical(value[k], depth + 1)] for k in sorted(value)]}
    raise NotRecordable(f"an argument of type {type(value).__name__} (only numbers, text, arrays and "
                        f"lists, tuples and dicts of them can be recorded)")


def call_key(function: str, args: tuple, kwargs: dict) -> str:
    """The same for two calls exactly when the function and every argument are equal."""
    text = json.dumps([function, _canonical(tuple(args)), _canonical(dict(kwargs))], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def describe_call(function: str, args: tuple, kwargs: dict) -> str:
    """`name(shape (4, 64, 64, 3) float32 array, training=True)`: short, and no values of arrays."""
    def show(v: Any) -> str:
        if isinstance(v, np.ndarray):
            return f"a {v.dtype} array of shape {tuple(v.shape)}"
        if is_tensor(v):
            return f"a {str(v.dtype).replace('torch.', '')} tensor of shape {tuple(v.shape)}"
        if isinstance(v, (list, tuple)) and any(isinstance(i, np.ndarray) or is_tensor(i) for i in v):
            inner = ", ".join(show(i) for i in v[:2]) + (f", ... ({len(v)} in all)" if len(v) > 2 else "")
            return f"[{inner}]" if isinstance(v, list) else f"({inner})"
        text = repr(v)
        return text if len(text) <= 40 else text[:37] + "..."
    parts = [show(a) for a in args] + [f"{k}={show(v)}" for k, v in kwargs.items()]
    return f"{function}({', '.join(parts)})"


# ---------------------------------------------------------------- writing

class Store:
    """Writes values into a folder; `encode` returns the JSON tree that points at the files."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._count = 0
        self._models: dict[int, dict] = {}  # id(LiveModel) -> its tree, completed by finish()
        self._pending: list = []

    def finish(self) -> None:
        """Write each model once every test has run: only then is it known which outputs
        the tests asked for and whether they copied its weights."""
        for live, name, tree in self._pending:
            tree.update(model_records.write(live, self.folder, name))
        self._pending = []

    def _name(self, suffix: str) -> str:
        self._count += 1
        return f"v{self._count:04d}{suffix}"

    def encode(self, value: Any, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise NotRecordable("a value nested too deeply")
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, int) and not isinstance(value, np.integer):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else {"$float": repr(value)}
        if isinstance(value, (np.ndarray, np.generic)):
            array = np.asarray(value)
            if array.dtype.hasobject:
                raise NotRecordable("an array of Python objects")
            name = self._name(".npy")
            np.save(self.folder / name, array, allow_pickle=False)
            return {"$npy": name, "scalar": isinstance(value, np.generic)}
        if is_tensor(value):
            array = tensor_array(value)
            name = self._name(".npy")
            np.save(self.folder / name, array, allow_pickle=False)
            return {"$npy": name, "tensor": True}
        if isinstance(value, (tuple, list)):
            items = [self.encode(v, depth + 1) for v in value]
            return {"$tuple": items} if isinstance(value, tuple) else items
        if isinstance(value, dict) and all(isinstance(k, str) for k in value):
            return {"$dict": [[k, self.encode(v, depth + 1)] for k, v in value.items()]}
        if model_records.is_model(value):
            value = model_records.live_model(value)
        if model_records.is_live(value):
            return self._model(value)
        raise NotRecordable(f"a value of type {type(value).__name__}")

    def _model(self, live: Any) -> dict:
        tree = self._models.get(id(live))
        if tree is None:
            tree = self._models[id(live)] = {"$graph_model": self._name("")}
            self._pending.append((live, tree["$graph_model"], tree))
        return tree


# ---------------------------------------------------------------- reading

def _inside(folder: Path, name: Any) -> Path:
    """A file of the recording, never a path that leaves its folder."""
    if not isinstance(name, str) or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"the recording names a file it should not: {name!r}")
    return folder / name


def decode(tree: Any, folder: Path, depth: int = 0) -> Any:
    """Turn a recorded tree back into values. Arrays are read with allow_pickle=False; a
    model comes back as the recorded graph, weights and outputs the checks read, never as a
    Keras model."""
    if depth > MAX_DEPTH:
        raise ValueError("the recording is nested too deeply")
    if tree is None or isinstance(tree, (bool, int, float, str)):
        return tree
    if isinstance(tree, list):
        return [decode(v, folder, depth + 1) for v in tree]
    if not isinstance(tree, dict):
        raise ValueError(f"the recording holds an unknown value {type(tree).__name__}")
    if "$float" in tree:
        return float(tree["$float"])
    if "$npy" in tree:
        array = np.load(_inside(folder, tree["$npy"]), allow_pickle=False)
        if tree.get("tensor"):
            return as_tensor(array)
        return array[()] if tree.get("scalar") else array
    if "$tuple" in tree:
        return tuple(decode(v, folder, depth + 1) for v in tree["$tuple"])
    if "$dict" in tree:
        return {str(k): decode(v, folder, depth + 1) for k, v in tree["$dict"]}
    if "$graph_model" in tree:
        return model_records.read(tree, folder, _inside)
    raise ValueError(f"the recording holds an unknown value {sorted(tree)}")
