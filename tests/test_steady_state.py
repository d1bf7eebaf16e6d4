"""What makes a conv_bn submission's steady state cheap must not change a single number.

- a traced model call (grader.frameworks.keras.forward) computes bit for bit what an eager call
  computes, in every mode, even for a model whose graph grappler would fuse;
- the output check that reads the reference's weights in place of the student's computes
  what copying them in computes, and writes nothing into either model;
- a sandbox child that keeps TensorFlow's kernel cache between calls still gives each call
  what a fresh child gives: the same Keras weights, the same stateful random draws.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

keras = pytest.importorskip("keras")

from grader.frameworks.keras import models  # noqa: E402
from grader.frameworks.keras.forward import MAX_TRACED, call_model, stateless  # noqa: E402

L = keras.layers


def _fusable():
    """Conv2D with its activation, then BatchNormalization and a gelu Dense: with grappler
    on, a traced call of this model differs from the eager one in the last bits."""
    x = keras.Input((32, 32, 3))
    y = L.Conv2D(16, 3, activation="relu")(x)
    y = L.ReLU()(L.BatchNormalization()(L.Conv2D(16, 3)(y)))
    return keras.Model(x, L.Dense(7, activation="gelu")(L.Flatten()(y)))


def _happy(epsilon=1e-3):
    return keras.Sequential([keras.Input((12, 12, 3)), L.ZeroPadding2D(1), L.Conv2D(4, 3),
                             L.BatchNormalization(axis=3, epsilon=epsilon), L.ReLU(), L.MaxPooling2D(),
                             L.Flatten(), L.Dense(1, activation="sigmoid")])


def _trained(model, seed=1):
    rng = np.random.default_rng(seed)
    model.set_weights([w + rng.uniform(0.1, 0.5, size=w.shape).astype(w.dtype) for w in model.get_weights()])
    return model


def _same(a, b) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("training", [False, True, None])
def test_a_traced_call_computes_the_eager_numbers(training):
    keras.utils.set_random_seed(1)
    model = _fusable()
    x = (np.random.default_rng(0).normal(size=(4, 32, 32, 3)) * 3).astype(np.float32)
    before = model.get_weights()
    eager = np.asarray(model(x, training=training))
    model.set_weights(before)  # a training call moved the statistics: start where the checks start
    first = np.asarray(call_model(model, x, training))  # eager, remembered
    traced = np.asarray(call_model(model, x, training))  # the same shape again: traced
    assert model._grader_calls.traced, "the second call of the same shape should be traced"
    assert np.array_equal(eager, first) and np.array_equal(eager, traced)
    assert _same(before, model.get_weights())  # nothing written, training mode included


def test_traced_functions_per_model_are_bounded():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), L.Dense(2)])
    for n in range(1, 2 * MAX_TRACED + 2):
        x = np.ones((n, 3), np.float32)
        call_model(model, x, False)
        np.testing.assert_array_equal(np.asarray(call_model(model, x, False)), np.asarray(model(x, training=False)))
    assert len(model._grader_calls.traced) == MAX_TRACED


def test_a_dropout_model_reads_substituted_weights_and_moves_its_seed_as_a_plain_call_does():
    """A Dropout's seed generator is the only state outside the weights a Keras 3 model
    holds: such a model runs the substituting way (a U-Net's checks no longer copy weights
    in and out), and each call, eager then traced, draws the mask a plain call on a model
    holding those weights draws, leaving the seed where the plain call leaves it."""
    def build():
        keras.utils.set_random_seed(0)
        return keras.Sequential([keras.Input((3,)), L.Dense(4), L.Dropout(0.5), L.Dense(2)])
    model, plain, other = build(), build(), build()
    assert stateless(model)
    other.set_weights([w * 2.0 for w in model.get_weights()])
    plain.set_weights(other.get_weights())
    seed, plain_seed = ([v for v in m.variables if v.name == "seed_generator_state"][0] for m in (model, plain))
    plain_seed.assign(seed.numpy())
    x = np.random.default_rng(1).normal(size=(8, 3)).astype(np.float32)
    substitute = list(zip(model.weights, other.weights))
    for _ in range(3):  # eager, then traced
        read = np.asarray(call_model(model, x, True, substitute))
        np.testing.assert_array_equal(read, np.asarray(plain(x, training=True)))
        np.testing.assert_array_equal(seed.numpy(), plain_seed.numpy())
    assert model._grader_calls.traced
    assert _same(model.get_weights(), build().get_weights())  # its own weights untouched


@pytest.mark.parametrize("training", [False, True, None])
@pytest.mark.parametrize("epsilon", [1e-3, 0.1], ids=["same", "other_epsilon"])
def test_reading_the_reference_weights_computes_what_copying_them_computes(training, epsilon):
    keras.utils.set_random_seed(0)
    reference, student = _trained(_happy()), _happy(epsilon)
    x = np.random.default_rng(2).normal(size=(4, 12, 12, 3)).astype(np.float32)
    ref_before, stu_before = reference.get_weights(), student.get_weights()
    copied = models._outputs_with_copy(reference, student, x, training)
    for _ in range(3):  # eager first, then traced
        read = models._outputs_without_copy(reference, student, x, training)
        assert _same(copied[0], read[0]) and _same(copied[1], read[1])
    assert _same(ref_before, reference.get_weights()) and _same(stu_before, student.get_weights())


# ---------------------------------------------------------------- the sandbox child

SOURCE = '''
import numpy as np
import tensorflow as tf
import keras

def weights(units):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(units), keras.layers.Dense(2)])
    return model.get_weights()

def stateful():
    return tf.random.uniform((3,)).numpy(), tf.random.normal((2,)).numpy()
'''


@pytest.fixture(scope="module")
def worker():
    from grader.frameworks.sandbox_side import sandbox_side
    from grader.sandbox.client import Worker
    worker = Worker(framework=sandbox_side(keras="3")).start()
    yield worker
    worker.stop()


def test_a_child_that_keeps_its_kernels_computes_what_a_fresh_child_computes(worker):
    chunks = [{"source": SOURCE, "line": 1, "label": "cell 1", "kind": "code"}]
    sessions = [worker.session(chunks, seed=3) for _ in range(3)]
    try:
        used, fresh_weights, fresh_random = sessions
        first = used.call("weights", 3).value
        draws = used.call("stateful").value
        later = used.call("weights", 5).value  # after a stateful draw: the cache was emptied
        again = used.call("stateful").value
        last = used.call("weights", 3).value  # after the draw of `again`
        assert _same(first, last)
        assert _same(later, fresh_weights.call("weights", 5).value)
        assert _same(draws, again) and _same(again, fresh_random.call("stateful").value)
    finally:
        for session in sessions:
            session.close()
