"""Turn a model that came back from the sandbox (JSON config + weights) into a Keras model.

The config was written by untrusted code, so it is vetted before Keras sees it: every
layer must be a built-in class on the allow-list below, every serialized object anywhere
in the config must come from a `keras` module, and Keras' own safe mode is forced on. A
Lambda holding a named function (e.g. `keras.ops.relu`) passes Keras' safe mode, so safe
mode alone is not enough. The parts of a config that grading never needs and that name
arbitrary objects (`compile_config`: optimizer, losses, metrics) are dropped, and Keras
reads our re-serialized copy of the vetted config, never the student's text.

Sizes are checked before memory is spent: the grading process must survive a config that
asks for a Dense layer of a billion units. With Keras 3 the model is first built inside a
`StatelessScope`, where variables get shapes but no memory, then its weight count and the
size of every layer's output are checked, and only then are the variables created, from
the student's weights. tf_keras has no such scope: there, declared dimensions are capped,
each variable's shape is counted before the variable is created, and output sizes are
checked on the symbolic model, before its first call.

Whatever the config holds, the only exception that leaves `rebuild` is ModelRejected: the
config was written by the student's code, so a malformed one is theirs to fix, never "the
grader's own check failed" (tests/test_rebuild_fuzz.py fuzzes this with Hypothesis).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from grader.frameworks.errors import ModelRejected
from grader.frameworks.keras.child.payload import ModelPayload

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
MAX_LAYERS = 500  # in the whole model, nested models included
MAX_PARAMS = 50_000_000
# Elements of one layer's output for one example (a None batch counts as 1): 16 MB of
# float32. The checks feed small batches; a model asking for more is an attack or a bug.
MAX_OUTPUT_ELEMENTS = 4 * 1024 * 1024
MAX_DIMENSION = 1 << 20  # any single declared size (tf_keras only, see the module docstring)
KERAS_MODULES = ("keras", "tf_keras")


def _among(value: Any, allowed: frozenset) -> bool:
    """Membership that a hostile config cannot turn into a TypeError: JSON lists and
    objects are unhashable, and `["relu"] in ALLOWED_ACTIVATIONS` would raise, which the
    student would read as the grader's own failure."""
    return (value is None or isinstance(value, (str, int, float, bool))) and value in allowed


def _shown(value: Any, limit: int = 60) -> str:
    return repr(value if isinstance(value, str) else type(value).__name__ if value is not None else None)[:limit]


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


def vet_config(config: Any, *, depth: int = 0, _count: list[int] | None = None) -> None:
    """Raise ModelRejected unless every layer is an allow-listed built-in layer.

    Drops `compile_config` entries in place (see the module docstring).
    """
    count = _count if _count is not None else [0]
    if depth > 8:
        raise ModelRejected("the model nests other models too deeply to check")
    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str):
        raise ModelRejected("the returned object is not a Keras model configuration")
    if config["class_name"] not in MODEL_CLASSES:
        raise ModelRejected(f"a {config['class_name']} is not a Keras Sequential or functional Model")
    _vet_module(config, "the model")
    config.pop("compile_config", None)
    entries = _layer_entries(config)
    count[0] += len(entries)
    if count[0] > MAX_LAYERS:
        raise ModelRejected(f"the model has more than the {MAX_LAYERS} layers this grader checks")
    for entry in entries:
        if not isinstance(entry, dict):
            raise ModelRejected("the model configuration is malformed")
        cls = entry.get("class_name")
        if not isinstance(cls, str):
            raise ModelRejected(f"a layer of the model has a class name that is not text ({_shown(cls)}): "
                                f"the model configuration is malformed")
        name = entry["config"].get("name", "?") if isinstance(entry.get("config"), dict) else "?"
        name = name[:60] if isinstance(name, str) else "?"
        if cls in MODEL_CLASSES:
            vet_config(entry, depth=depth + 1, _count=count)
            continue
        if cls not in ALLOWED_LAYERS:
            if cls == "Lambda":
                raise ModelRejected(
                    f"layer '{name}' is a Lambda layer, which is not allowed: it runs arbitrary code, "
                    f"so it cannot be checked safely. Use the built-in Keras layer that does the same "
                    f"(for example ReLU() or Activation('relu')).")
            raise ModelRejected(
                f"layer '{name}' is a {cls[:60]}, which is not allowed: only built-in Keras layers can be "
                f"graded (custom layer classes run code of their own). Build the model from tf.keras.layers.")
        # Built-in layers name their Keras module and no registered name; a class of the
        # student's own has no module (or their own) and registers under its name, even
        # when that name is a built-in's ("ReLU").
        module = entry.get("module")
        if (not (isinstance(module, str) and module.split(".")[0] in KERAS_MODULES)
                or entry.get("registered_name") is not None):
            raise ModelRejected(
                f"layer '{name}' is a custom {cls[:60]} class (from module {_shown(module)}), which is not "
                f"allowed: only built-in Keras layers can be graded. Use tf.keras.layers.{cls[:60]}.")
        entry.pop("compile_config", None)
        _vet_objects(entry.get("config"), name)
        _vet_objects(entry.get("build_config"), name)
        _vet_objects(entry.get("inbound_nodes"), name)
    for key, value in config.items():
        if key != "config":
            _vet_objects(value, "the model")
    inner = config.get("config")
    if isinstance(inner, dict):
        for key, value in inner.items():
            if key != "layers":
                _vet_objects(value, "the model")


def _vet_module(node: dict, what: str) -> None:
    module = node.get("module")
    if module is not None and not (isinstance(module, str) and module.split(".")[0] in KERAS_MODULES):
        raise ModelRejected(f"{what} comes from module {str(module)[:80]!r}, not from Keras")


def _vet_objects(node: Any, layer: str, depth: int = 0) -> None:
    """Serialized functions and objects anywhere in a layer (activations, initializers,
    node arguments) must be Keras' own: no lambdas, no custom functions or classes."""
    if depth > 64:
        raise ModelRejected(f"layer '{layer}' has a configuration nested too deeply to check")
    if isinstance(node, dict):
        module = node.get("module")
        cls = node.get("class_name")
        if cls == "__lambda__" or "__lambda__" in node:
            raise ModelRejected(f"layer '{layer}' holds a Python lambda, which is not allowed: it runs "
                                f"arbitrary code. Use a built-in activation such as 'relu'.")
        if cls is not None and module is not None and module != "builtins":
            _vet_module(node, f"layer '{layer}' uses {str(cls)[:60]} which")
        if cls == "function" and not _among(node.get("config"), ALLOWED_ACTIVATIONS):
            raise ModelRejected(f"layer '{layer}' uses a custom function {_shown(node.get('config'))}; "
                                f"use a built-in activation such as 'relu' or 'sigmoid'")
        registered = node.get("registered_name")
        if "registered_name" in node and not (registered is None or (isinstance(registered, str) and registered == cls)):
            if cls != "function" or not _among(registered, ALLOWED_ACTIVATIONS):
                raise ModelRejected(f"layer '{layer}' uses a custom registered object "
                                    f"{_shown(registered)}")
        for key, value in node.items():
            if key == "activation" and not _builtin_activation(value):
                shown = value[:60] if isinstance(value, str) else "a function of its own"
                raise ModelRejected(f"layer '{layer}' uses activation {shown!r}, which is not a "
                                    f"built-in activation; use one such as 'relu' or 'sigmoid'")
            _vet_objects(value, layer, depth + 1)
    elif isinstance(node, list):
        for item in node:
            _vet_objects(item, layer, depth + 1)


def _builtin_activation(value: Any) -> bool:
    if value is None or isinstance(value, str):
        return value in ALLOWED_ACTIVATIONS
    return (isinstance(value, dict) and value.get("class_name") == "function"
            and _among(value.get("config"), ALLOWED_ACTIVATIONS))


_SIZE_KEYS = frozenset({"units", "filters", "kernel_size", "pool_size", "strides", "size", "target_shape",
                        "batch_input_shape", "batch_shape", "input_shape", "n", "padding", "cropping",
                        "depth_multiplier", "input_dim", "output_dim", "dims", "dilation_rate", "groups"})


def _cap_dimensions(node: Any, depth: int = 0, key: str = "") -> None:
    """tf_keras only: without a stateless build, refuse absurd declared sizes up front.
    Only keys that size layers count (a seed of 2**31 is not a size)."""
    if depth > 64:
        return
    if isinstance(node, dict):
        for k, value in node.items():
            _cap_dimensions(value, depth + 1, str(k))
    elif isinstance(node, list):
        for item in node:
            _cap_dimensions(item, depth + 1, key)
    elif type(node) is int and key in _SIZE_KEYS and abs(node) > MAX_DIMENSION:
        raise ModelRejected(f"the model declares a {key} of {node:,}, more than the {MAX_DIMENSION:,} "
                            f"this grader accepts")


def _check_weights(weights) -> None:
    total = sum(int(np.prod(w.shape)) for w in weights)
    if total > MAX_PARAMS:
        raise ModelRejected(f"the model has {total:,} weights, more than the {MAX_PARAMS:,} this grader accepts")
    for w in weights:
        if w.dtype.kind not in "fiub":
            raise ModelRejected("the model's weights are not numeric arrays")


def _check_sizes(model) -> None:
    """Weight count and per-layer output size of a model whose variables hold no memory yet."""
    total = sum(int(np.prod(tuple(v.shape))) for v in model.weights)
    if total > MAX_PARAMS:
        raise ModelRejected(f"the model has {total:,} weights, more than the {MAX_PARAMS:,} this grader accepts")
    for layer in _all_layers(model):
        try:
            outputs = layer.output
        except Exception:  # noqa: BLE001 - a layer without a single defined output
            continue
        for out in outputs if isinstance(outputs, (list, tuple)) else [outputs]:
            shape = getattr(out, "shape", None)
            if shape is None:
                continue
            elements = 1
            for dim in tuple(shape):
                elements *= int(dim) if dim is not None else 1
            if elements > MAX_OUTPUT_ELEMENTS:
                raise ModelRejected(
                    f"layer '{layer.name}' outputs {elements:,} values per example, more than the "
                    f"{MAX_OUTPUT_ELEMENTS:,} this grader accepts")


def _all_layers(model, depth: int = 0):
    for layer in getattr(model, "layers", []):
        yield layer
        if depth < 8 and hasattr(layer, "layers"):
            yield from _all_layers(layer, depth + 1)


def rebuild(payload: ModelPayload):
    """A real Keras model with the student's architecture and weights, or ModelRejected."""
    try:
        config = json.loads(payload.config)
    except (ValueError, RecursionError):
        raise ModelRejected("the returned model's configuration is not valid JSON") from None
    try:
        model = _rebuild_vetted(config, payload)
    except ModelRejected:
        raise
    except Exception as exc:  # noqa: BLE001 - see below
        # Everything here came from the student's code: whatever it makes our vetting or
        # Keras trip over is a malformed model of theirs, never "the grader's own check failed".
        raise ModelRejected(f"the returned model's configuration is malformed and cannot be checked "
                            f"({type(exc).__name__}: {str(exc)[:200]}); return the model Keras built "
                            f"from tf.keras.layers, unmodified") from None
    if payload.disconnected:
        # Layers the config cannot hold (Keras drops what never reaches the outputs): kept
        # beside the model, outside Keras' attribute tracking, for the architecture check.
        object.__setattr__(model, "_grader_disconnected", tuple(name for name, _ in payload.disconnected))
    # Where the student created each layer (grader.frameworks.keras.child.provenance), for the feedback.
    object.__setattr__(model, "_grader_locations", {n: (cell, line, src) for n, cell, line, src in payload.locations})
    if payload.keras != "2":
        _record_seed_states(model)
    return model


def _record_seed_states(model) -> None:
    """The seed generators' states as rebuilt (a Dropout's), so the model pool can put them
    back before lending the model again. Recorded only when every variable outside the
    weights is such a state: a model with other state is never reused."""
    try:
        weights = {id(w) for w in model.weights}
        extra = [v for v in model.variables if id(v) not in weights]
        if extra and all(str(getattr(v, "name", "")) == "seed_generator_state" for v in extra):
            object.__setattr__(model, "_grader_seed_states", [(v, np.array(v.numpy(), copy=True)) for v in extra])
    except Exception:  # noqa: BLE001 - nothing recorded: the model is rebuilt next time
        pass


def _rebuild_vetted(config: Any, payload: ModelPayload):
    vet_config(config)
    _check_weights(payload.weights)
    text = json.dumps(config)  # Keras reads what was vetted, re-serialized by us
    if payload.keras != "2":
        return _rebuild_keras3(text, payload.weights, payload.weightless)  # variables made from the student's weights
    model = _rebuild_tf_keras(config, text)
    if payload.weightless:  # sent as configuration only: keep the fresh weights (tf_keras draws them)
        return model
    current = model.get_weights()
    if len(current) != len(payload.weights) or any(a.shape != b.shape for a, b in zip(current, payload.weights)):
        raise ModelRejected("the returned model's weights do not fit its own configuration")
    model.set_weights(list(payload.weights))
    return model


def _too_many(total: int) -> ModelRejected:
    return ModelRejected(f"the model has at least {total:,} weights, more than the {MAX_PARAMS:,} "
                         f"this grader accepts")


def _failed(exc: Exception) -> ModelRejected:
    return ModelRejected(f"the returned model could not be rebuilt from its configuration: "
                         f"{type(exc).__name__}: {str(exc)[:300]}")


def _rebuild_tf_keras(config: dict, text: str):
    """tf_keras creates each variable's memory as it builds a layer, so the weight count is
    checked in a variable creator, from the declared shape, before that variable exists."""
    import tensorflow as tf
    import tf_keras
    _cap_dimensions(config)
    total = [0]

    def counted(next_creator, **kwargs):
        shape = kwargs.get("shape")
        if shape is not None:
            dims = tf.TensorShape(shape)
            if dims.rank is not None:
                total[0] += int(np.prod([d if d is not None else 1 for d in dims.as_list()], dtype=object))
        if total[0] > MAX_PARAMS:
            raise _too_many(total[0])
        return next_creator(**kwargs)

    try:
        # Keras' own safe mode is on by default (nothing here enables unsafe deserialization).
        with tf.variable_creator_scope(counted):
            model = tf_keras.models.model_from_json(text)
    except Exception as exc:  # noqa: BLE001 - any failure to rebuild is reported, not raised
        if total[0] > MAX_PARAMS:  # Keras may have wrapped our refusal in an error of its own
            raise _too_many(total[0]) from None
        raise exc if isinstance(exc, ModelRejected) else _failed(exc) from None
    _check_sizes(model)  # outputs are symbolic here: their sizes cost no memory yet
    return model


def _draws_at_random(variable) -> bool:
    """Whether the variable's initializer is a random one (a seeded draw), not a constant
    (BatchNormalization's ones and zeros keep their values)."""
    return hasattr(getattr(variable, "_initializer", None), "seed")


def _rebuild_keras3(text: str, weights, weightless: bool = False):
    import keras
    from keras.src.backend.common import global_state
    from keras.src.saving.serialization_lib import SafeModeScope

    key = "uninitialized_variables"
    before = len(global_state.get_global_attribute(key, [], set_to_default=True))
    pending: list = []
    try:
        with SafeModeScope(True), keras.StatelessScope(initialize_variables=False):
            try:
                model = keras.models.model_from_json(text)
            except Exception as exc:  # noqa: BLE001 - any failure to rebuild is reported, not raised
                raise _failed(exc) from None
        pending = list(global_state.get_global_attribute(key, [])[before:])
        _check_sizes(model)
        if not weightless and (len(model.weights) != len(weights) or any(
                tuple(v.shape) != tuple(w.shape) for v, w in zip(model.weights, weights))):
            raise ModelRejected("the returned model's weights do not fit its own configuration")
        # Sizes are known to be sane now: give the variables memory, straight from the
        # student's weights where the backend allows (no initializer run, no second copy).
        for variable, value in zip(model.weights, weights):
            if getattr(variable, "_value", True) is None and hasattr(variable, "_initialize"):
                variable._initialize(np.asarray(value, dtype=variable.dtype))
                variable._initializer = None
        for variable in pending:
            if getattr(variable, "_value", None) is None:
                if weightless and _draws_at_random(variable):
                    # No check reads a weightless model's own weights (the output checks
                    # read the reference's): left without memory (94 MB a ResNet50), a read
                    # gives zeros, and the copying path gives it memory first (models.py).
                    variable._initializer = keras.initializers.Zeros()
                else:
                    variable._deferred_initialize()
        return model
    finally:
        # Whatever happened, no variable of this model is left for a later scope to initialise.
        collection = global_state.get_global_attribute(key, [])
        mine = {id(v) for v in pending} | {id(v) for v in collection[before:]}
        global_state.set_global_attribute(key, [v for v in collection if id(v) not in mine])
