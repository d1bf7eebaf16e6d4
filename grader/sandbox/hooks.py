"""What a deep-learning framework plugs into the sandbox, so the sandbox names none.

The worker preloads the assignment's framework once and its children seed it, record
where the student's layers were created, describe a returned model as data, and so on.
All of that is the framework's business: each framework keeps a small package of its own
that runs on the sandbox's side (`grader/frameworks/keras/child/`,
`grader/frameworks/torch/child/`), and the grading process hands the worker a
`FrameworkSide` naming it. The sandbox loads that package by name and calls the functions
below on it, each optional, so a worker without a framework is plain Python.

The package's functions (the interface, by name):

- `preload(options) -> dict`: in the worker, once, before any fork; imports the
  framework without running an op (a child forked after a TensorFlow op hangs). Returns
  versions for the worker's info.
- `fork_hazard() -> str`: why a fork would now hang ("" when it would not), asked after
  each declared preload module.
- `state() -> dict`: the framework's own state, for the worker's `probe` (tests).
- `seed(seed)`: in the child, before each call; `random` and NumPy are seeded here already.
- `watch(labels)`: in the child, before confinement and before any student code; `labels`
  are the compile() filenames of the student's cells (where a layer was created).
- `before_definitions()`: in the child, right before the student's definitions run.
- `after_definitions()`: in the child, once the definitions ran (warm a runtime up).
- `building(weights)`: a context manager around each call; `weights` says whether the
  value's weights will be sent back.
- `encode(value, add_array, weights) -> dict | None`: a framework value (a model, a
  tensor) as a JSON tree whose arrays go through `add_array(array) -> index`; None for
  anything else. Used on both sides: the child's replies, the grading process's arguments.
- `decode(tag, body, array) -> value | None`: a value of a tag of the framework's own
  (`$model`), read back from its JSON body, its arrays fetched by `array(index)` (checked by
  the wire); ValueError when the body is malformed. Used in the grading process.
- `tensor_from_array(array)`: in the child, what a `$tensor` argument arrives as.
- `tensor_parents(tensor) -> (layer class name, [input tensors]) | None`: in the child, one
  step back through the layer that made a symbolic tensor (`trace`: which watched call an
  argument derives from).

Like `protocol`, this module imports nothing from the rest of `grader`.
"""
from __future__ import annotations

import contextlib
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Under bubblewrap the framework's package is mounted alone, under this name (client.py).
MOUNTED_NAME = "grader_framework"


@dataclass(frozen=True)
class FrameworkSide:
    """The framework package a worker loads: found by `package` where the grader is
    importable, mounted from `folder` as MOUNTED_NAME where it is not (bubblewrap).
    `options` reach its `preload`; `env` is set before the worker's Python starts
    (variables a framework reads once, at import)."""

    name: str
    package: str
    folder: Path
    options: dict = field(default_factory=dict)
    env: dict = field(default_factory=dict)

    def module(self) -> Any:
        """The package itself, in the grading process: it encodes the arguments sent in."""
        return importlib.import_module(self.package)


# The framework package this process loaded (in the worker and, inherited, its children).
ACTIVE: Any = None


def activate(package: str | None) -> Any:
    global ACTIVE
    ACTIVE = importlib.import_module(package) if package else None
    return ACTIVE


def call(name: str, *args: Any, default: Any = None, side: Any = None) -> Any:
    """`name(*args)` of the given (or active) framework package, or `default` without one."""
    function = getattr(side if side is not None else ACTIVE, name, None)
    return function(*args) if function is not None else default


def building(weights: bool):
    manager = call("building", weights)
    return manager if manager is not None else contextlib.nullcontext()


__all__ = ["ACTIVE", "FrameworkSide", "MOUNTED_NAME", "activate", "building", "call"]
