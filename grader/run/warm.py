"""What a cold grading process does while its sandbox worker imports TensorFlow (or torch).

The first submission a process grades pays for things that have nothing to do with it:
importing TensorFlow, pytest and the checks, compiling nbformat's schema validators, and
the first use of each kind of Keras layer and TensorFlow operation. The sandbox worker's
own import takes about 3 s on the other core, and grading cannot start before it is
ready, so whatever is paid here first is paid in that shadow instead of after it: a
student's `grader check` waits for the worker and then only for their own submission.

Nothing here may change a grade: the warm-up model is built and dropped the way a graded
submission's models are (Keras' global state reset as after any submission), so the first
submission is graded in the state every later submission of a batch finds.

A PyTorch assignment (`framework = "torch"`) never needs TensorFlow: its grading imports
torch and the torch adapter, and its first model check traces and rebuilds a module, so
that is what is warmed instead (TensorFlow's import alone would cost a torch check ~4 s).
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from typing import Callable

from grader.frameworks.keras.tensorflow_import import import_quietly


@dataclass
class Prepared:
    """What the preparation did, for benchmarks and the curious: seconds per step, and the
    steps that failed (a failed warm-up costs time later, never a grade)."""

    seconds: dict[str, float] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def prepare(keras: str = "3", *, plotting: bool = True, enough: Callable[[], bool] | None = None,
            framework: str = "keras") -> Prepared:
    """Import and warm what grading a submission uses. `plotting=False` in a process that
    draws nothing (TensorFlow's import then skips matplotlib; see grader.frameworks.keras.tensorflow_import).

    The imports are needed anyway; the warm-ups only move work out of the first grading,
    or add a little (the warm-up model), so they are skipped once `enough()` says the
    sandbox worker is ready: from then on they would delay the grading they are for."""
    import time

    done = Prepared()
    if framework == "torch":
        steps = (("torch", _import_torch, True),
                 ("grading modules", _import_grading, True),
                 ("notebook reader", _warm_notebook_reader, False),
                 ("torch model", _warm_torch, False))
    else:
        steps = (("tensorflow", lambda: import_quietly(keras, plotting=plotting), True),
                 ("grading modules", _import_grading, True),
                 ("notebook reader", _warm_notebook_reader, False),
                 ("keras", lambda: _warm_keras(keras), False))
    for name, step, needed in steps:
        if not needed and enough is not None and enough():
            done.skipped.append(f"{name}: not needed (the sandbox worker was ready)")
            continue
        started = time.perf_counter()
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - the real grading meets the same problem and reports it
            done.skipped.append(f"{name}: {type(exc).__name__}: {exc}")
        done.seconds[name] = round(time.perf_counter() - started, 3)
    return done


def _import_grading() -> None:
    """Every module a grading imports on its way: the grader's (every check, since an
    assignment's tests may use any), pytest's built-in plugins (imported when a session's
    configuration is made), and what the plugin and hidden inputs use."""
    import importlib
    import pkgutil

    import numpy.random  # noqa: F401  (hidden inputs)
    from _pytest.config import default_plugins, essential_plugins

    import grader.checks
    import grader.run.grading  # noqa: F401  (pytest, the plugin, Submission)
    import grader.kit.record  # noqa: F401  (a kit's recorded reference answers)
    import grader.kit.replay  # noqa: F401
    import grader.frameworks.keras.rebuild  # noqa: F401
    import grader.render  # noqa: F401
    import grader.testing  # noqa: F401
    for module in pkgutil.iter_modules(grader.checks.__path__, "grader.checks."):
        importlib.import_module(module.name)
    for name in ("_argcomplete", *essential_plugins, *default_plugins):
        try:
            importlib.import_module(f"_pytest.{name}")
        except ImportError:  # a plugin of another pytest version, or one installed apart
            continue


def _warm_notebook_reader() -> None:
    """Read a one-cell notebook the way a submission is read: nbformat compiles its
    schema validators (~0.1-0.2 s) on the first notebook of each format version."""
    import nbformat

    from grader.notebook import load_notebook

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    fd, path = tempfile.mkstemp(prefix="grader-warm-", suffix=".ipynb")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            nbformat.write(nb, f)
        load_notebook(path)
    finally:
        os.unlink(path)


def _warm_keras(keras: str) -> None:
    """Build, call (both modes), serialize and rebuild a small convolutional model, then
    drop it as a graded submission's models are dropped."""
    import numpy as np

    if keras == "2":
        import tf_keras as K
    else:
        import keras as K
    layers = K.layers
    inputs = K.Input((8, 8, 3))
    x = layers.ZeroPadding2D(1)(inputs)
    x = layers.Conv2D(2, 3)(x)
    x = layers.BatchNormalization(axis=3)(x)
    x = layers.ReLU()(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    model = K.Model(inputs, layers.Dense(1, activation="sigmoid")(x))
    batch = np.zeros((2, 8, 8, 3), "float32")
    model(batch, training=False)
    model(batch, training=True)
    K.models.model_from_json(model.to_json())
    del model
    from grader.run.grading import release_models
    release_models()


def _import_torch() -> None:
    """torch, torch.fx and the adapter that reads, rebuilds and compares modules."""
    import torch  # noqa: F401
    import torch.fx  # noqa: F401

    import grader.frameworks.torch.graph  # noqa: F401
    import grader.frameworks.torch.outputs  # noqa: F401
    import grader.frameworks.torch.rebuild  # noqa: F401
    import grader.frameworks.torch.untraced  # noqa: F401
    import grader.kit.torch_models  # noqa: F401


def _warm_torch() -> None:
    """Trace, describe as data, rebuild and call (both modes) a small module the way a
    submission's is, so the first check does not pay for torch.fx's and the rebuild's
    first use. Nothing is kept."""
    import numpy as np
    import torch
    from torch import nn

    from grader.frameworks.torch.child.describe import describe
    from grader.frameworks.torch.graph import torch_layer_graph
    from grader.frameworks.torch.rebuild import rebuild_torch
    from grader.frameworks.torch.child.payload import TorchModulePayload

    module = nn.Sequential(nn.ZeroPad2d(1), nn.Conv2d(3, 2, 3, bias=False), nn.BatchNorm2d(2), nn.ReLU(),
                           nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2 * 4 * 4, 1), nn.Sigmoid())
    arrays: list[np.ndarray] = []

    def add(array: np.ndarray) -> int:
        arrays.append(array)
        return len(arrays) - 1

    described = describe(module, add)
    payload = TorchModulePayload(described, tuple((k, arrays[i]) for k, i in described["state"]),
                                 described["class_name"])
    rebuilt = rebuild_torch(payload)
    torch_layer_graph(rebuilt)
    batch = torch.zeros((2, 3, 8, 8))
    with torch.no_grad():
        for mode in (False, True):
            rebuilt.train(mode)
            rebuilt(batch)
