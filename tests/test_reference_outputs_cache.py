"""A reference model's outputs remembered across submissions
(grader/frameworks/keras/reference_outputs.py): the same arrays a fresh call gives, never
for a model that draws random numbers, never after its weights or settings changed, with the
model left exactly as a fresh call leaves it, and within its bounds. Real Keras models."""
from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from grader.checks import CheckFailed  # noqa: E402
from grader.frameworks.keras import reference_outputs as ro  # noqa: E402
from grader.frameworks.keras.forward import call_model  # noqa: E402
from grader.frameworks.keras.models import _call, expect_same_outputs  # noqa: E402


@pytest.fixture(autouse=True)
def _empty_cache():
    ro.clear()
    yield
    ro.clear()


def _model(seed: int = 1, dropout: bool = False, lam: bool = False):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(3, 3)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Activation("relu")(x)
    if dropout:
        x = keras.layers.Dropout(0.5)(x)
    if lam:
        x = keras.layers.Lambda(lambda t: t * 2.0)(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(4)(x))


def _inputs(seed: int = 0, n: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 6, 6, 2)).astype(np.float32)


def _state(model) -> list[np.ndarray]:
    return [np.array(v) for v in model.variables]


def _fresh(model, x, training) -> list[np.ndarray]:
    """What the model computes without the cache (call_model's eager call)."""
    return [np.asarray(call_model(model, x, training, trace=False))]


def _remembered(model, x, training, runs: list) -> list[np.ndarray]:
    def run(trace):
        runs.append(trace)
        return _call(model, x, training, "the reference model", trace=trace)
    return ro.reference_outputs(model, x, training, run)


@pytest.mark.parametrize("training", [False, True, None])
def test_remembered_outputs_are_a_fresh_calls_and_the_model_is_left_as_a_fresh_call_leaves_it(training):
    model, x = _model(), _inputs()
    # A trained-looking BatchNormalization, so training and inference differ.
    bn = model.layers[2]
    bn.moving_mean.assign(np.array([0.3, -0.2, 0.1], np.float32))
    bn.moving_variance.assign(np.array([2.0, 0.5, 1.5], np.float32))
    before = _state(model)
    expected = _fresh(model, x, training)
    runs: list = []
    answers = [_remembered(model, x, training, runs) for _ in range(4)]
    assert runs == [True, False], "seen once, then kept by an eager call, then never called again"
    assert ro.hits == 2
    for answer in answers:
        assert len(answer) == 1
        np.testing.assert_array_equal(answer[0], expected[0])
    # A training call's statistics are not written, with or without the cache.
    for now, then in zip(_state(model), before):
        np.testing.assert_array_equal(now, then)
    # Handed-out arrays are copies: changing one does not change the next answer.
    answers[-1][0][...] = 7.0
    np.testing.assert_array_equal(_remembered(model, x, training, runs)[0], expected[0])


def test_training_and_inference_are_kept_apart():
    model, x = _model(), _inputs()
    model.layers[2].moving_variance.assign(np.full(3, 4.0, np.float32))
    runs: list = []
    for _ in range(3):
        inference = _remembered(model, x, False, runs)[0]
        training = _remembered(model, x, True, runs)[0]
    assert not np.allclose(inference, training)
    np.testing.assert_array_equal(inference, _fresh(model, x, False)[0])
    np.testing.assert_array_equal(training, _fresh(model, x, True)[0])


def test_a_changed_reference_weight_gets_a_fresh_output():
    model, x = _model(), _inputs()
    runs: list = []
    for _ in range(3):
        old = _remembered(model, x, False, runs)[0]
    kernel = model.layers[1].kernel
    changed = np.array(kernel)
    changed[0, 0, 0, 0] += 0.5  # one weight
    kernel.assign(changed)
    new = _remembered(model, x, False, runs)[0]
    np.testing.assert_array_equal(new, _fresh(model, x, False)[0])
    assert not np.array_equal(new, old)
    # Moving statistics count too, and set_weights as well as assign.
    weights = model.get_weights()
    weights[3] = weights[3] + 1.0  # BatchNormalization's moving mean
    model.set_weights(weights)
    moved = _remembered(model, x, False, runs)[0]
    np.testing.assert_array_equal(moved, _fresh(model, x, False)[0])
    assert not np.array_equal(moved, new)


def test_a_changed_layer_setting_gets_a_fresh_output():
    model, x = _model(), _inputs()
    model.layers[2].moving_variance.assign(np.full(3, 4.0, np.float32))
    runs: list = []
    for _ in range(3):
        before = _remembered(model, x, True, runs)[0]
    model.layers[2].trainable = False  # a frozen BatchNormalization uses its moving statistics
    after = _remembered(model, x, True, runs)[0]
    np.testing.assert_array_equal(after, _fresh(model, x, True)[0])
    assert not np.array_equal(after, before)


def test_other_inputs_are_other_entries_and_unseen_inputs_cost_no_digest():
    model = _model()
    runs: list = []
    for seed in range(5):  # a hidden test's inputs, different every submission
        _remembered(model, _inputs(seed), False, runs)
    assert ro.digests == 0 and ro.hits == 0
    x, y = _inputs(10), _inputs(10).astype(np.float64)  # same values, another dtype
    for _ in range(3):
        a = _remembered(model, x, False, runs)[0]
        b = _remembered(model, y, False, runs)[0]
    assert ro.hits == 2
    np.testing.assert_array_equal(a, _fresh(model, x, False)[0])
    np.testing.assert_array_equal(b, _fresh(model, y, False)[0])


@pytest.mark.parametrize("kind", ["dropout", "lambda"])
def test_a_model_that_may_draw_or_run_any_code_is_never_remembered(kind):
    model = _model(dropout=kind == "dropout", lam=kind == "lambda")
    x = _inputs()
    assert not ro.rememberable(model)
    runs: list = []
    outs = [_remembered(model, x, True, runs)[0] for _ in range(4)]
    assert runs == [True] * 4 and ro.hits == 0 and ro.digests == 0
    if kind == "dropout":  # each call draws its own mask, as without the cache
        assert not np.array_equal(outs[0], outs[1])


def test_bounded_by_bytes_and_entries(monkeypatch):
    model = _model()
    one = 3 * 4 * 4  # a (3, 4) float32 output
    monkeypatch.setattr(ro, "MAX_BYTES", 3 * one)
    monkeypatch.setattr(ro, "MAX_ENTRIES", 5)
    runs: list = []
    for seed in range(8):
        for _ in range(2):
            _remembered(model, _inputs(seed), False, runs)
        assert ro.held_bytes() <= ro.MAX_BYTES
        assert len(ro._ENTRIES) <= ro.MAX_ENTRIES
    assert ro.held_bytes() == 3 * one
    # An output larger than the bound is never kept, and its weights are not digested again.
    monkeypatch.setattr(ro, "MAX_BYTES", one - 1)
    ro.clear()
    x = _inputs(20)
    for _ in range(4):
        _remembered(model, x, False, runs)
    assert ro.held_bytes() == 0 and ro.hits == 0 and ro.digests == 1


def test_expect_same_outputs_stops_calling_and_tracing_a_kept_reference():
    """The grading path: the reference's answer comes from the cache from the third check
    on, so no function is ever traced for the reference, while the student's model is
    still called (and traced) every time, and a wrong student model still fails."""
    reference, x = _model(), _inputs()
    student = keras.models.clone_model(reference)
    for _ in range(4):
        expect_same_outputs(reference, student, x, training=False)
        expect_same_outputs(reference, student, x, training=True)
    assert ro.hits == 4
    assert not getattr(reference, "_grader_calls").traced
    assert getattr(student, "_grader_calls").traced
    inputs = keras.Input((6, 6, 2))
    y = keras.layers.Conv2D(3, 3)(inputs)
    y = keras.layers.BatchNormalization()(y)
    y = keras.layers.Activation("sigmoid")(y)  # the wrong activation
    wrong = keras.Model(inputs, keras.layers.Dense(4)(keras.layers.Flatten()(y)))
    with pytest.raises(CheckFailed):
        expect_same_outputs(reference, wrong, x, training=False)
