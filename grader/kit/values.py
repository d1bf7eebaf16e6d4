"""Recorded reference values on disk, and the keys that find them again.

A kit reaches students, so what it holds must be data a student's machine can read without
running anything of ours or theirs: JSON for the structure, `.npy` files (read with
`allow_pickle=False`) for arrays, and for a model what the checks read of it (its layer
graph, weights as arrays, outputs; `grader.kit.models`), never a config that rebuilds it.
A value of any other kind cannot be recorded, and the export says which function returned it.
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

MAX_DEPTH = 20


class NotRecordable(Exception):
    """A value the kit cannot hold as data (the message says what it is)."""


def _is_model(value: Any) -> bool:
    from grader.kit.torch_models import is_torch_module
    return (hasattr(value, "to_json") and hasattr(value, "get_weights") and hasattr(value, "layers")) \
        or is_torch_module(value)


def live_model(value: Any) -> Any:
    """The export-time view of a reference model (Keras or PyTorch) that records what the
    checks read of it; a view already is one."""
    from grader.kit.models import LiveModel
    from grader.kit.torch_models import TorchLiveModel, is_torch_module

    if isinstance(value, (LiveModel, TorchLiveModel)):
        return value
    return TorchLiveModel(value) if is_torch_module(value) else LiveModel(value)


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
    if isinstance(value, np.ndarray):
        data = np.ascontiguousarray(value)
        return {"array": str(data.dtype), "shape": list(data.shape),
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
        from grader.kit.models import write

        for live, name, tree in self._pending:
            tree.update(write(live, self.folder, name))
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
        if isinstance(value, (tuple, list)):
            items = [self.encode(v, depth + 1) for v in value]
            return {"$tuple": items} if isinstance(value, tuple) else items
        if isinstance(value, dict) and all(isinstance(k, str) for k in value):
            return {"$dict": [[k, self.encode(v, depth + 1)] for k, v in value.items()]}
        from grader.kit.models import LiveModel
        from grader.kit.torch_models import TorchLiveModel

        if _is_model(value):
            value = live_model(value)
        if isinstance(value, (LiveModel, TorchLiveModel)):
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
        return array[()] if tree.get("scalar") else array
    if "$tuple" in tree:
        return tuple(decode(v, folder, depth + 1) for v in tree["$tuple"])
    if "$dict" in tree:
        return {str(k): decode(v, folder, depth + 1) for k, v in tree["$dict"]}
    if "$graph_model" in tree:
        from grader.kit.models import read
        return read(tree, folder, _inside)
    raise ValueError(f"the recording holds an unknown value {sorted(tree)}")
