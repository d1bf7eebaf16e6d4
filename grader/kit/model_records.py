"""Which recording a reference model gets, Keras's (`grader.kit.models`) or PyTorch's
(`grader.kit.torch_models`): the one place that knows both.

The values a kit stores (`grader.kit.values`) and the recorder (`grader.kit.record`) ask
here; the two framework modules know only their own framework and the shared plain-data
pieces (`grader.kit.plain`), so no module of the kit imports one that imports it back.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from grader.kit import models, torch_models


def is_model(value: Any) -> bool:
    """A reference model of either framework, recognised without importing one."""
    return models.is_keras_model(value) or torch_models.is_torch_module(value)


def is_live(value: Any) -> bool:
    return isinstance(value, (models.LiveModel, torch_models.TorchLiveModel))


def live_model(value: Any) -> Any:
    """The export-time view of a reference model (Keras or PyTorch) that records what the
    checks read of it; a view already is one."""
    if is_live(value):
        return value
    return torch_models.TorchLiveModel(value) if torch_models.is_torch_module(value) else models.LiveModel(value)


def write(live: Any, folder: Path, name: str) -> dict:
    """Write one reference model's recording; returns the answers.json entry that finds it."""
    if isinstance(live, torch_models.TorchLiveModel):
        return torch_models.write(live, folder, name)
    return models.write(live, folder, name)


def read(entry: dict, folder: Path, inside) -> Any:
    """The recorded model an answers.json entry names; `inside` keeps file names in the
    folder. The graph file says which framework recorded it."""
    name = str(entry["$graph_model"])
    data = json.loads(inside(folder, f"{name}.graph.json").read_text(encoding="utf-8"))
    if data.get("framework") == "torch":
        return torch_models.read(data, entry, folder, inside)
    return models.read(data, entry, folder, inside)


__all__ = ["is_live", "is_model", "live_model", "read", "write"]
