"""A model rebuilt without its weights holds no memory for the weights its initializers
would draw (a ResNet50's 94 MB, twice per submission), reads them as zeros, grades exactly
as with memory, and gets memory the moment a check writes its weights. Real Keras models."""
from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from grader.checks import CheckFailed  # noqa: E402
from grader.frameworks.keras.child.payload import ModelPayload  # noqa: E402
from grader.frameworks.keras.model_pool import ModelPool, pool_key  # noqa: E402
from grader.frameworks.keras.models import _outputs_with_copy, copy_weights, expect_same_outputs  # noqa: E402
from grader.frameworks.keras.rebuild import rebuild  # noqa: E402


def _model(seed: int, activation: str | None = None):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.Flatten()(x)
    dense = keras.layers.Dense(5, activation=activation, bias_initializer=keras.initializers.Constant(0.5))
    return keras.Model(inputs, dense(x))


def _weightless(model) -> ModelPayload:
    return ModelPayload(config=model.to_json(), weights=(), keras="3", class_name="Functional",
                        disconnected=(), weightless=True, locations=())


def _without_memory(model) -> list[str]:
    return [v.path for v in model.weights if getattr(v, "_value", 0) is None]


def test_drawn_weights_hold_no_memory_read_as_zeros_and_grade_as_with_memory():
    reference = _model(5)
    rebuilt = rebuild(_weightless(_model(6)))
    conv, bn, dense = rebuilt.layers[1], rebuilt.layers[2], rebuilt.layers[5]
    # The two kernels (drawn at random) have no memory; constants (BatchNormalization's,
    # the Constant bias) keep theirs.
    assert sorted(_without_memory(rebuilt)) == sorted([conv.kernel.path, dense.kernel.path])
    assert not np.any(np.asarray(conv.kernel)) and np.asarray(conv.kernel).shape == (3, 3, 3, 4)
    np.testing.assert_array_equal(np.asarray(dense.bias), np.full(5, 0.5))
    np.testing.assert_array_equal(np.asarray(bn.moving_variance), np.ones(4))
    x = np.random.default_rng(1).normal(size=(2, 8, 8, 3)).astype(np.float32)
    for _ in range(3):  # eager, then traced
        for training in (False, True):
            expect_same_outputs(reference, rebuilt, x, training=training)
    assert len(_without_memory(rebuilt)) == 2  # the output check never wrote them
    wrong = rebuild(_weightless(_model(6, activation="tanh")))  # a mistake still shows
    with pytest.raises(CheckFailed):
        expect_same_outputs(reference, wrong, x, training=False)


def test_the_copying_paths_give_memory_first_and_write_the_reference_weights():
    reference = _model(5)
    rebuilt = rebuild(_weightless(_model(6)))
    x = np.random.default_rng(2).normal(size=(2, 8, 8, 3)).astype(np.float32)
    expected, found = _outputs_with_copy(reference, rebuilt, x, training=True)
    np.testing.assert_allclose(found[0], expected[0], rtol=1e-5, atol=1e-6)
    assert not _without_memory(rebuilt)
    assert not np.any(np.asarray(rebuilt.layers[1].kernel))  # put back as found: zeros
    other = rebuild(_weightless(_model(7)))
    copy_weights(reference, other)
    np.testing.assert_array_equal(np.asarray(other.layers[1].kernel), np.asarray(reference.layers[1].kernel))


def test_a_pooled_weightless_model_is_lent_again_without_memory():
    pool, payload = ModelPool(), _weightless(_model(6))
    model = rebuild(payload)
    pool.give_back(pool_key(payload), model)
    again = pool.take(pool_key(payload), payload)
    assert again is model and len(_without_memory(again)) == 2
    expect_same_outputs(_model(5), again, np.ones((1, 8, 8, 3), np.float32), training=False)
