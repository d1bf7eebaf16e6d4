"""Checks for `batchnorm_forward(x, gamma, beta, eps=1e-3)`: training-mode batch
normalization, channels last, as Keras `BatchNormalization(epsilon=eps)` computes it with
`training=True`.

As for standardize, the usual wrong formulas are computed on the same inputs, and an
output that matches one is told which mistake it is and why the right formula is right.
All of them fail with no partial credit: each changes the layer's output by more than
the 1e-4 the exercise allows.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from grader.checks import CheckFailed
from grader.checks.arrays import (difference_message, expect_array, expect_floating,
                                  within_tolerance)

__all__ = [
    "ATOL",
    "RTOL",
    "batchnorm_mistakes",
    "expect_batchnorm",
    "make_hidden_batchnorm_inputs",
]

# "Matches Keras within 1e-4", absolute. Float32 round-off on outputs of magnitude <= 10
# is about 1e-6 and Keras differs from the float64 reference by about 1e-5.
ATOL = 1e-4
RTOL = 0.0


# ---------------------------------------------------------------- formulas

def _f64(a: Any) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _channel_axes(x: np.ndarray) -> tuple[int, ...]:
    """Every axis but the last: the batch and all positions share one mean per channel."""
    return tuple(range(np.ndim(x) - 1))


def _misnormalize(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float, *,
                  axes: tuple[int, ...], ddof: int, divisor: str) -> np.ndarray:
    """The batch-norm formula with the parts students get wrong as required parameters.

    It computes mistakes only: every part must be named, and the combination that is the
    exercise's answer (every axis but the last, ddof=0, eps inside the root) is refused,
    so that nothing in the installed package is a working `batchnorm_forward`. The right
    answer always comes from the assignment's reference."""
    x = _f64(x)
    axes = tuple(sorted(int(a) % x.ndim for a in axes))
    if ddof not in (0, 1) or divisor not in _DIVISORS:
        raise ValueError(f"not a recipe: ddof={ddof!r}, divisor={divisor!r}")
    pooled = {a for a in axes if x.shape[a] != 1}  # an axis of length 1 pools nothing
    if pooled == {a for a in _channel_axes(x) if x.shape[a] != 1} and ddof == 0 and divisor == "eps_inside":
        raise ValueError("that is the right formula, not a mistake; the reference computes it")
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, ddof=ddof, keepdims=True)
    return _f64(gamma) * (x - mean) / _DIVISORS[divisor](var, eps) + _f64(beta)


_DIVISORS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "eps_inside": lambda var, eps: np.sqrt(var + eps),
    "eps_outside": lambda var, eps: np.sqrt(var) + eps,
    "no_eps": lambda var, eps: np.sqrt(var),
    "no_sqrt": lambda var, eps: var + eps,
}


def _x_hat(expected: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """The normalized x, read back from the reference's output: the mistakes that keep the
    right normalization (gamma and beta swapped or left out) start from it, so no code
    here normalizes x the right way."""
    with np.errstate(all="ignore"):
        return (_f64(expected) - _f64(beta)) / _f64(gamma)


def _swapped(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float,
             expected: np.ndarray) -> np.ndarray:
    return _f64(beta) * _x_hat(expected, gamma, beta) + _f64(gamma)


def _inference(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float,
               expected: np.ndarray) -> np.ndarray:
    """Keras' moving statistics start at mean 0, variance 1: what training=False uses
    before any training step."""
    return _f64(gamma) * _f64(x) / np.sqrt(1.0 + eps) + _f64(beta)


def _inference_no_eps(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float,
                      expected: np.ndarray) -> np.ndarray:
    return _f64(gamma) * _f64(x) + _f64(beta)


def _plain(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float,
           expected: np.ndarray) -> np.ndarray:
    return _x_hat(expected, gamma, beta)


def _recipe(**wrong: Any) -> Callable[..., np.ndarray]:
    """A mistake made with the formula's parts: those not named are the right ones."""
    parts = {"ddof": 0, "divisor": "eps_inside", **wrong}

    def compute(x, gamma, beta, eps, expected):
        axes = parts.get("axes", _channel_axes(_f64(x)))
        return _misnormalize(x, gamma, beta, eps, axes=axes, ddof=parts["ddof"], divisor=parts["divisor"])
    return compute


# ---------------------------------------------------------------- the catalogue of mistakes

@dataclass(frozen=True)
class Mistake:
    """One wrong formula and what to tell a student whose output it explains; `message`
    and `hint` are str.format templates over `_facts`."""

    diagnosis: str
    compute: Callable[..., np.ndarray]  # (x, gamma, beta, eps, reference's output) -> output
    message: str
    hint: str


_FORMULA = "gamma * (x - mean) / np.sqrt(var + eps) + beta"

_WRONG_AXIS = ("You normalized over axis={found_axes} ({meaning}). With channels last, batch "
               "normalization computes one mean and one variance per channel, over every other "
               "axis, axis={axes}: the whole batch and every position, so that each channel "
               "(each feature a filter detects) is normalized the same way wherever it appears.")

_EPS_OUTSIDE = ("You added eps outside the square root, (x - mean) / (sqrt(var) + eps); it belongs "
                "inside, (x - mean) / sqrt(var + eps), as in Keras and the original paper. The two "
                "agree when the variance is large, but not for a channel whose values barely vary "
                "in the batch (channel {small_channel} here): inside the root eps bounds the divisor "
                "below by sqrt(eps) = {sqrt_eps}, outside only by eps = {eps}, so a nearly "
                "constant channel gets its noise amplified up to {ratio} times more.")

_NO_EPS = ("You divided by sqrt(var) without eps. eps keeps the division bounded for a channel "
           "whose values barely vary in the batch (channel {small_channel} here; a ReLU channel "
           "that is 0 for the whole batch has variance exactly 0 and would give 0/0 = NaN).")

_SWAPPED = ("gamma and beta are swapped: gamma is the scale that multiplies the normalized value, "
            "beta the shift added after it. They start as 1 and 0 so the layer begins as a pure "
            "normalization, and training learns how much of the original scale and offset to "
            "restore.")

_INFERENCE = ("Your output matches normalization with mean 0 and variance 1, the initial moving "
              "statistics that Keras uses at inference, not this batch's statistics. In training "
              "mode (training=True) batch normalization uses the mean and variance of the "
              "current batch, computed from x.")

_SAMPLE_VAR = ("You used the sample variance (ddof=1, dividing by N-1). Batch normalization "
               "normalizes with the population variance of the batch (dividing by N = {n} values "
               "per channel here), as Keras does; the difference is {ddof_pct} of the output "
               "scale, above the 1e-4 tolerance.")

_NO_SQRT = ("You divided by the variance instead of the standard deviation. The variance is in "
            "squared units of x; only dividing (x - mean) by its square root, sqrt(var + eps), "
            "gives a unitless result with variance about 1, whatever the scale of the channel.")

_NO_AFFINE = ("Your output is the normalized x_hat = (x - mean) / sqrt(var + eps) without gamma "
              "and beta. The layer's output is gamma * x_hat + beta: the learned scale and shift "
              "let the network undo the normalization where that helps.")

_AXIS_MEANINGS = {
    "last": "across the channels of each position, mixing different features",
    "sample": "each sample separately, over its positions and channels",
    "instance": "each sample and channel separately, over positions only",
    "batch_only": "each position and channel separately, over the batch only",
    "all": "all values together, one mean for every channel",
    "channels_first": "as if channels were axis 1 (channels first), but they are last",
}


def _axis_candidates(ndim: int) -> list[tuple[tuple[int, ...], str]]:
    """The axes students pick instead of every-axis-but-the-last, valid for this ndim."""
    inner = tuple(range(1, ndim - 1))
    candidates = [((ndim - 1,), "last"), (tuple(range(1, ndim)), "sample"), (inner, "instance"),
                  ((0,), "batch_only"), (tuple(range(ndim)), "all"),
                  ((0,) + tuple(range(2, ndim)), "channels_first")]
    right = tuple(range(ndim - 1))
    seen: set = set()
    valid = []
    for axes, meaning in candidates:
        if axes == () or axes == right or axes in seen or max(axes) >= ndim:
            continue
        seen.add(axes)
        valid.append((axes, meaning))
    return valid


def _axis_mistake(axes: tuple[int, ...], meaning: str) -> Mistake:
    """Quote the axes the way the student wrote them: axis=None for all, axis=0 for one."""
    found_axes = "None" if meaning == "all" else str(axes if len(axes) > 1 else axes[0])
    message = _WRONG_AXIS.replace("{found_axes}", found_axes).replace("{meaning}", _AXIS_MEANINGS[meaning])
    return Mistake("wrong_axis", _recipe(axes=axes), message,
                   "Compute mean and var with axis={axes}, every axis except the last, so that "
                   "they have one value per channel.")


def batchnorm_mistakes(ndim: int) -> tuple[Mistake, ...]:
    """Most specific first: if two formulas coincide on some input, the first is named."""
    t = Mistake
    return (
        t("gamma_beta_swapped", _swapped, _SWAPPED, f"Compute {_FORMULA}."),
        t("eps_outside_sqrt", _recipe(divisor="eps_outside"),
          _EPS_OUTSIDE, "Put eps inside the square root: divide by np.sqrt(var + eps)."),
        t("no_eps", _recipe(divisor="no_eps"), _NO_EPS,
          "Divide by np.sqrt(var + eps), using the eps argument."),
        t("sample_var", _recipe(ddof=1), _SAMPLE_VAR,
          "Use the population variance, x.var(axis={axes}) without ddof=1 (torch.var and "
          "pandas default to ddof=1)."),
        t("no_sqrt", _recipe(divisor="no_sqrt"), _NO_SQRT,
          "Divide by np.sqrt(var + eps), not by var + eps."),
        t("no_gamma_beta", _plain, _NO_AFFINE, "Return gamma * x_hat + beta."),
        t("inference_stats", _inference, _INFERENCE,
          "Compute mean = x.mean(axis={axes}) and var = x.var(axis={axes}) from the batch x, "
          f"then {_FORMULA}."),
        t("inference_stats", _inference_no_eps, _INFERENCE,
          "Compute mean = x.mean(axis={axes}) and var = x.var(axis={axes}) from the batch x, "
          f"then {_FORMULA}."),
        *(_axis_mistake(axes, meaning) for axes, meaning in _axis_candidates(ndim)),
    )


def _compute(mistake: Mistake, x: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
             eps: float, expected: np.ndarray) -> np.ndarray | None:
    """A formula that cannot be applied to these shapes cannot be what was done."""
    try:
        with np.errstate(all="ignore"):
            return mistake.compute(x, gamma, beta, eps, expected)
    except (ValueError, IndexError):
        return None


def _matching_mistake(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float,
                      found: np.ndarray, expected: np.ndarray) -> Mistake | None:
    for mistake in batchnorm_mistakes(np.ndim(x)):
        candidate = _compute(mistake, x, gamma, beta, eps, expected)
        if candidate is not None and within_tolerance(found, candidate, rtol=RTOL, atol=ATOL):
            return mistake
    return None


# ---------------------------------------------------------------- wording

def _facts(x: np.ndarray, eps: float) -> dict[str, str]:
    """Sizes and properties of the inputs a message may quote; never expected outputs."""
    x = _f64(x)
    axes = _channel_axes(x)
    n = int(x.size // max(x.shape[-1], 1))
    var = x.var(axis=axes)
    small = int(np.argmin(var))
    return {
        "axes": str(axes),
        "n": str(n),
        "ddof_pct": f"{(np.sqrt(n / (n - 1)) - 1) * 100:.2g}%" if n > 1 else "nothing",
        "small_channel": str(small),
        "eps": f"{eps:g}",
        "sqrt_eps": f"{np.sqrt(eps):.3g}",
        "ratio": f"{np.sqrt(eps) / eps:.0f}" if eps > 0 else "infinitely many",
    }


def _unknown_failure(found: np.ndarray, expected: np.ndarray, facts: dict[str, str],
                     reveal: bool) -> CheckFailed:
    return CheckFailed(
        difference_message(found, expected, name="the output of batchnorm_forward", rtol=RTOL,
                           atol=ATOL, reveal=reveal)
        + " None of the usual mistakes (wrong axes, eps outside the square root or missing, "
          "gamma and beta swapped, inference statistics, ddof=1) explains the difference.",
        hint=("With mean = x.mean(axis={axes}) and var = x.var(axis={axes}), compute "
              + _FORMULA + ", in float32 or float64.").format(**facts),
        diagnosis="wrong_values")


# ---------------------------------------------------------------- the check

def expect_batchnorm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float,
                     found: Any, *, expected: Any, reveal: bool) -> None:
    """Type, shape and a floating dtype, then values against `expected` (the assignment's
    reference on the same inputs: the package holds no working batch norm) within 1e-4,
    with a mismatch diagnosed. Any float dtype of float32 or wider passes: the exercise
    fixes the values, and NumPy code naturally returns float64 where Keras gives float32."""
    name = "the output of batchnorm_forward"
    array = expect_array(found, name=name, shape=np.shape(x), same_as="x")
    expect_floating(array, name=name, atol=ATOL)
    expected = _f64(expected)
    if within_tolerance(array, expected, rtol=RTOL, atol=ATOL):
        return
    facts = _facts(x, eps)
    mistake = _matching_mistake(x, gamma, beta, eps, array, expected)
    if mistake is not None:
        raise CheckFailed(mistake.message.format(**facts), hint=mistake.hint.format(**facts),
                          diagnosis=mistake.diagnosis)
    raise _unknown_failure(array, expected, facts, reveal)


# ---------------------------------------------------------------- hidden inputs

def make_hidden_batchnorm_inputs(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x of shape (4, 5, 5, 3) float32 with gamma and beta of shape (3,), built so that every
    formula in the catalogue is far (>> 1e-4) from the right one and from each other:

    - one channel with variance about 1e-3, comparable to eps: eps inside or outside the
      root, or missing, changes that channel by whole percents;
    - its offset small (|offset| <= 0.5), so that a correct var = mean(x**2) - mean(x)**2
      in float32 does not lose the 1e-4 to cancellation;
    - the other channels with variances near 0.4 and 5 (not 1, so dividing by var is not
      dividing by its root) and offsets far from 0 (so skipping the mean shows);
    - gamma in [1.2, 2] and beta in ±[0.2, 0.8], so gamma != 1, beta != 0, and gamma - beta
      >= 0.4 (a swap shows);
    - 100 values per channel, so ddof=1 changes the scale by 0.5%.
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(3)
    scale = np.array([rng.uniform(0.02, 0.04), rng.uniform(0.55, 0.8), rng.uniform(1.8, 2.6)])[order]
    offset = (np.array([rng.uniform(0.1, 0.5), rng.uniform(1.0, 3.0), rng.uniform(1.0, 3.0)])
              * rng.choice([-1.0, 1.0], size=3))[order]
    x = offset + scale * rng.standard_normal((4, 5, 5, 3))
    gamma = rng.uniform(1.2, 2.0, size=3)
    beta = rng.uniform(0.2, 0.8, size=3) * rng.choice([-1.0, 1.0], size=3)
    return x.astype(np.float32), gamma.astype(np.float32), beta.astype(np.float32)
