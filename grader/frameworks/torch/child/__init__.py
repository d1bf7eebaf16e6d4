"""PyTorch on the sandbox's side: what the worker and its children do for a torch
assignment, through the interface `grader.sandbox.hooks` describes.

The worker imports torch, its layers and `torch.fx` once (never TensorFlow); each child
seeds torch, records where the student's modules were created, and sends a returned
module back as data (`describe`: module tree, fx graph, state arrays) and a tensor as an
array. Arrays the grading process sends as tensors arrive here as torch tensors.

This package is mounted alone under bubblewrap: it imports only the standard library,
NumPy and torch, and its own modules relatively.
"""
from __future__ import annotations

import sys
from typing import Any, Callable

from . import describe as _describe
from .payload import TorchModulePayload, decode_module

_LABELS: set[str] = set()


def preload(options: dict) -> dict:
    """torch, its layers and torch.fx (what describing a module needs), imported once and
    shared; no tensor is made here."""
    import torch
    import torch.fx  # noqa: F401
    import torch.nn  # noqa: F401
    import torch.nn.functional  # noqa: F401
    return {"torch": torch.__version__}


def state() -> dict:
    return {"torch_imported": "torch" in sys.modules, "tensorflow_imported": "tensorflow" in sys.modules}


def seed(value: int) -> None:
    torch = sys.modules.get("torch")
    if torch is not None:  # module initial weights, dropout masks
        torch.manual_seed(value)


def watch(labels: set[str]) -> None:
    _LABELS.clear()
    _LABELS.update(labels)
    if "torch" in sys.modules:
        _describe.record_creations(labels)  # where each module is created, for the feedback


def encode(value: Any, add_array: Callable[[Any], int], weights: bool) -> dict | None:
    """A tensor as an array, a module as its description; None for anything else (and
    without torch imported, for everything: nothing here imports it)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    if isinstance(value, torch.Tensor):
        return {"$tensor": add_array(_describe.tensor_array(value))}
    if isinstance(value, torch.nn.Module):
        return {"$torch": _describe.describe(value, add_array, weights=weights, labels=frozenset(_LABELS))}
    return None


def decode(tag: str, body: Any, array: Callable[[Any], Any]) -> TorchModulePayload | None:
    """In the grading process: a `$torch` body as a TorchModulePayload (ValueError if malformed)."""
    return decode_module(body, array) if tag == "$torch" else None


def tensor_from_array(array: Any) -> Any:
    torch = sys.modules.get("torch")
    return torch.from_numpy(array) if torch is not None else array


__all__ = ["TorchModulePayload", "decode", "encode", "preload", "seed", "state", "tensor_from_array", "watch"]
