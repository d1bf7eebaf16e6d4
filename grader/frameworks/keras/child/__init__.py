"""Keras on the sandbox's side: what the worker and its children do for a Keras
assignment, through the interface `grader.sandbox.hooks` describes.

The worker imports TensorFlow and the Keras the students wrote for once (`preload`); each
child seeds it (`seeding`), records where the student's layers were created
(`provenance`), gives Keras 2 era code its Keras 2 semantics (`keras2`), builds models
whose weights stay behind without drawing them (`deferred_init`), and sends a returned
model back as its JSON configuration and weight arrays (`encode`).

This package is mounted alone under bubblewrap: it imports only the standard library,
NumPy and Keras, and its own modules relatively. Importing it imports no TensorFlow.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Callable

from . import deferred_init, keras2, provenance, seeding
from .encode import encode_value
from .payload import ModelPayload, decode_model


def preload(options: dict) -> dict:
    """TensorFlow and the assignment's Keras, imported without running an op."""
    import tensorflow as tf
    if str(options.get("keras", "3")) == "2" or os.environ.get("TF_USE_LEGACY_KERAS") == "1":
        import tf_keras as keras
    else:
        import keras
        import keras.layers  # noqa: F401
        import keras.models  # noqa: F401
    return {"keras": keras.__version__, "tensorflow": tf.__version__}


def fork_hazard() -> str:
    """A TensorFlow context initialized in the worker: every child forked after it hangs."""
    try:
        if "tensorflow" in sys.modules:
            from tensorflow.python.eager import context
            ctx = context.context_safe()
            if ctx is not None and getattr(ctx, "_initialized", True):
                return "ran a TensorFlow op"
    except Exception:  # noqa: BLE001 - no context module: nothing to hang on
        pass
    return ""


def state() -> dict:
    info: dict[str, Any] = {"tensorflow_imported": "tensorflow" in sys.modules,
                            "torch_imported": "torch" in sys.modules}
    try:
        if not info["tensorflow_imported"]:
            raise ImportError("TensorFlow is not imported in this worker")
        from tensorflow.python.eager import context
        ctx = context.context_safe()
        info["tf_context_created"] = ctx is not None
        info["tf_context_initialized"] = bool(ctx is not None and getattr(ctx, "_initialized", True))
    except Exception as exc:  # noqa: BLE001
        info["tf_context_error"] = f"{type(exc).__name__}: {exc}"
    return info


def seed(value: int) -> None:
    seeding.seed(value)


def watch(labels: set[str]) -> None:
    provenance.install(labels)  # where each layer is created, for the feedback
    seeding.watch()


def before_definitions() -> None:
    keras2.install()  # Keras 2 era code keeps its Keras 2 semantics


def after_definitions() -> None:
    """Bring up TensorFlow's eager runtime (~30 ms of CPU: the context, its devices and
    thread pools, the op registries) while the grading process sets up its tests, instead
    of inside the first call. Only after the student's definitions have run, so settings
    they make at import time (threads, devices) still apply. A constant is all it makes:
    no kernel runs, no seed is drawn, no Keras name is taken."""
    tf = sys.modules.get("tensorflow")
    try:
        if tf is not None:
            tf.constant(0.0)
    except Exception:  # noqa: BLE001 - the first call would meet the same problem and report it
        pass


def building(weights: bool):
    """A model whose weights stay here is built without drawing them until something
    reads them (`deferred_init`): the same values if read."""
    return deferred_init.deferring(not weights)


def encode(value: Any, add_array: Callable[[Any], int], weights: bool) -> dict | None:
    return encode_value(value, add_array, weights)


def decode(tag: str, body: Any, array: Callable[[Any], Any]) -> ModelPayload | None:
    """In the grading process: a `$model` body as a ModelPayload (ValueError if malformed)."""
    return decode_model(body, array) if tag == "$model" else None


def tensor_parents(tensor: Any) -> tuple[str, list] | None:
    """The layer that made a symbolic tensor (its class name) and the tensors it read, for
    `grader.sandbox.trace` (which watched call an argument derives from); None at an input."""
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        return None
    layer, node_index = history[0], history[1]
    node = layer._inbound_nodes[node_index]
    # Keras 3 lists a call's inputs in `input_tensors`; tf_keras keeps them in `keras_inputs`
    # (its `input_tensors` is a lone tensor for a one-input call).
    inputs = getattr(node, "keras_inputs", None)
    if inputs is None:
        inputs = getattr(node, "input_tensors", None)
    if inputs is None:
        inputs = []
    return type(layer).__name__, list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]


__all__ = ["ModelPayload", "after_definitions", "before_definitions", "building", "decode", "encode", "fork_hazard", "preload",
           "seed", "state", "tensor_parents", "watch"]
