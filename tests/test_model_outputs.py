"""Output checks: same architecture + copied weights gives the same numbers in both
modes, a real difference is reported with its size and place, and training-mode
calls never leak BatchNormalization statistics into later checks."""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from keras import layers as L  # noqa: E402

from grader.checks import CheckFailed  # noqa: E402
from grader.checks.models import copy_weights, expect_output_shape, expect_same_outputs  # noqa: E402

keras.utils.set_random_seed(0)
SHAPE = (64, 64, 3)
INPUTS = np.random.default_rng(0).normal(size=(4, *SHAPE)).astype("float32")


def happy(*, shape=SHAPE, kernel=7, dense_activation="sigmoid", momentum=0.99):
    return keras.Sequential([
        keras.Input(shape), L.ZeroPadding2D(3), L.Conv2D(32, kernel), L.BatchNormalization(axis=3, momentum=momentum),
        L.ReLU(), L.MaxPooling2D(), L.Flatten(), L.Dense(1, activation=dense_activation)])


def convolutional(*, bn=True):
    x = keras.Input(SHAPE)
    y = L.Conv2D(8, 4, padding="same")(x)
    y = L.ReLU()(L.BatchNormalization()(y) if bn else y)
    y = L.Conv2D(16, 2, padding="same")(L.MaxPooling2D(8, strides=8, padding="same")(y))
    y = L.ReLU()(L.BatchNormalization()(y) if bn else y)
    y = L.Flatten()(L.MaxPooling2D(4, strides=4, padding="same")(y))
    return keras.Model(x, L.Dense(6, activation="softmax")(y))


def with_trained_statistics(model):
    """Non-trivial BatchNormalization moving statistics, so inference mode really
    depends on the copied moving mean and variance."""
    rng = np.random.default_rng(1)
    weights = [w + rng.uniform(0.1, 0.5, size=w.shape).astype(w.dtype) for w in model.get_weights()]
    model.set_weights(weights)
    return model


def same_weights(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b)) and len(a) == len(b)


def verdict(reference, student, training):
    try:
        expect_same_outputs(reference, student, INPUTS, training=training)
        return "passed"
    except CheckFailed as err:
        return err.message


@pytest.mark.parametrize("build", [happy, convolutional], ids=["happyModel", "convolutional_model"])
@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
def test_same_architecture_with_other_weights_passes(build, training):
    reference, student = with_trained_statistics(build()), build()
    assert not np.allclose(reference(INPUTS, training=training), student(INPUTS, training=training))
    expect_same_outputs(reference, student, INPUTS, training=training)


def test_copy_weights_makes_outputs_identical():
    reference, student = with_trained_statistics(happy()), happy()
    copy_weights(reference, student)
    assert same_weights(reference.get_weights(), student.get_weights())
    np.testing.assert_array_equal(reference(INPUTS, training=False), student(INPUTS, training=False))


def test_linear_dense_fails_with_the_largest_difference():
    reference, student = with_trained_statistics(happy()), happy(dense_activation="linear")
    with pytest.raises(CheckFailed) as info:
        expect_same_outputs(reference, student, INPUTS, training=False)
    err = info.value
    assert err.diagnosis == "outputs_differ_inference"

    copy_weights(reference, student)
    diff = np.abs(np.asarray(reference(INPUTS, training=False)) - np.asarray(student(INPUTS, training=False)))
    sample = int(np.argmax(diff[:, 0]))
    assert f"by up to {diff.max():.3g}" in err.message
    assert f"at sample {sample}, unit 0" in err.message
    assert "tolerance 1e-06 + 1e-05 x |reference|" in err.message
    assert "inference mode (training=False)" in err.message


@pytest.mark.parametrize("student_kind", ["other momentum", "linear Dense"])
def test_training_then_inference_gives_the_verdicts_of_the_reverse_order(student_kind):
    """A student whose BatchNormalization momentum differs computes the same outputs
    with copied weights, but would drift after a leaked training call."""
    build = {"other momentum": lambda: happy(momentum=0.5), "linear Dense": lambda: happy(dense_activation="linear")}
    first = (with_trained_statistics(happy()), build[student_kind]())
    second = (happy(), build[student_kind]())
    before = [m.get_weights() for m in first]
    for model, weights in zip(second, before):
        model.set_weights(weights)

    forward = [verdict(*first, training=True), verdict(*first, training=False)]
    backward = [verdict(*second, training=False), verdict(*second, training=True)][::-1]

    assert forward == backward
    assert (forward == ["passed", "passed"]) == (student_kind == "other momentum")
    assert all(same_weights(b, m.get_weights()) for b, m in zip(before, first))


def test_a_raw_training_call_would_move_the_statistics():
    """Guards the test above: without the snapshot, training calls do change state."""
    model = with_trained_statistics(happy())
    before = model.get_weights()
    model(INPUTS, training=True)
    assert not same_weights(before, model.get_weights())


def test_copy_refuses_different_kernel_shapes_and_writes_nothing():
    reference, student = happy(), happy(kernel=5)
    before = student.get_weights()
    with pytest.raises(CheckFailed) as info:
        copy_weights(reference, student)
    assert info.value.diagnosis == "weight_shape_mismatch"
    assert info.value.message.startswith("Conv2D's kernel has shape 5x5x3x32; the reference's has shape 7x7x3x32")
    assert "conv2d" not in info.value.message  # Keras' own names mean nothing to the student
    assert same_weights(before, student.get_weights())


def test_copy_refuses_a_model_built_for_another_input_size():
    with pytest.raises(CheckFailed) as info:
        copy_weights(happy(), happy(shape=(32, 32, 3)))
    assert "Dense" in info.value.message and "8192x1" in info.value.message and "32768x1" in info.value.message


def test_copy_refuses_a_different_layer_structure():
    with pytest.raises(CheckFailed) as info:
        copy_weights(convolutional(), convolutional(bn=False))
    assert info.value.diagnosis == "architecture_mismatch"


def test_output_shape():
    expect_output_shape(happy(), INPUTS, (None, 1))
    expect_output_shape(convolutional(), INPUTS, (4, 6))
    with pytest.raises(CheckFailed) as info:
        expect_output_shape(convolutional(), INPUTS, (None, 1))
    assert info.value.diagnosis == "wrong_output_shape"
    assert "has shape (4, 6); expected (any, 1)" in info.value.message


def test_calling_with_wrong_input_shape_is_feedback_not_a_crash():
    with pytest.raises(CheckFailed) as info:
        expect_output_shape(happy(), INPUTS[:, :32, :32], (None, 1))
    assert info.value.diagnosis == "model_call_failed"


@pytest.mark.parametrize("training", [False, True, None])
def test_every_mode_leaves_both_models_as_found(training):
    """Inference mode skips the reference's snapshot (it writes no variable): guard that
    no mode, that one included, changes either model."""
    reference, student = with_trained_statistics(convolutional()), with_trained_statistics(convolutional())
    before = [m.get_weights() for m in (reference, student)]
    expect_same_outputs(reference, student, INPUTS, training=training)
    assert all(same_weights(b, m.get_weights()) for b, m in zip(before, (reference, student)))
