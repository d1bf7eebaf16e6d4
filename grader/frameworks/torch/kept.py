"""Reference modules kept from one submission to the next, handed out as freshly built.

A grading process builds the same few reference modules for every submission (each test
asks `reference.happy_model()`); building one, tracing it with torch.fx and running it
cost more than the checks that read it. The plugin keeps them (as it keeps Keras
models), and each hand-out puts back what a fresh build would have: the weights and
buffers the module was built with, every submodule's mode, and no recorded input shape
(`grader.frameworks.torch.shapes`: a graph is read at the shape a test last ran it on,
which must be this submission's test, never the previous one's). What stays is what
depends on the module's code alone: its torch.fx trace and the reference outputs
`grader.frameworks.torch.outputs` remembers by content.

Built under its own seed (the call's, as for Keras), so a reference's weights, and the
numbers feedback quotes from it, are the same in every grading process; torch's global
random state is left as it was.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn as nn

from grader.frameworks.torch import shapes


class KeptModule:
    """One reference module and what it was built as."""

    def __init__(self, module: nn.Module):
        self.module = module
        self.state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        self.modes = [(m, m.training) for m in module.modules()]
        self.structure = self._structure()

    def _structure(self) -> tuple:
        return tuple((path, id(sub)) for path, sub in self.module.named_modules())

    def lend(self) -> nn.Module | None:
        """The module as built; None when a test replaced a layer of it (build another)."""
        module = self.module
        if self._structure() != self.structure:
            return None
        current = module.state_dict()
        if current.keys() != self.state.keys() or any(current[k].shape != v.shape for k, v in self.state.items()):
            return None
        with torch.no_grad():
            for key, value in self.state.items():
                current[key].copy_(value)
        for sub, mode in self.modes:
            sub.training = mode
        shapes.forget_input_shape(module)
        return module


def is_module(value: Any) -> bool:
    return isinstance(value, nn.Module)


def is_module_class(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, nn.Module)


def build_seeded(build: Callable[[], Any], seed: int) -> Any:
    """`build()` with torch's generator seeded, torch's global random state restored after."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


__all__ = ["KeptModule", "build_seeded", "is_module", "is_module_class"]
