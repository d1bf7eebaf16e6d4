"""The PyTorch adapter as the checks see it (`grader.checks.adapters`): any `nn.Module`
(a reference module, or a student's `RebuiltModule`), read by `torch.fx` into the
neutral graph (layers' input shapes from `shapes`), compared with the reference's
weights transplanted (`outputs`, `weights`), layers decided numerically (`equivalence`).

Only asked once `torch` is imported, so importing torch here costs nothing extra.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch.nn as nn

from grader.checks.adapters import Adapter
from grader.checks.limits import MAX_CALLS
from grader.checks.merge_order import check_merge_order
from grader.frameworks.torch.equivalence import numerically_same
from grader.frameworks.torch.graph import torch_layer_graph
from grader.frameworks.torch.outputs import expect_same_torch_outputs
from grader.frameworks.torch.weights import copy_weights, input_shape, outputs


def owns(obj: Any) -> bool:
    return isinstance(obj, nn.Module)


def _layer_graph(model: nn.Module, cap: int = MAX_CALLS):
    return torch_layer_graph(model, cap=cap)


def _expect_same_outputs(reference: Any, student: nn.Module, inputs: np.ndarray, *, training: bool | None,
                         rtol: float = 1e-5, atol: float = 1e-6, what: str = "output",
                         merge_order: str = "fixed") -> None:
    """One output check for both merge orders (`outputs.expect_same_torch_outputs`: both
    graphs read at the test's input shape, the reference's outputs remembered, the
    transplant permuted after a reordered `torch.cat` for "either"). A module torch.fx
    cannot trace runs in the sandbox child instead (`untraced`)."""
    check_merge_order(merge_order)
    expect_same_torch_outputs(reference, student, inputs, training=training, rtol=rtol, atol=atol, what=what,
                              merge_order=merge_order)


ADAPTER = Adapter(name="torch", owns=owns, layer_graph=_layer_graph, expect_same_outputs=_expect_same_outputs,
                  copy_weights=copy_weights, outputs=outputs, input_shape=input_shape,
                  numerically_same=numerically_same)

__all__ = ["ADAPTER", "owns"]
