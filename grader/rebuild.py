"""Turn a model that came back from the sandbox (JSON config + weights) into a Keras model.

The config was written by untrusted code, so it is vetted before Keras sees it: every
layer must be a built-in class on the allow-list below, every serialized object must come
from a `keras` module, and Keras' own safe mode stays on. A Lambda holding a named
function (e.g. `keras.ops.relu`) passes Keras' safe mode, so safe mode alone is not enough.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from grader.sandbox.protocol import ModelPayload

ALLOWED_LAYERS = frozenset({
    "InputLayer", "Dense", "Conv1D", "Conv2D", "Conv3D", "DepthwiseConv2D", "SeparableConv2D",
    "Conv2DTranspose", "BatchNormalization", "LayerNormalization", "GroupNormalization",
    "ReLU", "LeakyReLU", "ELU", "PReLU", "Softmax", "Activation",
    "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D",
    "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D",
    "ZeroPadding1D", "ZeroPadding2D", "Cropping2D", "UpSampling2D", "Flatten", "Reshape", "Permute",
    "RepeatVector", "Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise", "Identity",
    "Rescaling", "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate",
})
MODEL_CLASSES = frozenset({"Sequential", "Functional", "Model"})
# Built-in activations a config may name; anything else is a custom function.
ALLOWED_ACTIVATIONS = frozenset({
    "linear", "relu", "relu6", "sigmoid", "softmax", "tanh", "elu", "selu", "softplus", "softsign",
    "swish", "silu", "gelu", "hard_sigmoid", "hard_silu", "hard_swish", "exponential", "leaky_relu",
    "log_softmax", "mish", None,
})
MAX_LAYERS = 500
MAX_PARAMS = 50_000_000


class ModelRejected(Exception):
    """The returned model cannot be checked; `str()` is the student-facing reason."""


@dataclass(frozen=True)
class _Found:
    class_name: str
    name: str


def _layer_entries(config: dict) -> list[dict]:
    inner = config.get("config")
    if not isinstance(inner, dict):
        return []
    layers = inner.get("layers")
    return layers if isinstance(layers, list) else []


def vet_config(config: Any, *, depth: int = 0) -> None:
    """Raise ModelRejected unless every layer is an allow-listed built-in layer."""
    if depth > 8:
        raise ModelRejected("the model nests other models too deeply to check")
    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str):
        raise ModelRejected("the returned object is not a Keras model configuration")
    if config["class_name"] not in MODEL_CLASSES:
        raise ModelRejected(f"a {config['class_name']} is not a Keras Sequential or functional Model")
    entries = _layer_entries(config)
    if len(entries) > MAX_LAYERS:
        raise ModelRejected(f"the model has {len(entries)} layers, more than the {MAX_LAYERS} this grader checks")
    for entry in entries:
        if not isinstance(entry, dict):
            raise ModelRejected("the model configuration is malformed")
        cls = entry.get("class_name")
        name = (entry.get("config") or {}).get("name", "?") if isinstance(entry.get("config"), dict) else "?"
        if cls in MODEL_CLASSES:
            vet_config(entry, depth=depth + 1)
            continue
        if cls not in ALLOWED_LAYERS:
            if cls == "Lambda":
                raise ModelRejected(
                    f"layer '{name}' is a Lambda layer, which is not allowed: it runs arbitrary code, "
                    f"so it cannot be checked safely. Use the built-in Keras layer that does the same "
                    f"(for example ReLU() or Activation('relu')).")
            raise ModelRejected(
                f"layer '{name}' is a {cls}, which is not allowed: only built-in Keras layers can be "
                f"graded (custom layer classes run code of their own). Build the model from tf.keras.layers.")
        module = entry.get("module")
        if module is not None and not str(module).startswith(("keras", "tf_keras")):
            raise ModelRejected(f"layer '{name}' comes from module {module!r}, not from Keras")
        _vet_objects(entry.get("config"), name)


def _vet_objects(node: Any, layer: str) -> None:
    """Serialized functions and objects inside a layer (activations, initializers) must be Keras'."""
    if isinstance(node, dict):
        module = node.get("module")
        if "class_name" in node and module is not None and not str(module).startswith(("keras", "tf_keras")):
            raise ModelRejected(f"layer '{layer}' uses {node.get('class_name')} from module {module!r}, "
                                f"which is not part of Keras")
        if node.get("class_name") == "function" and node.get("config") not in ALLOWED_ACTIVATIONS:
            raise ModelRejected(f"layer '{layer}' uses a custom function {node.get('config')!r}; "
                                f"use a built-in activation such as 'relu' or 'sigmoid'")
        if "registered_name" in node and node.get("registered_name") not in (None, node.get("class_name")):
            if node.get("class_name") != "function":
                raise ModelRejected(f"layer '{layer}' uses a custom registered object "
                                    f"{node.get('registered_name')!r}")
        for key, value in node.items():
            if key == "activation" and isinstance(value, str) and value not in ALLOWED_ACTIVATIONS:
                raise ModelRejected(f"layer '{layer}' uses activation {value!r}, which is not a built-in activation")
            _vet_objects(value, layer)
    elif isinstance(node, list):
        for item in node:
            _vet_objects(item, layer)


def rebuild(payload: ModelPayload):
    """A real Keras model with the student's architecture and weights, or ModelRejected."""
    try:
        config = json.loads(payload.config)
    except json.JSONDecodeError:
        raise ModelRejected("the returned model's configuration is not valid JSON") from None
    vet_config(config)
    total = sum(int(np.prod(w.shape)) for w in payload.weights)
    if total > MAX_PARAMS:
        raise ModelRejected(f"the model has {total:,} weights, more than the {MAX_PARAMS:,} this grader accepts")
    for w in payload.weights:
        if w.dtype.kind not in "fiub":
            raise ModelRejected("the model's weights are not numeric arrays")
    if payload.keras == "2":
        import tf_keras as keras_mod
    else:
        import keras as keras_mod
    try:
        # Keras' own safe mode is on by default (nothing here enables unsafe deserialization).
        model = keras_mod.models.model_from_json(payload.config)
    except Exception as exc:  # noqa: BLE001 - any failure to rebuild is reported, not raised
        raise ModelRejected(f"the returned model could not be rebuilt from its configuration: "
                            f"{type(exc).__name__}: {str(exc)[:300]}") from None
    current = model.get_weights()
    if len(current) != len(payload.weights) or any(a.shape != b.shape for a, b in zip(current, payload.weights)):
        raise ModelRejected("the returned model's weights do not fit its own configuration")
    model.set_weights(list(payload.weights))
    return model

