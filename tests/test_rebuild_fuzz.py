"""Property-based tests of the model vetting: whatever JSON a student's code makes the
sandbox send back, `rebuild` answers with a model or `ModelRejected`, never another
exception. Any other exception reaches the student as "the grader's own check failed ...
this is not your fault", naming the test (a hidden one too), which is both false and a leak.

The inputs are random JSON-shaped configs, and mutations of real model configs
(Sequential and functional, Keras 3 and tf_keras), with weights that may disagree.
Crashes found here are kept below as plain regression tests.
"""
from __future__ import annotations

import json
from functools import lru_cache

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grader.frameworks.keras.rebuild import MODEL_CLASSES, ModelRejected, rebuild, vet_config
from grader.frameworks.keras.child.payload import ModelPayload

FUZZ = settings(max_examples=100, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Keys the vetting and Keras look at, so random dicts hit the interesting branches.
KEYS = st.sampled_from(["class_name", "config", "module", "registered_name", "layers", "name", "activation",
                        "units", "inbound_nodes", "build_config", "input_shape", "batch_shape", "dtype",
                        "kernel_initializer", "args", "kwargs", "__lambda__", "compile_config", "filters",
                        "kernel_size", "target_shape", "input_layers", "output_layers", "trainable"])
NAMES = st.sampled_from(sorted(MODEL_CLASSES) + ["Dense", "Conv2D", "InputLayer", "Lambda", "function", "ReLU",
                                                 "__lambda__", "relu", "keras.layers", "tf_keras.layers",
                                                 "builtins", "os", "Custom>X", "keras.activations"])
SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(10 ** 30), max_value=10 ** 30)
           | st.floats(allow_nan=True, allow_infinity=True) | NAMES | st.text(max_size=8))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(KEYS | st.text(max_size=4), inner, max_size=5), max_leaves=25)
DTYPES = st.sampled_from(["float32", "float64", "int32", "uint8", "bool", "float16"])
WEIGHTS = st.lists(st.builds(lambda shape, dtype: np.zeros(shape, dtype),
                             st.lists(st.integers(0, 5), max_size=4).map(tuple), DTYPES), max_size=6).map(tuple)


def _payload(config, weights=(), keras="3") -> ModelPayload:
    text = config if isinstance(config, str) else json.dumps(config)
    return ModelPayload(text, tuple(weights), keras, "Functional")


def _only_rejected(payload: ModelPayload) -> None:
    try:
        rebuild(payload)
    except ModelRejected as exc:
        assert str(exc), "a refusal must say why"


@lru_cache(maxsize=None)
def _real_configs() -> tuple[tuple[str, str, tuple], ...]:
    """(keras version, config JSON, weights) of small real models in both formats."""
    import keras
    import tf_keras
    found = []
    for version, k in (("3", keras), ("2", tf_keras)):
        L = k.layers
        seq = k.Sequential([k.Input((4,)), L.Dense(3, activation="relu"), L.Dropout(0.1), L.Dense(2)])
        inp = k.Input((6, 6, 2))
        x = L.Conv2D(2, 3, padding="same")(inp)
        x = L.BatchNormalization()(x)
        y = L.Activation("relu")(x)
        x = L.Add()([x, y])
        out = L.Dense(2, activation="softmax")(L.Flatten()(L.MaxPooling2D()(x)))
        functional = k.Model(inp, out)
        for model in (seq, functional):
            found.append((version, model.to_json(), tuple(model.get_weights())))
    return tuple(found)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, prefix + (i,))


def _replace(node, path, value):
    if not path:
        return value
    node[path[0]] = _replace(node[path[0]], path[1:], value)
    return node


# ---------------------------------------------------------------- properties

@FUZZ
@given(config=JSON, weights=WEIGHTS, keras=st.sampled_from(["3", "2"]))
def test_random_json_is_only_ever_rejected(config, weights, keras):
    _only_rejected(_payload(config, weights, keras))


@FUZZ
@given(config=st.fixed_dictionaries({"class_name": st.sampled_from(sorted(MODEL_CLASSES)),
                                     "config": st.fixed_dictionaries({"layers": st.lists(JSON, max_size=4)})},
                                    optional={"module": NAMES | JSON}))
def test_random_model_shaped_configs_do_not_crash_the_vetting(config):
    # The vetting alone, with no safety net around it: its own code must be sound.
    try:
        vet_config(config)
    except ModelRejected:
        pass


@FUZZ
@given(data=st.data())
def test_mutated_real_configs_are_only_ever_rejected(data):
    version, text, weights = data.draw(st.sampled_from(_real_configs()), label="model")
    config = json.loads(text)
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        path = data.draw(st.sampled_from(list(_paths(config))), label="path")
        config = _replace(config, path, data.draw(JSON, label="value"))
    if data.draw(st.booleans(), label="other weights"):
        weights = data.draw(WEIGHTS, label="weights")
    _only_rejected(_payload(config, weights, version))


@FUZZ
@given(data=st.data())
def test_mutated_real_configs_pass_the_vetting_or_are_rejected(data):
    _, text, _ = data.draw(st.sampled_from(_real_configs()), label="model")
    config = json.loads(text)
    path = data.draw(st.sampled_from(list(_paths(config))), label="path")
    config = _replace(config, path, data.draw(JSON, label="value"))
    try:
        vet_config(config)
    except ModelRejected:
        pass


@settings(max_examples=15, deadline=None, derandomize=True)
@given(depth=st.integers(70, 3000), kind=st.sampled_from(["list", "dict"]))
def test_deep_nesting_is_rejected(depth, kind):
    version, text, weights = _real_configs()[0]
    nest = "[" * depth + "]" * depth if kind == "list" else '{"a":' * depth + "1" + "}" * depth
    config = text.replace('"trainable": true', f'"trainable": {nest}', 1)
    with pytest.raises(ModelRejected):
        rebuild(_payload(config, weights, version))


# ---------------------------------------------------------------- crashes found, kept

@pytest.mark.parametrize("version", ["3", "2"])
def test_a_list_where_a_name_is_expected_is_the_students_error(version):
    """Found by hand (issue 13, item 7), then by the fuzzer: unhashable values in membership tests."""
    _, text, weights = next(c for c in _real_configs() if c[0] == version)
    cases = {
        "activation": lambda d: d["config"].update(
            activation={"module": "keras.activations", "class_name": "function", "config": ["relu"]}),
        "registered name": lambda d: d["config"].update(
            kernel_initializer={"module": "keras.initializers", "class_name": "function", "config": "relu",
                                "registered_name": ["relu"]}),
        "layer class": lambda d: d.update(class_name=["Dense"]),
        "layer class as object": lambda d: d.update(class_name={"Dense": 1}),
    }
    for why, change in cases.items():
        config = json.loads(text)
        change(config["config"]["layers"][-1])
        with pytest.raises(ModelRejected, match="malformed|built-in activation|custom registered|not text"):
            rebuild(_payload(config, weights, version))


def test_weights_that_disagree_with_the_config_are_rejected():
    for version, text, weights in _real_configs():
        for wrong in (weights[:-1], weights + (np.zeros(3, np.float32),), (np.zeros((9, 9), np.float32),) + weights[1:]):
            with pytest.raises(ModelRejected, match="weights do not fit"):
                rebuild(_payload(text, wrong, version))
