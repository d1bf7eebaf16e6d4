"""The Keras 3 paths that keep a real-sized model cheap (issue 19 §7) compute exactly what
the plain paths compute.

Deferred initialization (grader/frameworks/keras/child/deferred_init.py): a model built while
weights are deferred has, whenever anything reads them, the very weights an eager build
draws, and the child defers only for calls whose model leaves without its weights. Real
Keras models in this process, and a real sandbox worker for the child's side.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import notebook
from grader.run.submission import Submission
from grader.assignment.spec import load_assignment

sys.path.insert(0, str(Path(__file__).resolve().parent / "adversarial"))

import attacks  # noqa: E402

keras = pytest.importorskip("keras")

from grader.frameworks.keras.child import deferred_init  # noqa: E402


def _model(seed: int = 3, custom: bool = True):
    """Seeded, unseeded, constant and (`custom`) a function's initializers, BatchNormalization's
    statistics."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, kernel_initializer=keras.initializers.GlorotUniform(seed=0))(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Conv2D(5, 1, kernel_initializer="he_normal", bias_initializer=keras.initializers.Constant(0.5))(x)
    x = keras.layers.Flatten()(x)
    own = (lambda shape, dtype=None: np.full(shape, 0.25, "float32")) if custom else "zeros"
    outputs = keras.layers.Dense(3, kernel_initializer=own)(x)
    return keras.Model(inputs, outputs)


def _eager_weights(seed: int = 3) -> list[np.ndarray]:
    return [np.array(w) for w in _model(seed).get_weights()]


def _same(found, expected) -> None:
    assert len(found) == len(expected)
    for f, e in zip(found, expected):
        np.testing.assert_array_equal(np.asarray(f), e)


def test_a_deferred_build_draws_nothing_until_read_then_gives_the_eager_weights():
    expected = _eager_weights()
    before = deferred_init.counts()
    with deferred_init.deferring():
        model = _model()
    deferred = [v for v in model.weights if deferred_init.pending(v)]
    # The seeded, unseeded and constant initializers wait; the custom function ran at once.
    assert len(deferred) == len(model.weights) - 1
    assert deferred_init.counts()["deferred"] - before["deferred"] == len(deferred)
    assert deferred_init.counts()["drawn"] == before["drawn"]
    _same(model.get_weights(), expected)
    assert not any(deferred_init.pending(v) for v in model.weights)


def test_reading_one_variable_or_calling_the_model_inside_the_build_gives_the_eager_values():
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype(np.float32)
    eager = _model()
    expected_out = np.asarray(eager(x, training=False))
    expected_kernel = np.array(eager.layers[1].kernel)
    with deferred_init.deferring():
        model = _model()
        kernel = model.layers[1].kernel.numpy()  # the student's code reads a weight while building
        out = np.asarray(model(x, training=False))  # and runs a forward pass
    np.testing.assert_array_equal(kernel, expected_kernel)
    np.testing.assert_array_equal(out, expected_out)
    _same(model.get_weights(), [np.array(w) for w in eager.get_weights()])


def test_a_deferred_model_traced_in_a_function_and_trained_matches_the_eager_one():
    import tensorflow as tf
    x = np.ones((2, 8, 8, 3), np.float32)
    with deferred_init.deferring():
        model = _model()
    eager = _model()
    run = tf.function(lambda t: model(t, training=True))  # first read inside a graph
    np.testing.assert_allclose(np.asarray(run(x)), np.asarray(eager(x, training=True)), rtol=1e-6)
    model.layers[2].moving_mean.assign(np.full((4,), 2.0, np.float32))  # writes go to a real variable
    np.testing.assert_array_equal(np.asarray(model.layers[2].moving_mean), np.full((4,), 2.0))


def test_outside_the_context_nothing_is_deferred():
    with deferred_init.deferring(False):
        model = _model()
    assert not any(deferred_init.pending(v) for v in model.weights)
    _same(model.get_weights(), _eager_weights())


# ---------------------------------------------------------------- in the sandbox child

CELL = """import keras
import numpy as np

def build(read):
    keras.utils.set_random_seed(7)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(2)])
    waiting = "_grader_pending_initializer" in vars(model.layers[1].kernel)
    seen = float(np.sum(model.layers[0].kernel.numpy())) if read else None
    return model, seen, waiting
"""


def _shape_of(model) -> list:
    return [(type(layer).__name__, [tuple(w.shape) for w in layer.weights]) for layer in model.layers]


def _weightless_call(submission: Submission, read: bool):
    """`build(read)` asked the way `submission.model(..., weights=False)` asks, for a value
    that is a tuple (the model, and what the student's code read)."""
    return submission._cached(("call", "build", False), "build", (read,), {}).value


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return load_assignment(attacks.write_assignment(tmp_path_factory.mktemp("tiny"), timeout=30))


def test_the_child_defers_only_weightless_calls_and_a_read_sees_the_real_weights(tmp_path, tiny, worker):
    submission = Submission(notebook(tmp_path / "s.ipynb", CELL), tiny, worker).open()
    try:
        model, seen, waiting = submission.call("build", True)  # weights cross: drawn as always
        assert not waiting
        assert seen == pytest.approx(float(np.sum(model.get_weights()[0])), abs=1e-6)
        weightless, seen_deferred, waiting = _weightless_call(submission, True)
        assert waiting  # built with deferral on ...
        assert seen_deferred == seen  # ... and read by the student's own code: the same numbers
        assert _shape_of(weightless) == _shape_of(model)  # layer names differ: a second build in one child
        unread, nothing, waiting = _weightless_call(submission, False)
        assert waiting and nothing is None and _shape_of(unread) == _shape_of(model)
    finally:
        submission.close()


# ---------------------------------------------------------------- the grading process

def test_a_weightless_rebuild_draws_nothing_and_still_grades_with_the_reference_weights():
    """Rebuilt without weights, a model gets zeros where its initializers would draw and
    the constants of the others (BatchNormalization's ones); the output check reads the
    reference's weights in their place and passes exactly as for the model with weights."""
    from grader.checks.models import expect_same_outputs
    from grader.frameworks.keras.rebuild import rebuild
    from grader.frameworks.keras.child.payload import ModelPayload
    reference = _model(5, custom=False)
    student = _model(6, custom=False)
    payload = ModelPayload(config=student.to_json(), weights=(), keras="3", class_name="Functional",
                           disconnected=(), weightless=True, locations=())
    rebuilt = rebuild(payload)
    conv = rebuilt.layers[1]
    assert not np.any(np.asarray(conv.kernel))
    bn = rebuilt.layers[2]
    np.testing.assert_array_equal(np.asarray(bn.gamma), np.ones(4))
    np.testing.assert_array_equal(np.asarray(bn.moving_variance), np.ones(4))
    np.testing.assert_array_equal(np.asarray(rebuilt.layers[3].bias), np.full(5, 0.5))
    x = np.random.default_rng(1).normal(size=(2, 8, 8, 3)).astype(np.float32)
    for training in (False, True):
        expect_same_outputs(reference, rebuilt, x, training=training)
        expect_same_outputs(reference, student, x, training=training)
    assert not np.any(np.asarray(conv.kernel))  # left as found
