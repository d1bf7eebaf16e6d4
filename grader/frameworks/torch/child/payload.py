"""A returned PyTorch module as the grading process receives it: data, checked for shape.

The child writes `{"$torch": ...}` (`describe`); the wire (`grader.sandbox.protocol`)
hands the body here, in the grading process, with a way to fetch the arrays it refers
to. Only the message's form is checked here; what it describes is vetted by
`grader.frameworks.torch.rebuild` before anything is built from it. Imports nothing but
NumPy, like the rest of this package.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

MAX_STATE = 100_000  # state-dict entries per module


@dataclass(frozen=True)
class TorchModulePayload:
    """A PyTorch module as pure data (see `describe`): its module tree and `torch.fx` graph
    as JSON, its state dict as (key, array) pairs. Rebuilt in the grading process only by
    `grader.frameworks.torch.rebuild`, from an allow-list."""

    description: dict
    state: tuple[tuple[str, np.ndarray], ...]
    class_name: str
    weightless: bool = False


def decode_module(body: Any, array: Callable[[Any], np.ndarray]) -> TorchModulePayload:
    """ValueError for a body that is not what `describe` writes."""
    state = body.get("state") if isinstance(body, dict) else None
    if not (isinstance(state, list) and len(state) <= MAX_STATE
            and all(isinstance(e, list) and len(e) == 2 and isinstance(e[0], str) for e in state)):
        raise ValueError("malformed torch module in reply")
    return TorchModulePayload(description=body, state=tuple((e[0], array(e[1])) for e in state),
                              class_name=str(body.get("class_name", ""))[:300],
                              weightless=body.get("weightless") is True and not state)


__all__ = ["TorchModulePayload", "decode_module"]
