"""The Keras adapter as the checks see it (`grader.checks.adapters`): Keras 3 and tf_keras
models and layers, graph, outputs and the numerical layer test.

Importing this module imports no Keras package: the walk is duck-typed, and the output
path imports TensorFlow only when it first runs a model, which by then is imported.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from grader.checks.adapters import Adapter
from grader.frameworks.keras.equivalence import numerically_same
from grader.frameworks.keras.graph import keras_layer_graph
from grader.frameworks.keras.models import _call, copy_weights, expect_same_outputs, input_shape

PACKAGES = ("keras", "tf_keras")


def owns(obj: Any) -> bool:
    """A model or layer whose class (or a base class) a Keras package defines: a
    student's subclass counts, a wrapper that only forwards attributes does not."""
    return any(str(getattr(c, "__module__", "")).split(".", 1)[0] in PACKAGES for c in type(obj).__mro__)


def _outputs(model: Any, inputs: np.ndarray, training: bool | None, who: str) -> list:
    return _call(model, inputs, training, who)


ADAPTER = Adapter(name="keras", owns=owns, layer_graph=keras_layer_graph, expect_same_outputs=expect_same_outputs,
                  copy_weights=copy_weights, outputs=_outputs, input_shape=input_shape,
                  numerically_same=numerically_same)

__all__ = ["ADAPTER", "owns"]
