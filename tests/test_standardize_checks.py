"""The standardize check: each usual mistake, written the way a student writes it, must get
its own diagnosis and hint; the right answer must pass; hidden inputs must keep expected
values out of the feedback."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

from grader.checks import CheckFailed
from grader.checks.arrays import expect_array, expect_close, max_difference, within_tolerance
from grader.checks.standardize import (ATOL, FLOAT64_FRACTION, RTOL, expect_standardized,
                                       make_hidden_standardize_inputs)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's reference/ (never installed)
from reference.conv_bn import standardize as reference_standardize  # noqa: E402 - the solutions, not in grader/

SEEDS = range(8)
AXES = (0, 1, 2)


# ---------------------------------------------------------------- student implementations

def correct(X_train, X_test):
    mean = X_train.mean(axis=AXES)
    std = X_train.std(axis=AXES)
    return ((X_train - mean) / std).astype(np.float32), ((X_test - mean) / std).astype(np.float32)


def correct_float64_then_cast(X_train, X_test):
    X_train, X_test = X_train.astype(np.float64), X_test.astype(np.float64)
    mean = np.mean(X_train, axis=(0, 1, 2), keepdims=True)
    std = np.sqrt(np.mean((X_train - mean) ** 2, axis=(0, 1, 2), keepdims=True))
    return ((X_train - mean) / std).astype("float32"), ((X_test - mean) / std).astype("float32")


def correct_list(X_train, X_test):
    return list(correct(X_train, X_test))


def own_test_stats(X_train, X_test):
    def own(X):
        return ((X - X.mean(axis=AXES)) / X.std(axis=AXES)).astype(np.float32)
    return own(X_train), own(X_test)


def combined_stats(X_train, X_test):
    both = np.concatenate([X_train, X_test])
    mean, std = both.mean(axis=AXES), both.std(axis=AXES)
    return ((X_train - mean) / std).astype(np.float32), ((X_test - mean) / std).astype(np.float32)


def leak_with_ddof1(X_train, X_test):
    def own(X):
        return ((X - X.mean(axis=AXES)) / X.std(axis=AXES, ddof=1)).astype(np.float32)
    return own(X_train), own(X_test)


def per_image_stats(X_train, X_test):
    def per_image(X):
        mean = X.mean(axis=(1, 2), keepdims=True)
        return ((X - mean) / X.std(axis=(1, 2), keepdims=True)).astype(np.float32)
    return per_image(X_train), per_image(X_test)


def scalar_stats(X_train, X_test):
    mean, std = X_train.mean(), X_train.std()
    return ((X_train - mean) / std).astype(np.float32), ((X_test - mean) / std).astype(np.float32)


def divide_255_only(X_train, X_test):
    return (X_train / 255.0).astype(np.float32), (X_test / 255.0).astype(np.float32)


def no_std_division(X_train, X_test):
    mean = X_train.mean(axis=AXES)
    return (X_train - mean).astype(np.float32), (X_test - mean).astype(np.float32)


def sample_std(X_train, X_test):
    mean, std = X_train.mean(axis=AXES), X_train.std(axis=AXES, ddof=1)
    return ((X_train - mean) / std).astype(np.float32), ((X_test - mean) / std).astype(np.float32)


def per_pixel_stats(X_train, X_test):
    mean, std = X_train.mean(axis=0), X_train.std(axis=0)
    return ((X_train - mean) / std).astype(np.float32), ((X_test - mean) / std).astype(np.float32)


def min_max(X_train, X_test):
    lo, hi = X_train.min(axis=AXES), X_train.max(axis=AXES)
    return ((X_train - lo) / (hi - lo)).astype(np.float32), ((X_test - lo) / (hi - lo)).astype(np.float32)


def float64_output(X_train, X_test):
    X_train, X_test = X_train.astype(np.float64), X_test.astype(np.float64)
    mean, std = X_train.mean(axis=AXES), X_train.std(axis=AXES)
    return (X_train - mean) / std, (X_test - mean) / std


def integer_output(X_train, X_test):
    return tuple(a.astype(np.int32) for a in correct(X_train, X_test))


def float16_output(X_train, X_test):
    return tuple(a.astype(np.float16) for a in correct(X_train, X_test))


def in_place(X_train, X_test):
    mean, std = X_train.mean(axis=AXES), X_train.std(axis=AXES)
    X_train -= mean
    X_train /= std
    X_test -= mean
    X_test /= std
    return X_train, X_test


def swapped(X_train, X_test):
    train, test = correct(X_train, X_test)
    return test, train


def slightly_off_test(X_train, X_test):
    train, test = correct(X_train, X_test)
    return train, test + np.float32(0.01)


def run_student(fn, X_train, X_test):
    """What the sandbox sends back: the return value and the inputs as they were after."""
    train, test = X_train.copy(), X_test.copy()
    return fn(train, test), train, test


def verdict(fn, seed=0, *, reveal=False) -> CheckFailed | None:
    X_train, X_test = make_hidden_standardize_inputs(seed)
    found, train_after, test_after = run_student(fn, X_train, X_test)
    try:
        expect_standardized(X_train, X_test, found, train_after, test_after,
                            expected=reference_standardize(X_train, X_test), reveal=reveal)
    except CheckFailed as failure:
        return failure
    return None


# ---------------------------------------------------------------- the right answer passes

@pytest.mark.parametrize("fn", [correct, correct_float64_then_cast, correct_list])
@pytest.mark.parametrize("seed", SEEDS)
def test_correct_implementation_passes(fn, seed):
    assert verdict(fn, seed) is None


def test_correct_passes_on_uint8_inputs():
    X_train, X_test = (a.astype(np.uint8) for a in make_hidden_standardize_inputs(3))
    found, train_after, test_after = run_student(correct, X_train, X_test)
    expect_standardized(X_train, X_test, found, train_after, test_after,
                        expected=reference_standardize(X_train, X_test), reveal=False)


def test_reference_standardizes_train_to_mean_0_std_1_in_float32():
    X_train, X_test = make_hidden_standardize_inputs(1)
    train, test = reference_standardize(X_train, X_test)
    assert train.dtype == test.dtype == np.float32
    assert np.allclose(train.mean(axis=AXES), 0, atol=1e-5)
    assert np.allclose(train.std(axis=AXES), 1, atol=1e-5)


# ---------------------------------------------------------------- every mistake, diagnosed

MISTAKES = [
    (own_test_stats, "test_stats_leak", "leaks information", "from X_train only"),
    (combined_stats, "test_stats_leak", "X_train and X_test together", "from X_train only"),
    (leak_with_ddof1, "test_stats_leak", "mean ≈ 0 and std ≈ 1", "from X_train only"),
    (per_image_stats, "per_image_stats", "its own statistics", "image axis"),
    (scalar_stats, "scalar_stats", "all channels together", "one mean and one std per channel"),
    (divide_255_only, "divide_255_only", "X / 255", "not enough"),
    (no_std_division, "no_std_division", "did not divide by the standard deviation", "divide by"),
    (sample_std, "sample_std", "ddof=1", "population standard deviation"),
    (per_pixel_stats, "wrong_axis_stats", "wrong axes", "every axis but the last"),
    (min_max, "min_max", "min-max", "from X_train only"),
    (swapped, "swapped_outputs", "wrong order", "return X_train_std, X_test_std"),
    (in_place, "modified_input", "changed X_train in place", "new arrays"),
    (integer_output, "wrong_dtype", "int32", "float32"),
    (float16_output, "wrong_dtype", "float16", "float32"),
    (slightly_off_test, "wrong_values", "X_train_std is right", "from X_train only"),
]


@pytest.mark.parametrize("fn, diagnosis, message_phrase, hint_phrase", MISTAKES,
                         ids=[m[0].__name__ for m in MISTAKES])
@pytest.mark.parametrize("seed", SEEDS)
def test_mistake_is_diagnosed(fn, diagnosis, message_phrase, hint_phrase, seed):
    failure = verdict(fn, seed)
    assert failure is not None
    assert failure.diagnosis == diagnosis, failure.message
    assert message_phrase in failure.message
    assert hint_phrase in failure.hint
    assert failure.fraction == 0.0


@pytest.mark.parametrize("seed", SEEDS)
def test_float64_output_with_right_values_keeps_partial_credit(seed):
    failure = verdict(float64_output, seed)
    assert failure.diagnosis == "wrong_dtype"
    assert failure.fraction == FLOAT64_FRACTION
    assert "values are right" in failure.message and ".astype(np.float32)" in failure.hint


def test_in_place_on_test_only_names_X_test():
    def modifies_test(X_train, X_test):
        train, test = correct(X_train, X_test.copy())
        X_test /= 255.0
        return train, test
    failure = verdict(modifies_test)
    assert failure.diagnosis == "modified_input"
    assert "changed X_test in place" in failure.message


def test_sample_std_message_quantifies_the_difference():
    failure = verdict(sample_std)
    assert "N = 384" in failure.message and "0.13%" in failure.message


# ---------------------------------------------------------------- return type and shapes

@pytest.mark.parametrize("returned, phrase", [
    (None, "returned None"),
    ("single", "a single array of shape (6, 8, 8, 3)"),
    ("three", "a list of 3 items"),
])
def test_wrong_return_value(returned, phrase):
    def fn(X_train, X_test):
        train, test = correct(X_train, X_test)
        return {"single": train, "three": [train, test, test]}.get(returned)
    failure = verdict(fn)
    assert failure.diagnosis == "wrong_return"
    assert phrase in failure.message
    assert "return X_train_std, X_test_std" in failure.hint


def test_element_that_is_not_an_array():
    failure = verdict(lambda a, b: (correct(a, b)[0], list(correct(a, b)[1])))
    assert failure.diagnosis == "not_an_array"
    assert "X_test_std is a list of 4 items, not a NumPy array" in failure.message


def test_wrong_shape_names_the_input_it_should_match():
    failure = verdict(lambda a, b: (correct(a, b)[0], correct(a, b)[1][..., 0]))
    assert failure.diagnosis == "wrong_shape"
    assert failure.message == ("X_test_std has shape (4, 8, 8) but should have shape "
                               "(4, 8, 8, 3), the same as X_test.")


# ---------------------------------------------------------------- hidden values stay hidden

def test_unknown_mismatch_reveals_expected_value_only_when_allowed():
    X_train, X_test = make_hidden_standardize_inputs(0)
    shown = verdict(slightly_off_test, reveal=True).message
    index, found_text, expected_text = re.search(
        r"at index (\([\d, ]+\)) \(found (\S+), expected (\S+)\)", shown).groups()
    expected = reference_standardize(X_train, X_test)[1][tuple(int(i) for i in re.findall(r"\d+", index))]
    assert abs(float(expected_text) - expected) < 1e-5
    hidden = verdict(slightly_off_test, reveal=False)
    assert f"at index {index}" in hidden.message
    assert "largest absolute difference is 0.01" in hidden.message
    for text in (expected_text, found_text):
        assert text not in hidden.message + hidden.hint


def test_leak_message_reveals_expected_test_statistics_only_when_allowed():
    X_train, X_test = make_hidden_standardize_inputs(0)
    expected_mean = reference_standardize(X_train, X_test)[1].mean(axis=AXES)
    first = f"{expected_mean[0]:.2f}"
    assert first in verdict(own_test_stats, reveal=True).message
    assert first not in verdict(own_test_stats, reveal=False).message


@pytest.mark.parametrize("fn", [m[0] for m in MISTAKES] + [float64_output])
def test_hidden_messages_quote_no_expected_value(fn):
    X_train, X_test = make_hidden_standardize_inputs(0)
    expected = np.concatenate([a.ravel() for a in reference_standardize(X_train, X_test)])
    failure = verdict(fn, reveal=False)
    text = failure.message + " " + failure.hint
    for number in re.findall(r"-?\d+\.\d{3,}", text):
        assert not np.any(np.isclose(expected, float(number), rtol=1e-5, atol=0)), number


# ---------------------------------------------------------------- hidden inputs

def test_hidden_inputs_are_deterministic_small_and_uint8_like():
    a = make_hidden_standardize_inputs(5)
    b = make_hidden_standardize_inputs(5)
    c = make_hidden_standardize_inputs(6)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])
    X_train, X_test = a
    assert X_train.shape == (6, 8, 8, 3) and X_test.shape == (4, 8, 8, 3)
    assert X_train.dtype == X_test.dtype == np.float32
    for X in a:
        assert np.array_equal(X, np.round(X)) and X.min() > 0 and X.max() < 255


@pytest.mark.parametrize("seed", range(20))
def test_hidden_test_set_is_brighter_with_other_contrast(seed):
    X_train, X_test = make_hidden_standardize_inputs(seed)
    assert np.all(X_test.mean(axis=AXES) > X_train.mean(axis=AXES) + 20)
    ratio = X_test.std(axis=AXES) / X_train.std(axis=AXES)
    assert np.all((ratio < 0.85) | (ratio > 1.15))


DISTINCT = [m for m in MISTAKES if m[1] not in {"modified_input", "wrong_dtype", "wrong_values",
                                                  "swapped_outputs"}]


@pytest.mark.parametrize("seed", range(20))
def test_every_mistake_is_distinguishable_on_hidden_inputs(seed):
    """Each wrong recipe differs beyond tolerance from the right answer and from every
    recipe with another diagnosis, so a match names one mistake only."""
    X_train, X_test = make_hidden_standardize_inputs(seed)
    outputs = [(label, fn(X_train.copy(), X_test.copy())) for fn, label, _, _ in DISTINCT]
    outputs.append(("correct", reference_standardize(X_train, X_test)))
    for i, (label_a, a) in enumerate(outputs):
        for label_b, b in outputs[i + 1:]:
            if label_a != label_b:
                same = all(within_tolerance(x, y, rtol=RTOL, atol=ATOL) for x, y in zip(a, b))
                assert not same, (label_a, label_b)
    for fn, label, _, _ in MISTAKES:
        assert verdict(fn, seed).diagnosis == label


# ---------------------------------------------------------------- the generic helpers

def test_max_difference_points_at_nan_first():
    value, index = max_difference(np.array([[1.0, np.nan], [3.0, 9.0]]), np.array([[1.0, 2.0], [3.0, 4.0]]))
    assert value == np.inf and index == (0, 1)


def test_expect_close_message_with_and_without_reveal():
    expected = np.array([0.0, 1.0, 2.0])
    found = np.array([0.0, 1.5, 2.0])
    with pytest.raises(CheckFailed) as shown:
        expect_close(found, expected, name="y", rtol=0, atol=1e-4, reveal=True)
    assert "largest absolute difference is 0.5 at index (1,) (found 1.5, expected 1)" in shown.value.message
    assert "tolerance is 0.0001" in shown.value.message
    with pytest.raises(CheckFailed) as hidden:
        expect_close(found, expected, name="y", rtol=0, atol=1e-4, reveal=False)
    assert "expected 1" not in hidden.value.message and "1.5" not in hidden.value.message
    expect_close(found, found + 1e-6, name="y", rtol=0, atol=1e-4, reveal=False)


@pytest.mark.parametrize("value, phrase", [
    (None, "The result is None, not a NumPy array"),
    ([1, 2], "The result is a list of 2 items"),
    ((np.zeros(2),), "The result is a tuple of 1 item,"),
    (np.float64(1.0), "The result is a single number (float64)"),
])
def test_expect_array_names_what_came_back(value, phrase):
    with pytest.raises(CheckFailed) as failure:
        expect_array(value, name="the result", shape=(2,))
    assert phrase in failure.value.message and failure.value.diagnosis == "not_an_array"


def test_expect_array_dtype():
    with pytest.raises(CheckFailed) as failure:
        expect_array(np.zeros(2), name="the result", shape=(2,), dtype=np.float32)
    assert failure.value.message == "The result has dtype float64 but should have dtype float32."
