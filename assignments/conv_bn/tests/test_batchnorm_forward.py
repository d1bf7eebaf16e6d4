"""batchnorm_forward: training-mode batch normalization over every axis but the last."""
import numpy as np

from grader.checks.arrays import expect_close
from grader.checks.batchnorm import expect_batchnorm, make_hidden_batchnorm_inputs
from grader.testing import exercise, hidden, points, title

pytestmark = exercise("batchnorm_forward")


@points(3)
@title("matches Keras BatchNormalization(training=True)")
def test_matches_keras_batchnorm_training(submission, reference, hidden_rng):
    x, gamma, beta = make_hidden_batchnorm_inputs(int(hidden_rng.integers(0, 2**31)))
    found = submission.call("batchnorm_forward", x, gamma, beta)
    expect_batchnorm(x, gamma, beta, 1e-3, found, expected=reference.batchnorm_forward(x, gamma, beta, 1e-3),
                     reveal=False)
    # The NumPy reference stands in for Keras; confirm the two agree on these very inputs.
    expect_close(np.asarray(found), reference.batchnorm_forward_keras(x, gamma, beta, 1e-3), name="your output vs Keras",
                 rtol=0.0, atol=1e-4, reveal=False)


@points(1)
@hidden
def test_other_ranks_and_eps(submission, reference, hidden_rng):
    """Dense activations (N, C) and sequences (N, T, C) normalize the same way, with any eps."""
    for shape in ((16, 5), (3, 7, 4)):
        x = (hidden_rng.normal(size=shape) * hidden_rng.uniform(0.5, 3.0, shape[-1])
             + hidden_rng.uniform(-2, 2, shape[-1])).astype(np.float32)
        gamma = hidden_rng.uniform(0.5, 2.0, shape[-1]).astype(np.float32)
        beta = hidden_rng.uniform(-1.0, 1.0, shape[-1]).astype(np.float32)
        found = submission.call("batchnorm_forward", x, gamma, beta, eps=1e-5)
        expect_batchnorm(x, gamma, beta, 1e-5, found, expected=reference.batchnorm_forward(x, gamma, beta, 1e-5),
                         reveal=False)
