"""Checks for `standardize(X_train, X_test) -> (X_train_std, X_test_std)`.

A wrong standardization rarely fails in a new way: students reuse a handful of wrong
recipes (test-set statistics, per-image statistics, one number for all channels, ...).
Each recipe is computed here on the same inputs; when the student's output matches one,
the feedback names that mistake and says why it matters, instead of "values differ".

Verdict order: return type, shapes, inputs modified in place, dtype able to hold the
values, values (with the diagnosis), and last float32. A float64 result with the right
values keeps FLOAT64_FRACTION of the points: the numbers are right, only the type the
spec asks for (the one Keras computes in, half the memory) is not.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from grader.checks import CheckFailed
from grader.checks.arrays import (describe_value, difference_message, expect_array,
                                  expect_floating, expect_numbers, expect_unchanged, within_tolerance)

__all__ = [
    "ATOL",
    "FLOAT64_FRACTION",
    "RTOL",
    "expect_float32",
    "expect_inputs_unchanged",
    "expect_standardize_returns",
    "expect_standardized",
    "expect_standardized_values",
    "make_hidden_standardize_inputs",
    "standardize_mistakes",
]

# Float32 round-off of a correct answer is about 1e-6 on these values; the closest wrong
# recipe (ddof=1 on the hidden inputs, 384 values per channel) is off by about 0.13% of
# each value, i.e. >= 2e-3 at the largest |z|. 1e-4 sits well between the two.
RTOL = 1e-4
ATOL = 1e-4
FLOAT64_FRACTION = 0.5

Pair = tuple[np.ndarray, np.ndarray]


# ---------------------------------------------------------------- statistics and recipes

def _f64(a: Any) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _channel_axes(X: np.ndarray) -> tuple[int, ...]:
    """Every axis but the last: channels are last, and each channel gets its own numbers."""
    return tuple(range(np.ndim(X) - 1))


def _pooled(X: np.ndarray, axes: tuple[int, ...] | None) -> set[int]:
    """The axes a reduction really pools over (an axis of length 1 pools nothing): two
    choices with the same set compute the same statistics."""
    shape = np.shape(X)
    chosen = range(len(shape)) if axes is None else axes
    return {a for a in chosen if shape[a] != 1}


def _moments(X: np.ndarray, axis: Any, ddof: int = 0) -> Pair:
    X = _f64(X)
    return X.mean(axis=axis, keepdims=True), X.std(axis=axis, ddof=ddof, keepdims=True)


def _zscore(X: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return (_f64(X) - mean) / std


def _train_stats(X_train: np.ndarray, X_test: np.ndarray, *, axis: Any, ddof: int) -> Pair:
    """X_train's statistics applied to both, with the axes and ddof a mistake chose: both
    required, and the exercise's own choice (every axis but the last, ddof=0) refused, so
    that nothing in the installed package is a working `standardize`. The right answer
    always comes from the assignment's reference."""
    axes = None if axis is None else tuple(sorted(int(a) % np.ndim(X_train) for a in np.atleast_1d(axis)))
    if ddof not in (0, 1):
        raise ValueError(f"not a recipe: ddof={ddof!r}")
    if ddof == 0 and _pooled(X_train, axes) == _pooled(X_train, _channel_axes(X_train)):
        raise ValueError("that is the right recipe, not a mistake; the reference computes it")
    mean, std = _moments(X_train, axes, ddof)
    return _zscore(X_train, mean, std), _zscore(X_test, mean, std)


def _own_stats(X_train: np.ndarray, X_test: np.ndarray, axis: Any, ddof: int = 0) -> Pair:
    train = _zscore(X_train, *_moments(X_train, axis, ddof))
    return train, _zscore(X_test, *_moments(X_test, axis, ddof))


def _combined_stats(X_train: np.ndarray, X_test: np.ndarray) -> Pair:
    both = np.concatenate([_f64(X_train), _f64(X_test)], axis=0)
    mean, std = _moments(both, _channel_axes(both))
    return _zscore(X_train, mean, std), _zscore(X_test, mean, std)


def _centered_only(X_train: np.ndarray, X_test: np.ndarray, scale: float = 1.0) -> Pair:
    mean, _ = _moments(X_train, _channel_axes(X_train))
    return (_f64(X_train) - mean) / scale, (_f64(X_test) - mean) / scale


def _min_max(X: np.ndarray, source: np.ndarray, axis: Any) -> np.ndarray:
    lo = _f64(source).min(axis=axis, keepdims=True)
    hi = _f64(source).max(axis=axis, keepdims=True)
    return (_f64(X) - lo) / (hi - lo)


def _min_max_train(X_train: np.ndarray, X_test: np.ndarray, axis: Any) -> Pair:
    return _min_max(X_train, X_train, axis), _min_max(X_test, X_train, axis)


def _min_max_own(X_train: np.ndarray, X_test: np.ndarray, axis: Any) -> Pair:
    return _min_max(X_train, X_train, axis), _min_max(X_test, X_test, axis)


# ---------------------------------------------------------------- the catalogue of mistakes

@dataclass(frozen=True)
class Mistake:
    """One wrong recipe: how to compute it, and what to tell a student whose output it
    explains. `message` and `hint` are str.format templates over `_facts` (values the
    student produced and sizes of the inputs, never expected values unless revealed)."""

    diagnosis: str
    compute: Callable[..., Pair]  # (X_train, X_test, the reference's pair) -> pair
    message: str
    hint: str


_USE_TRAIN_STATS = ("Compute one mean and one standard deviation per channel, from X_train only "
                    "(over every axis but the last: axis={axes}), and apply those same numbers to "
                    "both X_train and X_test.")

_LEAK_WHY = (" Computing statistics on the test set leaks information about it, and makes test "
             "images look different from what the model saw in training: a test set that is "
             "brighter than the training set should stay brighter after standardization, as it "
             "would for new images in deployment.")

_LEAK = ("Your X_test_std has mean ≈ 0 and std ≈ 1 in every channel (mean {test_mean}, std "
         "{test_std}), but it should not: X_test must be scaled with the mean and standard "
         "deviation of X_train." + _LEAK_WHY + "{expected_test_stats}")

_COMBINED = ("Your mean and std were computed from X_train and X_test together. X_test must be "
             "scaled with statistics of X_train alone." + _LEAK_WHY)

_PER_IMAGE = ("Each image was standardized with its own statistics: every image of your "
              "X_train_std has mean ≈ 0. Standardization uses one mean and std per channel over "
              "the whole training set, so that differences between images (one photo darker "
              "than another) survive as information the model can use, and every image is "
              "transformed the same way.")

_SCALAR = ("You used one mean and one std for all channels together. Channels have different "
           "ranges (here your X_train_std has per-channel mean {train_mean} and std {train_std} "
           "instead of 0 and 1), so each channel needs its own statistics to be centred and "
           "scaled.")

_DIVIDE_255 = ("Your output is X / 255: that rescales pixels to [0, 1] but does not standardize "
               "them. Your X_train_std has per-channel mean {train_mean} and std {train_std}; "
               "standardized training data has mean 0 and std 1 in every channel.")

_NO_STD = ("You subtracted the mean but did not divide by the standard deviation: your "
           "X_train_std has per-channel mean ≈ 0 but std {train_std} instead of 1.")

_SAMPLE_STD = ("You divided by the sample standard deviation (ddof=1, dividing by N-1). The "
               "exercise asks for the population standard deviation (ddof=0, dividing by N), "
               "which is np.std's default and what Keras' Normalization layer uses. With N = {n} "
               "values per channel the two differ by {ddof_pct}, small but above the tolerance.")

_WRONG_AXIS = ("Your statistics were computed over the wrong axes. With channels last, the "
               "statistics reduce over every axis but the last, axis={axes}: over all images and "
               "all pixel positions, giving one mean and one std per channel. Reducing over fewer "
               "axes (axis=0 gives a mean per pixel position) standardizes each position "
               "separately and erases what distinguishes one position from another across the "
               "training set; reducing over the channel axis mixes the colours of each pixel.")

_MIN_MAX = ("You applied min-max scaling, (X - min) / (max - min), which maps values into "
            "[0, 1]. Standardization subtracts the mean and divides by the standard deviation, "
            "giving mean 0 and std 1 per channel; min-max depends only on the two most extreme "
            "pixels, so a single outlier changes every value.")

_SWAPPED = ("Your two results are in the wrong order: the first one holds the standardized "
            "X_test and the second the standardized X_train.")


def standardize_mistakes(X_train: np.ndarray) -> tuple[Mistake, ...]:
    """Most specific first: when two recipes coincide on some input, the first named is the
    one more likely meant. Axis choices depend on the number of dimensions, hence the
    argument."""
    axes = _channel_axes(X_train)
    nd = np.ndim(X_train)
    wrong_axes = [a for a in [(0,), (0, 1), (0, 2), (0, 2, 3)] if max(a) < nd and a != axes]
    image_axes = [a for a in [tuple(range(1, nd - 1)), tuple(range(1, nd))] if a]
    t = Mistake
    return (
        t("swapped_outputs", lambda a, b, right: tuple(right)[::-1], _SWAPPED,
          "Return them in the order the function promises: `return X_train_std, X_test_std`."),
        t("test_stats_leak", lambda a, b, _: _own_stats(a, b, axes), _LEAK, _USE_TRAIN_STATS),
        t("test_stats_leak", lambda a, b, _: _combined_stats(a, b), _COMBINED, _USE_TRAIN_STATS),
        t("sample_std", lambda a, b, _: _train_stats(a, b, axis=axes, ddof=1), _SAMPLE_STD,
          "Use the population standard deviation: np.std(..., axis={axes}) without ddof=1 "
          "(pandas' .std() and torch.std default to ddof=1)."),
        t("no_std_division", lambda a, b, _: _centered_only(a, b), _NO_STD,
          "After subtracting X_train's per-channel mean, divide by X_train's per-channel std."),
        t("no_std_division", lambda a, b, _: _centered_only(a, b, 255.0), _NO_STD,
          "After subtracting X_train's per-channel mean, divide by X_train's per-channel std "
          "(not by 255)."),
        t("scalar_stats", lambda a, b, _: _train_stats(a, b, axis=None, ddof=0), _SCALAR,
          "Reduce over every axis but the last (axis={axes}), giving one mean and one std per "
          "channel, arrays of shape ({channels},)."),
        *(t("per_image_stats", lambda a, b, _, ax=ax: _own_stats(a, b, ax), _PER_IMAGE,
            "Include the image axis in the reduction: axis={axes}, over X_train, not axis="
            f"{_axis_text(ax)}.") for ax in image_axes),
        *(t("wrong_axis_stats", lambda a, b, _, ax=ax: _train_stats(a, b, axis=ax, ddof=0), _WRONG_AXIS,
            f"Reduce over axis={{axes}} (every axis but the last), not axis={_axis_text(ax)}.")
          for ax in wrong_axes),
        t("wrong_axis_stats", lambda a, b, _: _own_stats(a, b, -1), _WRONG_AXIS,
          "Reduce over axis={axes} (every axis but the last), not over the channel axis."),
        t("min_max", lambda a, b, _: _min_max_train(a, b, axes), _MIN_MAX, _USE_TRAIN_STATS),
        t("min_max", lambda a, b, _: _min_max_train(a, b, None), _MIN_MAX, _USE_TRAIN_STATS),
        t("min_max", lambda a, b, _: _min_max_own(a, b, axes), _MIN_MAX, _USE_TRAIN_STATS),
        t("min_max", lambda a, b, _: _min_max_own(a, b, None), _MIN_MAX, _USE_TRAIN_STATS),
        t("divide_255_only", lambda a, b, _: (_f64(a) / 255.0, _f64(b) / 255.0), _DIVIDE_255,
          "Dividing by 255 is harmless but not enough: subtract X_train's per-channel mean and "
          "divide by X_train's per-channel std (axis={axes}), for both arrays."),
    )


def _compute(mistake: Mistake, X_train: np.ndarray, X_test: np.ndarray, expected: Pair) -> Pair | None:
    """A recipe that cannot even be applied to these shapes cannot be what was done."""
    try:
        with np.errstate(all="ignore"):
            return mistake.compute(X_train, X_test, expected)
    except (ValueError, IndexError):
        return None


def _pair_close(found: Pair, candidate: Pair | None) -> bool:
    return candidate is not None and all(
        within_tolerance(f, c, rtol=RTOL, atol=ATOL) for f, c in zip(found, candidate))


def _matching_mistake(X_train: np.ndarray, X_test: np.ndarray, found: Pair, expected: Pair) -> Mistake | None:
    for mistake in standardize_mistakes(X_train):
        if _pair_close(found, _compute(mistake, X_train, X_test, expected)):
            return mistake
    return None


# ---------------------------------------------------------------- wording

def _channel_text(values: np.ndarray) -> str:
    """Two decimals, and no "-0.00": a sign on a zero only makes a student wonder."""
    return "(" + ", ".join(f"{round(float(v), 2) + 0.0:.2f}" for v in np.ravel(values)) + ")"


def _axis_text(axes: tuple[int, ...]) -> str:
    """As a student writes it: axis=0 rather than axis=(0,)."""
    return str(axes[0]) if len(axes) == 1 else str(axes)


def _channel_stats_text(X: np.ndarray) -> tuple[str, str]:
    X = _f64(X)
    axes = _channel_axes(X)
    with np.errstate(all="ignore"):
        return _channel_text(X.mean(axis=axes)), _channel_text(X.std(axis=axes))


def _facts(X_train: np.ndarray, X_test: np.ndarray, found: Pair, expected: Pair,
           reveal: bool) -> dict[str, str]:
    """Everything a message may quote. Expected values appear only when `reveal`."""
    n = int(np.size(X_train) // max(np.shape(X_train)[-1], 1))
    train_mean, train_std = _channel_stats_text(found[0])
    test_mean, test_std = _channel_stats_text(found[1])
    expected_text = ""
    if reveal:
        mean, std = _channel_stats_text(expected[1])
        expected_text = (f" Scaled with X_train's statistics, X_test_std has per-channel mean {mean} "
                         f"and std {std}.")
    return {
        "n": str(n),
        "ddof_pct": f"{(np.sqrt(n / (n - 1)) - 1) * 100:.2g}%" if n > 1 else "nothing",
        "axes": str(_channel_axes(X_train)),
        "channels": str(np.shape(X_train)[-1]),
        "train_mean": train_mean, "train_std": train_std,
        "test_mean": test_mean, "test_std": test_std,
        "expected_test_stats": expected_text,
    }


def _looks_self_standardized(X: np.ndarray) -> bool:
    """Mean ≈ 0 and std ≈ 1 per channel whatever the ddof: the fingerprint of X_test scaled
    with its own statistics, even when combined with another slip that no single recipe
    reproduces."""
    X = _f64(X)
    axes = _channel_axes(X)
    with np.errstate(all="ignore"):
        centred = np.all(np.abs(X.mean(axis=axes)) < 1e-3)
        return bool(centred and np.all(np.abs(X.std(axis=axes) - 1) < 1e-2))


def _leak_failure(facts: dict[str, str]) -> CheckFailed:
    return CheckFailed(_LEAK.format(**facts), hint=_USE_TRAIN_STATS.format(**facts),
                       diagnosis="test_stats_leak")


def _unknown_failure(found: Pair, expected: Pair, facts: dict[str, str], reveal: bool) -> CheckFailed:
    """Say which of the two arrays is off (often only X_test is), and by how much."""
    names = ("X_train_std", "X_test_std")
    off = [i for i in range(2)
           if not within_tolerance(found[i], expected[i], rtol=RTOL, atol=ATOL)]
    right = [names[i] for i in range(2) if i not in off]
    lead = f"{right[0]} is right. " if right else "The standardized values do not match. "
    details = " ".join(difference_message(found[i], expected[i], name=names[i], rtol=RTOL,
                                          atol=ATOL, reveal=reveal) for i in off)
    return CheckFailed(
        f"{lead}{details} None of the usual mistakes "
        f"(test-set statistics, per-image statistics, one std for all channels, ddof=1, min-max "
        f"scaling, dividing by 255 only) explains the difference.",
        hint=_USE_TRAIN_STATS.format(**facts),
        diagnosis="wrong_values")


# ---------------------------------------------------------------- the checks

def _returned_text(found: Any) -> str:
    if isinstance(found, np.ndarray):
        return f"a single array of shape {tuple(found.shape)}"
    return describe_value(found)


def _expect_pair(found: Any) -> Pair:
    """Two NumPy arrays, whatever else the student's function could have returned (each
    check may get a value of its own: a later call can return something else)."""
    if not isinstance(found, (tuple, list)) or len(found) != 2:
        raise CheckFailed(
            f"standardize returned {_returned_text(found)}; it should return two arrays, the "
            f"standardized X_train and X_test.",
            hint="End the function with `return X_train_std, X_test_std`.",
            diagnosis="wrong_return")
    train, test = found
    expect_array(train, name="X_train_std")
    expect_array(test, name="X_test_std")
    return train, test


def expect_standardize_returns(found: Any, X_train: np.ndarray, X_test: np.ndarray) -> Pair:
    """A pair of arrays with the inputs' shapes. A list of two is accepted: unpacking
    `X_train_std, X_test_std = standardize(...)` works the same. Returns the pair."""
    train, test = _expect_pair(found)
    swapped = (train.shape, test.shape) == (np.shape(X_test), np.shape(X_train))
    if swapped and train.shape != test.shape:
        raise CheckFailed(_SWAPPED + f" (X_train_std has the shape of X_test, {tuple(train.shape)}.)",
                          hint="Return them as `return X_train_std, X_test_std`.",
                          diagnosis="swapped_outputs")
    expect_array(train, name="X_train_std", shape=np.shape(X_train), same_as="X_train")
    expect_array(test, name="X_test_std", shape=np.shape(X_test), same_as="X_test")
    return train, test


def expect_inputs_unchanged(X_train: np.ndarray, X_test: np.ndarray, X_train_after: Any,
                            X_test_after: Any, *, reveal: bool) -> None:
    """Judged before the values: a function that writes into its inputs can return right
    values and still corrupt the caller's data, and that is the bug to fix first."""
    hint = ("Build new arrays, `X_train_std = (X_train - mean) / std`; `X_train -= mean` and "
            "`X_train /= std` overwrite the caller's data.")
    expect_unchanged(X_train, X_train_after, name="X_train", function="standardize", reveal=reveal,
                     hint=hint)
    expect_unchanged(X_test, X_test_after, name="X_test", function="standardize", reveal=reveal,
                     hint=hint.replace("X_train", "X_test"))


def _expected_pair(expected: Any) -> Pair:
    train, test = expected
    return _f64(train), _f64(test)


def expect_standardized_values(X_train: np.ndarray, X_test: np.ndarray, found: Pair, *,
                               expected: Any, reveal: bool) -> None:
    """"Values differ" teaches nothing; matching the output against each known wrong recipe
    names the mistake. The raw difference is shown only when no recipe explains it.
    `expected` is the reference's pair on the same inputs: the package computes no right
    answer of its own, so that none can be imported from it."""
    found = expect_standardize_returns(found, X_train, X_test)
    found = (expect_numbers(found[0], name="X_train_std"), expect_numbers(found[1], name="X_test_std"))
    expected = _expected_pair(expected)
    if _pair_close(found, expected):
        return
    facts = _facts(X_train, X_test, found, expected, reveal)
    mistake = _matching_mistake(X_train, X_test, found, expected)
    if mistake is not None:
        raise CheckFailed(mistake.message.format(**facts), hint=mistake.hint.format(**facts),
                          diagnosis=mistake.diagnosis)
    if _looks_self_standardized(found[1]) and not _looks_self_standardized(expected[1]):
        raise _leak_failure(facts)
    raise _unknown_failure(found, expected, facts, reveal)


def _times(n: int) -> str:
    return "twice" if n == 2 else f"{n} times"


def expect_float32(found: Pair) -> None:
    """Only reached with the right values, hence partial credit (but the value may come
    from a later call than the one whose values were right: checked again)."""
    for name, array in zip(("X_train_std", "X_test_std"), _expect_pair(found)):
        if array.dtype != np.float32:
            raise CheckFailed(
                f"The values are right, but {name} has dtype {array.dtype} instead of float32. "
                f"float32 is what Keras computes in, and a {array.dtype} copy of an image data "
                f"set takes {_times(array.dtype.itemsize // 4)} the memory.",
                hint="Convert the results with `.astype(np.float32)` before returning them.",
                diagnosis="wrong_dtype", fraction=FLOAT64_FRACTION)


def expect_standardized(X_train: np.ndarray, X_test: np.ndarray, found: Any,
                        X_train_after: Any, X_test_after: Any, *, expected: Any, reveal: bool) -> None:
    """The whole verdict, first failure wins: return type, shapes, in-place modification,
    dtype able to hold the values, values (diagnosed), float32."""
    pair = expect_standardize_returns(found, X_train, X_test)
    expect_inputs_unchanged(X_train, X_test, X_train_after, X_test_after, reveal=reveal)
    for name, array in zip(("X_train_std", "X_test_std"), pair):
        expect_floating(array, name=name, atol=ATOL)
    expect_standardized_values(X_train, X_test, pair, expected=expected, reveal=reveal)
    expect_float32(pair)


# ---------------------------------------------------------------- hidden inputs

def _channel_images(rng: np.random.Generator, n: int, size: int, mean: np.ndarray,
                    std: np.ndarray) -> np.ndarray:
    """Noise truncated at 2.5 std so that no value needs clipping to [0, 255]: clipping
    would pile values on 0 or 255 and blur the difference between recipes."""
    noise = np.clip(rng.standard_normal((n, size, size, mean.size)), -2.5, 2.5)
    brightness = rng.uniform(-8, 8, size=(n, 1, 1, 1))
    return mean + brightness + std * noise


def make_hidden_standardize_inputs(seed: int) -> Pair:
    """Small float32 images (train 6x8x8x3, test 4x8x8x3) with integer values in [0, 255]
    (`.astype(np.uint8)` is lossless), built so that every recipe in the catalogue gives a
    result distinct from the right one and from each other:

    - few values per channel (384), so ddof=1 is 0.13% off, ten times the tolerance;
    - channel means about 22 apart, so one number for all channels is visibly wrong;
    - per-image brightness offsets, so per-image statistics are not whole-set ones;
    - test brighter (+30..50 per channel) and with other contrast (x1.25..1.45 or
      x0.55..0.75 per channel), so test-set statistics change the result;
    - no value reaches 0 or 255 (range about 10..250), so min-max scaling is not X / 255.
    """
    rng = np.random.default_rng(seed)
    mean = rng.permutation(np.array([70.0, 92.0, 114.0])) + rng.uniform(-4, 4, size=3)
    std = rng.uniform(12, 20, size=3)
    shift = rng.uniform(30, 50, size=3)
    contrast = np.where(rng.random(3) < 0.5, rng.uniform(1.25, 1.45, 3), rng.uniform(0.55, 0.75, 3))
    train = _channel_images(rng, 6, 8, mean, std)
    test = _channel_images(rng, 4, 8, mean + shift, std * contrast)
    return (np.clip(np.round(train), 0, 255).astype(np.float32),
            np.clip(np.round(test), 0, 255).astype(np.float32))
