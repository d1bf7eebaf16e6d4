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
from grader.frameworks.torch.shapes import record_input_shape
from grader.frameworks.torch.weights import copy_weights, expect_same_outputs_either, input_shape, outputs


def owns(obj: Any) -> bool:
    return isinstance(obj, nn.Module)


def _layer_graph(model: nn.Module, cap: int = MAX_CALLS):
    return torch_layer_graph(model, cap=cap)


def _traced(module: Any) -> bool:
    return getattr(module, "fx_graph", 0) is not None


def _expect_same_outputs(reference: Any, student: nn.Module, inputs: np.ndarray, *, training: bool | None,
                         rtol: float = 1e-5, atol: float = 1e-6, what: str = "output",
                         merge_order: str = "fixed") -> None:
    """Both graphs are read at the test's input shape (recorded on both modules first), so
    the pairing of layers for the transplant is decided where the outputs are compared.
    `merge_order="either"` on two traced modules permutes the transplant after a reordered
    `torch.cat` (`weights`); otherwise the plain transplant (`outputs`). A module torch.fx
    cannot trace has no merges to reorder: it runs in the child as before."""
    check_merge_order(merge_order)
    if _traced(student) and not isinstance(inputs, (list, tuple)):
        shape = np.shape(inputs)[1:]
        for module in (reference, student):
            record_input_shape(module, shape)
    if merge_order == "either" and _traced(student):  # a kit's recorded reference reads like a module
        expect_same_outputs_either(reference, student, inputs, training=training, rtol=rtol, atol=atol, what=what)
        return
    expect_same_torch_outputs(reference, student, inputs, training=training, rtol=rtol, atol=atol, what=what)


ADAPTER = Adapter(name="torch", owns=owns, layer_graph=_layer_graph, expect_same_outputs=_expect_same_outputs,
                  copy_weights=copy_weights, outputs=outputs, input_shape=input_shape,
                  numerically_same=numerically_same)

__all__ = ["ADAPTER", "owns"]
