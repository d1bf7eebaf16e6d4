"""The PyTorch adapter as the checks see it (`grader.checks.adapters`): any `nn.Module`
(a reference module, or a student's `RebuiltModule`), read by `torch.fx` into the
neutral graph and compared with the reference's weights transplanted.

Only asked once `torch` is imported, so importing torch here costs nothing extra.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch.nn as nn

from grader.checks.adapters import Adapter
from grader.checks.limits import MAX_CALLS
from grader.frameworks.torch.graph import torch_layer_graph
from grader.frameworks.torch.outputs import expect_same_torch_outputs


def owns(obj: Any) -> bool:
    return isinstance(obj, nn.Module)


def _layer_graph(model: nn.Module, cap: int = MAX_CALLS):
    return torch_layer_graph(model, cap=cap)


def _expect_same_outputs(reference: Any, student: nn.Module, inputs: np.ndarray, *, training: bool | None,
                         rtol: float = 1e-5, atol: float = 1e-6, what: str = "output",
                         merge_order: str = "fixed") -> None:
    """`merge_order` has nothing to permute here: a torch graph's merges keep the order
    written, and the graph check reports another order."""
    expect_same_torch_outputs(reference, student, inputs, training=training, rtol=rtol, atol=atol, what=what)


ADAPTER = Adapter(name="torch", owns=owns, layer_graph=_layer_graph, expect_same_outputs=_expect_same_outputs)

__all__ = ["ADAPTER", "owns"]
