"""Checks shared by conv_bn_torch's test files: standardization and batch normalization in
PyTorch's layout, (N, C, H, W), channels on axis 1.

The package's `grader.checks.standardize` and `grader.checks.batchnorm` judge channels-last
arrays and speak Keras. Students moving to PyTorch make the same mistakes plus one of
their own: the channels-last habit (statistics over every axis but the last) and a (C,)
vector that NumPy broadcasts against the last axis (W), not against the channels. Each
wrong recipe is computed here on the same inputs; when a student's output matches one, the
feedback names it in PyTorch's words. Test files reach these through the `nchw` fixture
(the tests folder is not importable, see docs/authoring.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np
import pytest

from grader.checks import CheckFailed
from grader.checks.arrays import difference_message, expect_array, expect_floating, expect_numbers, within_tolerance
from grader.checks.batchnorm import make_hidden_batchnorm_inputs
from grader.sandbox.errors import StudentCodeError

RTOL = 1e-4
ATOL = 1e-4
FLOAT64_FRACTION = 0.5
Pair = tuple[np.ndarray, np.ndarray]


def _f64(a: Any) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def pooled_axes(ndim: int) -> tuple[int, ...]:
    """Every axis but 1, the channel axis of (N, C), (N, C, L) and (N, C, H, W)."""
    return (0,) + tuple(range(2, ndim))


def _axes_text(axes: Any) -> str:
    if axes is None:
        return "None"
    return str(axes[0]) if len(axes) == 1 else str(tuple(axes))


def _moments(X: np.ndarray, axes: Any, ddof: int = 0) -> Pair:
    X = _f64(X)
    return X.mean(axis=axes, keepdims=True), X.std(axis=axes, ddof=ddof, keepdims=True)


@dataclass(frozen=True)
class Mistake:
    """A wrong recipe, and what to tell a student whose output it reproduces. `compute` takes
    the exercise's inputs and then the reference's answer to them (a recipe that keeps part
    of the right computation starts from that answer). `message` and `hint` are str.format
    templates over the inputs' sizes, never over expected values."""

    diagnosis: str
    compute: Callable[..., Any]
    message: str
    hint: str


def _first_match(mistakes, args: tuple, found: Any, close: Callable[[Any, Any], bool]) -> Mistake | None:
    """`args` are the exercise's inputs followed by the reference's answer to them."""
    for mistake in mistakes:
        try:
            with np.errstate(all="ignore"):
                candidate = mistake.compute(*args)
        except (ValueError, IndexError):  # a recipe these shapes refuse cannot be what was done
            continue
        if close(found, candidate):
            return mistake
    return None


def _close(found: Any, candidate: Any) -> bool:
    return within_tolerance(found, candidate, rtol=RTOL, atol=ATOL)


# ================================================================ standardize

def _pools(X, axes) -> set[int]:
    """The axes a reduction really pools over: an axis of length 1 pools nothing."""
    shape = np.shape(X)
    return {a % len(shape) for a in (range(len(shape)) if axes is None else axes) if shape[a] != 1}


def _train_stats(a, b, *, axes, ddof):
    """X_train's statistics applied to both, with the axes and ddof a mistake chose: both
    required, and the exercise's own choice refused, so that no helper a kit ships is a
    working `standardize` (the right answer is the reference's, recorded into the kit)."""
    if ddof not in (0, 1):
        raise ValueError(f"not a recipe: ddof={ddof!r}")
    if ddof == 0 and _pools(a, axes) == _pools(a, pooled_axes(np.ndim(a))):
        raise ValueError("that is the right recipe, not a mistake; the reference computes it")
    mean, std = _moments(a, axes, ddof)
    return (_f64(a) - mean) / std, (_f64(b) - mean) / std


def _own_stats(a, b, axes, ddof=0):
    return tuple((_f64(x) - m) / s for x, (m, s) in ((a, _moments(a, axes, ddof)), (b, _moments(b, axes, ddof))))


def _combined_stats(a, b):
    both = np.concatenate([_f64(a), _f64(b)], axis=0)
    mean, std = _moments(both, pooled_axes(both.ndim))
    return (_f64(a) - mean) / std, (_f64(b) - mean) / std


def _flat_stats_on_last_axis(a, b):
    """mean(axis=(0, 2, 3)) without keepdims, shape (C,), applied to (N, C, H, W): NumPy
    lines it up with W. Only possible when W == C, and then silently wrong."""
    axes = pooled_axes(np.ndim(a))
    mean, std = _f64(a).mean(axis=axes), _f64(a).std(axis=axes)
    return (_f64(a) - mean) / std, (_f64(b) - mean) / std


_USE_TRAIN_STATS = ("Compute one mean and one standard deviation per channel from X_train only, over "
                    "axis={axes} with keepdims=True (shape (1, C, 1, 1)), and apply those same numbers "
                    "to both X_train and X_test.")
_LEAK = ("Your X_test_std was scaled with the test set's own statistics: each of its channels has mean "
         "≈ 0 and std ≈ 1. X_test must be scaled with the mean and standard deviation of X_train. The "
         "test set stands in for images that arrive after training: measuring it leaks information "
         "about it, and transforms it differently from the images the model learned on.")
_COMBINED = ("Your mean and std were computed from X_train and X_test together. X_test must be scaled "
             "with statistics of X_train alone: measuring the test set leaks information about it.")
_CHANNELS_LAST = ("Your statistics were computed over axis=(0, 1, 2), every axis but the last, as for "
                  "Keras' (N, H, W, C) images. PyTorch images are (N, C, H, W): the channels are axis 1, so "
                  "you computed one mean per image column and mixed the three colours together.")
_WRONG_AXIS = ("Your statistics were computed over axis={found_axes}. In PyTorch's (N, C, H, W) layout "
               "the channels are axis 1; one mean and one std per channel pools every image, row and "
               "column: axis={axes}. A convolution applies the same filter at every position, so all "
               "pixels of a channel play the same role.")
_PER_IMAGE = ("Each image was standardized with its own statistics (over axis={found_axes}). Standardization "
              "uses one mean and std per channel over the whole training set, so that differences between "
              "images (one photo darker than another) survive as information the model can use.")
_SCALAR = ("You used one mean and one std for all channels together. The channels have different ranges, "
           "so each needs its own statistics to be centred and scaled.")
_SAMPLE_STD = ("You divided by the sample standard deviation (dividing by N-1; ddof=1, which is also "
               "torch.std's default, correction=1). The exercise asks for the population standard "
               "deviation (dividing by N, np.std's default), the one BatchNorm normalizes with.")
_NO_STD = "You subtracted the mean but did not divide by the standard deviation."
_LAST_AXIS = ("Your per-channel statistics (shape (C,)) were applied along the last axis, the image width: "
              "NumPy broadcasts a (C,) vector against the last axis of (N, C, H, W). Keep the reduced axes "
              "(keepdims=True) or reshape to (1, C, 1, 1) so the numbers line up with axis 1.")
_SWAPPED = "Your two results are in the wrong order: return X_train_std first, then X_test_std."


def standardize_mistakes(ndim: int) -> tuple[Mistake, ...]:
    """Most specific first: when two recipes coincide on some input, the first is named."""
    right = pooled_axes(ndim)
    t = Mistake
    wrong = [a for a in [(0,), (0, 2), (0, 3)] if max(a) < ndim and a != right]
    return (
        t("swapped_outputs", lambda a, b, ok: tuple(ok)[::-1], _SWAPPED, "`return X_train_std, X_test_std`."),
        t("test_stats_leak", lambda a, b, _: _own_stats(a, b, right), _LEAK, _USE_TRAIN_STATS),
        t("test_stats_leak", lambda a, b, _: _combined_stats(a, b), _COMBINED, _USE_TRAIN_STATS),
        t("sample_std", lambda a, b, _: _train_stats(a, b, axes=right, ddof=1), _SAMPLE_STD,
          "Use np.std(..., axis={axes}) without ddof (or torch.std(..., correction=0))."),
        t("no_std_division", lambda a, b, _: tuple(_f64(x) - _moments(a, right)[0] for x in (a, b)), _NO_STD,
          "After subtracting X_train's per-channel mean, divide by X_train's per-channel std."),
        t("channels_last_axes", lambda a, b, _: _train_stats(a, b, axes=(0, 1, 2), ddof=0), _CHANNELS_LAST,
          "Reduce over axis={axes}, not over (0, 1, 2)."),
        t("channels_on_last_axis", lambda a, b, _: _flat_stats_on_last_axis(a, b), _LAST_AXIS,
          "`mean = X_train.mean(axis={axes}, keepdims=True)`, and the same for std."),
        t("scalar_stats", lambda a, b, _: _train_stats(a, b, axes=None, ddof=0), _SCALAR,
          "Reduce over axis={axes}, giving one mean and one std per channel."),
        t("per_image_stats", lambda a, b, _: _own_stats(a, b, (2, 3)),
          _PER_IMAGE.replace("{found_axes}", "(2, 3)"), "Include the image axis: axis={axes}."),
        t("per_image_stats", lambda a, b, _: _own_stats(a, b, (1, 2, 3)),
          _PER_IMAGE.replace("{found_axes}", "(1, 2, 3)"), "Include the image axis: axis={axes}."),
        *(t("wrong_axis_stats", lambda a, b, _, ax=ax: _train_stats(a, b, axes=ax, ddof=0),
            _WRONG_AXIS.replace("{found_axes}", _axes_text(ax)), "Reduce over axis={axes}.") for ax in wrong),
        t("wrong_axis_stats", lambda a, b, _: _own_stats(a, b, (1,)), _WRONG_AXIS.replace("{found_axes}", "1"),
          "Reduce over axis={axes}, not over the channel axis."),
    )


def expect_standardize_pair(found: Any, X_train, X_test) -> Pair:
    """Two arrays of the inputs' shapes (a list of two unpacks the same)."""
    if not isinstance(found, (tuple, list)) or len(found) != 2:
        raise CheckFailed("standardize should return two arrays, the standardized X_train and X_test.",
                          hint="End the function with `return X_train_std, X_test_std`.", diagnosis="wrong_return")
    train = expect_array(found[0], name="X_train_std", shape=np.shape(X_train), same_as="X_train")
    test = expect_array(found[1], name="X_test_std", shape=np.shape(X_test), same_as="X_test")
    return train, test


def expect_standardized_nchw(X_train, X_test, found: Any, *, expected: Any, reveal: bool) -> None:
    """`expected` is reference.standardize on the same inputs (recorded into a kit)."""
    train, test = expect_standardize_pair(found, X_train, X_test)
    pair = (expect_numbers(train, name="X_train_std"), expect_numbers(test, name="X_test_std"))
    for name, array in zip(("X_train_std", "X_test_std"), pair):
        expect_floating(array, name=name, atol=ATOL)
    expected = (_f64(expected[0]), _f64(expected[1]))
    close = lambda f, c: all(_close(x, y) for x, y in zip(f, c))  # noqa: E731
    if close(pair, expected):
        return
    facts = {"axes": _axes_text(pooled_axes(np.ndim(X_train)))}
    mistake = _first_match(standardize_mistakes(np.ndim(X_train)), (X_train, X_test, expected), pair, close)
    if mistake is not None:
        raise CheckFailed(mistake.message.format(**facts), hint=mistake.hint.format(**facts),
                          diagnosis=mistake.diagnosis)
    names = ("X_train_std", "X_test_std")
    off = [i for i in range(2) if not _close(pair[i], expected[i])]
    lead = f"{names[1 - off[0]]} is right. " if len(off) == 1 else ""
    raise CheckFailed(lead + " ".join(difference_message(pair[i], expected[i], name=names[i], rtol=RTOL,
                                                         atol=ATOL, reveal=reveal) for i in off)
                      + " None of the usual mistakes (test-set statistics, the channels-last axes, "
                        "per-image statistics, ddof=1) explains the difference.",
                      hint=_USE_TRAIN_STATS.format(**facts), diagnosis="wrong_values")


def expect_float32_pair(found: Pair) -> None:
    """Reached with the right values only, hence partial credit."""
    for name, array in zip(("X_train_std", "X_test_std"), found):
        if array.dtype != np.float32:
            raise CheckFailed(
                f"The values are right, but {name} has dtype {array.dtype} instead of float32. "
                f"PyTorch's layers compute in float32 (torch.from_numpy keeps the dtype, and a "
                f"float64 batch fed to a float32 Conv2d raises a dtype error).",
                hint="Convert the results with `.astype(np.float32)` before returning them.",
                diagnosis="wrong_dtype", fraction=FLOAT64_FRACTION)


def make_standardize_inputs(seed: int) -> Pair:
    """Train (6, 3, 8, 10) and test (4, 3, 8, 10) float32 images with values in [0, 255],
    built so that every recipe above is far from the right answer: W (10) is neither H nor
    C, so a (C,) vector on the last axis raises, and statistics over axis=(0, 1, 2) are
    per column; channel means about 22 apart; per-image brightness; a brighter test set
    with another contrast; 384+ values per channel per statistic, so ddof=1 shows."""
    rng = np.random.default_rng(seed)
    mean = rng.permutation(np.array([70.0, 92.0, 114.0])) + rng.uniform(-4, 4, size=3)
    std = rng.uniform(12, 20, size=3)
    shift = rng.uniform(30, 50, size=3)
    contrast = np.where(rng.random(3) < 0.5, rng.uniform(1.25, 1.45, 3), rng.uniform(0.55, 0.75, 3))

    def images(n, m, s):
        noise = np.clip(rng.standard_normal((n, 3, 8, 10)), -2.5, 2.5)
        return m[None, :, None, None] + rng.uniform(-8, 8, size=(n, 1, 1, 1)) + s[None, :, None, None] * noise

    train, test = images(6, mean, std), images(4, mean + shift, std * contrast)
    return (np.clip(np.round(train), 0, 255).astype(np.float32), np.clip(np.round(test), 0, 255).astype(np.float32))


# ================================================================ batchnorm_forward

def _per_channel(v, ndim):
    return _f64(v).reshape((1, -1) + (1,) * (ndim - 2))


_DIVISORS = {"eps_inside": lambda v, e: np.sqrt(v + e), "eps_outside": lambda v, e: np.sqrt(v) + e,
             "no_eps": lambda v, e: np.sqrt(v), "no_sqrt": lambda v, e: v + e}


def _bn(x, g, b, eps, *, axes, ddof, divisor):
    """Batch norm with the parts students get wrong as required parameters. It computes
    mistakes only: the right combination is refused, so that no helper a kit ships is a
    working `batchnorm_forward` (the right answer is the reference's, recorded into the kit)."""
    x = _f64(x)
    if ddof not in (0, 1) or divisor not in _DIVISORS:
        raise ValueError(f"not a recipe: ddof={ddof!r}, divisor={divisor!r}")
    if ddof == 0 and divisor == "eps_inside" and _pools(x, axes) == _pools(x, pooled_axes(x.ndim)):
        raise ValueError("that is the right formula, not a mistake; the reference computes it")
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, ddof=ddof, keepdims=True)
    return _per_channel(g, x.ndim) * (x - mean) / _DIVISORS[divisor](var, eps) + _per_channel(b, x.ndim)


def _wrong(**parts):
    """A mistake made with the formula's parts: those not named are the right ones."""
    chosen = {"ddof": 0, "divisor": "eps_inside", **parts}
    return lambda x, g, b, e, _: _bn(x, g, b, e, axes=chosen.get("axes", pooled_axes(np.ndim(x))),
                                     ddof=chosen["ddof"], divisor=chosen["divisor"])


def _x_hat(expected, g, b):
    """The normalized x read back from the reference's answer: mistakes that keep the right
    normalization (gamma and beta swapped, left out, or on the wrong axis) start from it."""
    with np.errstate(all="ignore"):
        return (_f64(expected) - _per_channel(b, np.ndim(expected))) / _per_channel(g, np.ndim(expected))


_FORMULA = "gamma * (x - mean) / sqrt(var + eps) + beta"
_EPS_OUTSIDE = ("You added eps outside the square root, (x - mean) / (sqrt(var) + eps); it belongs inside, "
                "(x - mean) / sqrt(var + eps), as in nn.BatchNorm2d and the original paper. The two agree when "
                "the variance is large, but not for a channel that barely varies in the batch (channel "
                "{small_channel} here): inside the root eps bounds the divisor below by sqrt(eps) = {sqrt_eps}, "
                "outside only by eps = {eps}, so a nearly constant channel gets its noise amplified up to "
                "{ratio} times more.")
_UNBIASED = ("You normalized with the unbiased variance (dividing by N-1; ddof=1, which is also the default "
             "of torch.var and Tensor.var, correction=1). In training mode BatchNorm2d normalizes with the "
             "biased variance of the batch, dividing by N = {n} values per channel here. (PyTorch does use "
             "the unbiased variance for the running_var it keeps for eval(): a classic trap.)")
_NO_EPS = ("You divided by sqrt(var) without eps. eps keeps the division bounded for a channel that barely "
           "varies in the batch (channel {small_channel} here; a channel that is 0 for the whole batch would "
           "give 0/0 = NaN).")
_SWAPPED_AFFINE = ("gamma and beta are swapped: gamma (BatchNorm2d's .weight) multiplies the normalized value, "
                   "beta (its .bias) is added after it.")
_NO_AFFINE = ("Your output is the normalized x_hat without gamma and beta. The layer returns gamma * x_hat + "
              "beta (BatchNorm2d's weight and bias): the learned scale and shift let the network undo the "
              "normalization where that helps.")
_NO_SQRT = "You divided by the variance instead of its square root, sqrt(var + eps)."
_INFERENCE = ("Your output matches normalization with mean 0 and variance 1, the initial running statistics "
              "that BatchNorm2d uses after model.eval(), not this batch's statistics. In training mode "
              "(model.train()) batch normalization uses the mean and variance of the current batch.")
_BN_CHANNELS_LAST = ("Your mean and variance were computed over axis=(0, 1, 2), every axis but the last, as "
                     "for Keras' channels-last tensors. In PyTorch's (N, C, H, W) layout the channels are axis "
                     "1: BatchNorm2d pools over axis={axes}.")
_BN_WRONG_AXIS = ("Your mean and variance were computed over axis={found_axes}. BatchNorm2d keeps one mean and "
                  "one variance per channel, pooled over the batch and every position: axis={axes} in "
                  "(N, C, H, W).")
_AFFINE_ON_LAST = ("Your gamma and beta (shape (C,)) were applied along the last axis: NumPy broadcasts a (C,) "
                   "vector against the last axis of (N, C, H, W), here the width. Reshape them to (1, C, 1, 1) "
                   "(gamma.reshape(1, -1, 1, 1)) so that each channel gets its own scale and shift.")


def batchnorm_mistakes(ndim: int) -> tuple[Mistake, ...]:
    right = pooled_axes(ndim)
    t = Mistake
    wrong = [a for a in [(0,), tuple(range(1, ndim)), tuple(range(2, ndim)), tuple(range(ndim))]
             if a and a != right and max(a) < ndim]
    return (
        t("gamma_beta_swapped", lambda x, g, b, e, ok: _per_channel(b, np.ndim(x)) * _x_hat(ok, g, b)
          + _per_channel(g, np.ndim(x)), _SWAPPED_AFFINE, f"Compute {_FORMULA}."),
        t("eps_outside_sqrt", _wrong(divisor="eps_outside"), _EPS_OUTSIDE,
          "Put eps inside the square root: divide by np.sqrt(var + eps)."),
        t("no_eps", _wrong(divisor="no_eps"), _NO_EPS,
          "Divide by np.sqrt(var + eps), using the eps argument."),
        t("unbiased_variance", _wrong(ddof=1), _UNBIASED,
          "Use the biased variance: x.var(axis={axes}, keepdims=True) in NumPy (ddof=0), or "
          "torch.var(..., correction=0)."),
        t("no_sqrt", _wrong(divisor="no_sqrt"), _NO_SQRT,
          "Divide by np.sqrt(var + eps), not by var + eps."),
        t("no_gamma_beta", lambda x, g, b, e, ok: _x_hat(ok, g, b), _NO_AFFINE,
          f"Return {_FORMULA}, with gamma and beta reshaped to (1, C, 1, 1)."),
        t("inference_stats", lambda x, g, b, e, _: _per_channel(g, np.ndim(x)) * _f64(x) / np.sqrt(1 + e)
          + _per_channel(b, np.ndim(x)), _INFERENCE, "Compute mean and var from the batch x, over axis={axes}."),
        *(t("affine_on_last_axis", lambda x, g, b, e, ok: _f64(g) * _x_hat(ok, g, b) + _f64(b), _AFFINE_ON_LAST,
            "`gamma.reshape(1, -1, 1, 1) * x_hat + beta.reshape(1, -1, 1, 1)`.") for _ in [0] if ndim > 2),
        *(t("channels_last_axes", _wrong(axes=(0, 1, 2)), _BN_CHANNELS_LAST,
            "Compute mean and var over axis={axes}, with keepdims=True.") for _ in [0] if ndim == 4),
        *(t("wrong_axis", _wrong(axes=ax),
            _BN_WRONG_AXIS.replace("{found_axes}", _axes_text(ax)),
            "Compute mean and var over axis={axes}, with keepdims=True.") for ax in wrong),
    )


def _bn_facts(x, eps) -> dict[str, str]:
    x = _f64(x)
    axes = pooled_axes(x.ndim)
    n = int(x.size // max(x.shape[1], 1))
    return {"axes": _axes_text(axes), "n": str(n), "small_channel": str(int(np.argmin(x.var(axis=axes)))),
            "eps": f"{eps:g}", "sqrt_eps": f"{np.sqrt(eps):.3g}",
            "ratio": f"{np.sqrt(eps) / eps:.0f}" if eps > 0 else "infinitely many"}


def expect_batchnorm_nchw(x, gamma, beta, eps, found: Any, *, expected: Any, reveal: bool) -> None:
    """`expected` is reference.batchnorm_forward on the same inputs (recorded into a kit).
    Any float dtype of float32 or wider passes: the exercise fixes the values."""
    name = "the output of batchnorm_forward"
    array = expect_array(found, name=name, shape=np.shape(x), same_as="x")
    expect_floating(array, name=name, atol=ATOL)
    expected = _f64(expected)
    if _close(array, expected):
        return
    facts = _bn_facts(x, eps)
    mistake = _first_match(batchnorm_mistakes(np.ndim(x)), (x, gamma, beta, eps, expected), array, _close)
    if mistake is not None:
        raise CheckFailed(mistake.message.format(**facts), hint=mistake.hint.format(**facts),
                          diagnosis=mistake.diagnosis)
    raise CheckFailed(
        difference_message(array, expected, name=name, rtol=RTOL, atol=ATOL, reveal=reveal)
        + " None of the usual mistakes (the channels-last axes, eps outside the square root, the unbiased "
          "variance, gamma and beta on the wrong axis) explains the difference.",
        hint=f"With mean and var over axis={facts['axes']} (keepdims=True), compute {_FORMULA}.",
        diagnosis="wrong_values")


def make_batchnorm_inputs(seed: int):
    """x of shape (4, 3, 5, 5): the package's channels-last hidden inputs (one channel with a
    variance near eps, 100 values per channel, gamma and beta far from 1 and 0) moved to
    NCHW. W (5) differs from C (3), so a (C,) gamma on the last axis raises."""
    x, gamma, beta = make_hidden_batchnorm_inputs(seed)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)), gamma, beta


# ================================================================ NumPy broadcasting errors

def explain_broadcast(exc: StudentCodeError, *, what: str) -> None:
    """A (C,) vector against (N, C, H, W) raises "operands could not be broadcast": the most
    common first PyTorch-layout slip. Say which axis NumPy lined it up with; re-raise
    anything else unchanged."""
    if exc.type != "ValueError" or "broadcast" not in exc.detail:
        raise exc
    where = f" ({exc.where}, line {exc.line})" if exc.where and exc.line else ""
    raise CheckFailed(
        f"Your `{exc.name}` raised ValueError{where}: {exc.detail}. NumPy lines shapes up from the last "
        f"axis, so a per-channel vector of shape (C,) meets the width W of an (N, C, H, W) array, not the "
        f"channels. {what}",
        hint="Keep the reduced axes, `x.mean(axis=(0, 2, 3), keepdims=True)`, or reshape per-channel "
             "vectors to (1, C, 1, 1), `gamma.reshape(1, -1, 1, 1)`.",
        diagnosis="channels_on_last_axis") from None


# ================================================================ models

_WHY_BN_FIRST = ("BatchNorm2d standardizes what the convolution produced, channel by channel, before the ReLU cuts "
                 "off its negative half; after pooling it would normalize only the maxima the pool kept, and the "
                 "ReLU in front of it would already have met an unnormalized input.")


def expect_bn_reads_conv(model) -> None:
    """A BatchNorm2d that reads a pooling layer gets its own diagnosis (the generic layer
    order check would only say that MaxPool moved); other placements are left to
    expect_architecture, which names ReLU before BatchNorm and the rest."""
    from grader.checks.architecture import layer_graph

    g = layer_graph(model)
    for i, node in enumerate(g.nodes):
        if node.spec.kind != "BatchNormalization" or len(node.spec.inputs) != 1:
            continue
        source = g.nodes[node.spec.inputs[0]]
        if "Pooling" not in source.spec.kind:
            continue
        where = f" ({node.location.aside()})" if node.location else ""
        raise CheckFailed(
            f"{node.spec.label()}{where} normalizes the output of {source.spec.label()}, not of a convolution. "
            + _WHY_BN_FIRST,
            hint="Call each BatchNorm2d directly on its convolution's output: conv -> bn -> relu -> pool.",
            diagnosis="bn_after_pool")


def _keeps_no_running_stats(model) -> list[str]:
    from torch import nn

    return [f"nn.BatchNorm2d({m.num_features}, track_running_stats=False)" for m in model.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and not m.track_running_stats]


def expect_outputs_in_both_modes(reference_model, student_model, x, *, what: str = "output") -> None:
    """eval() first, as a deployed model runs: when only eval() differs, the running
    statistics are the explanation (a model that keeps none uses batch statistics after
    model.eval(), so one image's prediction depends on the rest of its batch)."""
    from grader.checks.models import expect_same_outputs

    try:
        expect_same_outputs(reference_model, student_model, x, training=False, what=f"{what} in eval() mode")
    except CheckFailed as eval_failure:
        try:
            expect_same_outputs(reference_model, student_model, x, training=True, what=f"{what} in train() mode")
        except CheckFailed:
            raise eval_failure from None
        culprits = _keeps_no_running_stats(student_model)
        found = (f"Your model has {', '.join(culprits)}: " if culprits else "")
        raise CheckFailed(
            f"In train() mode your model computes what the reference computes, but after model.eval() it does "
            f"not. {found}in eval() mode BatchNorm2d must normalize with the running mean and variance it "
            f"gathered during training, not with the statistics of the batch in front of it, so that a "
            f"prediction does not depend on which other images share its batch (or fail on a batch of one).",
            hint="Use nn.BatchNorm2d(num_features) with its defaults (track_running_stats=True), and do not force "
                 "training mode inside forward (no self.train(), no F.batch_norm(..., training=True)).",
            diagnosis="eval_uses_batch_stats") from None
    expect_same_outputs(reference_model, student_model, x, training=True, what=f"{what} in train() mode")


@pytest.fixture(scope="session")
def nchw():
    """The checks above, for the test files: `nchw.expect_standardized(...)` and so on."""
    return SimpleNamespace(
        standardize_inputs=make_standardize_inputs, standardize_pair=expect_standardize_pair,
        expect_standardized=expect_standardized_nchw, expect_float32=expect_float32_pair,
        batchnorm_inputs=make_batchnorm_inputs, expect_batchnorm=expect_batchnorm_nchw,
        explain_broadcast=explain_broadcast,
        expect_bn_reads_conv=expect_bn_reads_conv, expect_outputs_in_both_modes=expect_outputs_in_both_modes)
