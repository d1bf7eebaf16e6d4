"""The batch-norm check: each usual mistake, written the way a student writes it, gets its
own diagnosis and hint; the right answer passes; the reference agrees with Keras."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from grader.checks import CheckFailed
from grader.checks.arrays import within_tolerance
from grader.checks.batchnorm import ATOL, RTOL, expect_batchnorm, make_hidden_batchnorm_inputs
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's reference/ (never installed)
from reference.conv_bn import batchnorm_forward as reference_batchnorm  # noqa: E402 - the solutions, not in grader/

SEEDS = range(8)
EPS = 1e-3
AXES = (0, 1, 2)
ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- student implementations

def correct(x, gamma, beta, eps=1e-3):
    mean = np.mean(x, axis=AXES)
    var = np.var(x, axis=AXES)
    return gamma * (x - mean) / np.sqrt(var + eps) + beta


def correct_one_pass_variance(x, gamma, beta, eps=1e-3):
    """E[x^2] - E[x]^2 in float32: right, if numerically naive; must still pass."""
    mean = x.mean(axis=AXES, keepdims=True)
    var = (x * x).mean(axis=AXES, keepdims=True) - mean * mean
    return gamma * (x - mean) / np.sqrt(var + eps) + beta


def correct_float64(x, gamma, beta, eps=1e-3):
    return correct(x.astype(np.float64), gamma.astype(np.float64), beta.astype(np.float64), eps)


def over_last_axis(x, gamma, beta, eps=1e-3):
    mean, var = x.mean(axis=-1, keepdims=True), x.var(axis=-1, keepdims=True)
    return gamma * (x - mean) / np.sqrt(var + eps) + beta


def per_sample(x, gamma, beta, eps=1e-3):
    mean, var = x.mean(axis=(1, 2, 3), keepdims=True), x.var(axis=(1, 2, 3), keepdims=True)
    return gamma * (x - mean) / np.sqrt(var + eps) + beta


def over_axis_0(x, gamma, beta, eps=1e-3):
    mean, var = x.mean(axis=0), x.var(axis=0)
    return gamma * (x - mean) / np.sqrt(var + eps) + beta


def over_everything(x, gamma, beta, eps=1e-3):
    return gamma * (x - x.mean()) / np.sqrt(x.var() + eps) + beta


def eps_outside_sqrt(x, gamma, beta, eps=1e-3):
    mean, var = x.mean(axis=AXES), x.var(axis=AXES)
    return gamma * (x - mean) / (np.sqrt(var) + eps) + beta


def gamma_beta_swapped(x, gamma, beta, eps=1e-3):
    mean, var = x.mean(axis=AXES), x.var(axis=AXES)
    return beta * (x - mean) / np.sqrt(var + eps) + gamma


def inference_stats(x, gamma, beta, eps=1e-3):
    moving_mean, moving_var = np.zeros_like(gamma), np.ones_like(gamma)
    return gamma * (x - moving_mean) / np.sqrt(moving_var + eps) + beta


def sample_var(x, gamma, beta, eps=1e-3):
    mean, var = x.mean(axis=AXES), x.var(axis=AXES, ddof=1)
    return gamma * (x - mean) / np.sqrt(var + eps) + beta


def no_eps(x, gamma, beta, eps=1e-3):
    mean, var = x.mean(axis=AXES), x.var(axis=AXES)
    return gamma * (x - mean) / np.sqrt(var) + beta


def no_sqrt(x, gamma, beta, eps=1e-3):
    mean, var = x.mean(axis=AXES), x.var(axis=AXES)
    return gamma * (x - mean) / (var + eps) + beta


def no_gamma_beta(x, gamma, beta, eps=1e-3):
    mean, var = x.mean(axis=AXES), x.var(axis=AXES)
    return (x - mean) / np.sqrt(var + eps)


def integer_output(x, gamma, beta, eps=1e-3):
    return correct(x, gamma, beta, eps).astype(np.int64)


def returns_cache(x, gamma, beta, eps=1e-3):
    return correct(x, gamma, beta, eps), (x, gamma)


def returns_statistics_shape(x, gamma, beta, eps=1e-3):
    return correct(x, gamma, beta, eps).mean(axis=-1)


def slightly_off(x, gamma, beta, eps=1e-3):
    return correct(x, gamma, beta, eps) + np.float32(1e-3)


def verdict(fn, seed=0, *, reveal=False) -> CheckFailed | None:
    x, gamma, beta = make_hidden_batchnorm_inputs(seed)
    found = fn(x.copy(), gamma.copy(), beta.copy(), EPS)
    try:
        expect_batchnorm(x, gamma, beta, EPS, found, expected=reference_batchnorm(x, gamma, beta, EPS), reveal=reveal)
    except CheckFailed as failure:
        return failure
    return None


# ---------------------------------------------------------------- the right answer passes

@pytest.mark.parametrize("fn", [correct, correct_one_pass_variance, correct_float64])
@pytest.mark.parametrize("seed", SEEDS)
def test_correct_implementation_passes(fn, seed):
    assert verdict(fn, seed) is None


def test_reference_output_has_batch_statistics_gamma_and_beta():
    x, gamma, beta = make_hidden_batchnorm_inputs(2)
    out = reference_batchnorm(x, gamma, beta)
    assert out.dtype == np.float32 and out.shape == x.shape
    out = out.astype(np.float64)
    assert np.allclose(out.mean(axis=AXES), beta, atol=1e-5)
    assert np.all(out.std(axis=AXES) < gamma)  # eps shrinks every channel, the small one most


# ---------------------------------------------------------------- every mistake, diagnosed

MISTAKES = [
    (over_last_axis, "wrong_axis", "axis=3", "every axis except the last"),
    (per_sample, "wrong_axis", "each sample separately", "every axis except the last"),
    (over_axis_0, "wrong_axis", "axis=0", "every axis except the last"),
    (over_everything, "wrong_axis", "axis=None", "every axis except the last"),
    (eps_outside_sqrt, "eps_outside_sqrt", "outside the square root", "inside the square root"),
    (gamma_beta_swapped, "gamma_beta_swapped", "swapped", "gamma * (x - mean)"),
    (inference_stats, "inference_stats", "mean 0 and variance 1", "from the batch x"),
    (sample_var, "sample_var", "ddof=1", "population variance"),
    (no_eps, "no_eps", "without eps", "np.sqrt(var + eps)"),
    (no_sqrt, "no_sqrt", "instead of the standard deviation", "np.sqrt(var + eps)"),
    (no_gamma_beta, "no_gamma_beta", "without gamma and beta", "gamma * x_hat + beta"),
    (integer_output, "wrong_dtype", "int64", "float32"),
    (returns_cache, "not_an_array", "a tuple of 2 items", "cache"),
    (returns_statistics_shape, "wrong_shape", "the same as x", "shape"),
    (slightly_off, "wrong_values", "largest absolute difference is 0.001", "np.sqrt(var + eps)"),
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


def test_eps_message_explains_the_bound_on_the_divisor():
    failure = verdict(eps_outside_sqrt)
    assert "sqrt(eps) = 0.0316" in failure.message and "eps = 0.001" in failure.message


def test_diagnosis_follows_the_eps_that_was_passed():
    x, gamma, beta = make_hidden_batchnorm_inputs(0)
    with pytest.raises(CheckFailed) as failure:
        expect_batchnorm(x, gamma, beta, 1e-2, eps_outside_sqrt(x, gamma, beta, 1e-2),
                         expected=reference_batchnorm(x, gamma, beta, 1e-2), reveal=False)
    assert failure.value.diagnosis == "eps_outside_sqrt"
    expect_batchnorm(x, gamma, beta, 1e-2, correct(x, gamma, beta, 1e-2),
                     expected=reference_batchnorm(x, gamma, beta, 1e-2), reveal=False)


# ---------------------------------------------------------------- hidden values stay hidden

def test_unknown_mismatch_reveals_expected_value_only_when_allowed():
    x, gamma, beta = make_hidden_batchnorm_inputs(0)
    shown = verdict(slightly_off, reveal=True).message
    index, found_text, expected_text = re.search(
        r"at index (\([\d, ]+\)) \(found (\S+), expected (\S+)\)", shown).groups()
    expected = reference_batchnorm(x, gamma, beta)[tuple(int(i) for i in re.findall(r"\d+", index))]
    assert abs(float(expected_text) - expected) < 1e-5
    hidden = verdict(slightly_off, reveal=False)
    assert f"at index {index}" in hidden.message
    for text in (expected_text, found_text):
        assert text not in hidden.message + hidden.hint


@pytest.mark.parametrize("fn", [m[0] for m in MISTAKES])
def test_hidden_messages_quote_no_expected_value(fn):
    x, gamma, beta = make_hidden_batchnorm_inputs(0)
    expected = reference_batchnorm(x, gamma, beta).ravel()
    failure = verdict(fn, reveal=False)
    for number in re.findall(r"-?\d+\.\d{3,}", failure.message + " " + failure.hint):
        assert not np.any(np.isclose(expected, float(number), rtol=1e-5, atol=0)), number


# ---------------------------------------------------------------- hidden inputs

@pytest.mark.parametrize("seed", range(20))
def test_hidden_inputs_have_what_the_diagnoses_need(seed):
    x, gamma, beta = make_hidden_batchnorm_inputs(seed)
    assert x.shape == (4, 5, 5, 3) and gamma.shape == beta.shape == (3,)
    assert x.dtype == gamma.dtype == beta.dtype == np.float32
    var = x.var(axis=AXES)
    assert var.min() < 3 * EPS  # eps placement shows on this channel
    assert np.all(np.abs(var - 1) > 0.2)  # dividing by var is not dividing by its root
    assert not np.allclose(gamma, 1) and not np.allclose(beta, 0)
    assert np.all(np.abs(gamma - beta) > 0.3)


DISTINCT = [m for m in MISTAKES if m[1] not in {"wrong_dtype", "not_an_array", "wrong_shape",
                                                  "wrong_values"}]


@pytest.mark.parametrize("seed", range(20))
def test_every_mistake_is_distinguishable_on_hidden_inputs(seed):
    """Each wrong formula differs beyond tolerance from the right answer and from every
    formula with another diagnosis, so a match names one mistake only."""
    x, gamma, beta = make_hidden_batchnorm_inputs(seed)
    outputs = [(label, fn(x, gamma, beta, EPS)) for fn, label, _, _ in DISTINCT]
    outputs.append(("correct", reference_batchnorm(x, gamma, beta)))
    for i, (label_a, a) in enumerate(outputs):
        for label_b, b in outputs[i + 1:]:
            if label_a != label_b:
                assert not within_tolerance(a, b, rtol=RTOL, atol=ATOL), (label_a, label_b)
    for fn, label, _, _ in MISTAKES:
        assert verdict(fn, seed).diagnosis == label


# ---------------------------------------------------------------- agreement with Keras

KERAS_SCRIPT = """
import json
import numpy as np
from grader.checks.batchnorm import make_hidden_batchnorm_inputs
from reference.conv_bn import batchnorm_forward as reference_batchnorm, batchnorm_forward_keras as keras_batchnorm
cases = [make_hidden_batchnorm_inputs(seed) + (1e-3,) for seed in range(3)]
rng = np.random.default_rng(0)
cases.append((rng.normal(2.0, 3.0, (8, 6, 6, 4)).astype(np.float32),
              rng.uniform(0.5, 2, 4).astype(np.float32), rng.normal(0, 1, 4).astype(np.float32), 1e-5))
cases.append((rng.normal(-1.0, 0.5, (16, 7)).astype(np.float32),
              rng.uniform(0.5, 2, 7).astype(np.float32), rng.normal(0, 1, 7).astype(np.float32), 1e-3))
print(json.dumps([float(np.max(np.abs(keras_batchnorm(x, g, b, e) - reference_batchnorm(x, g, b, e))))
                  for x, g, b, e in cases]))
"""


@pytest.mark.slow
def test_reference_matches_keras_batchnormalization_in_training_mode():
    """In a child process: a process that has run a TensorFlow op hangs in any child it
    forks later, and other tests in this session may start the sandbox worker."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "-1"}
    done = subprocess.run([sys.executable, "-c", KERAS_SCRIPT], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    differences = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(differences) == 5
    assert max(differences) < 1e-4, differences
