"""batchnorm_forward: what nn.BatchNorm2d computes in train() mode, in NumPy, channels on axis 1."""
import numpy as np

from grader.checks.arrays import expect_close
from grader.sandbox.errors import StudentCodeError
from grader.testing import exercise, hidden, points, title

pytestmark = exercise("batchnorm_forward")


def _call(submission, nchw, *args, **kwargs):
    try:
        return submission.call("batchnorm_forward", *args, **kwargs)
    except StudentCodeError as exc:
        nchw.explain_broadcast(exc, what="gamma, beta and the batch statistics must line up with axis 1.")


@points(3)
@title("matches nn.BatchNorm2d in train() mode")
def test_matches_batchnorm2d_training(submission, reference, nchw, hidden_rng):
    x, gamma, beta = nchw.batchnorm_inputs(int(hidden_rng.integers(0, 2**31)))
    found = _call(submission, nchw, x, gamma, beta)
    nchw.expect_batchnorm(x, gamma, beta, 1e-5, found, expected=reference.batchnorm_forward(x, gamma, beta, 1e-5),
                          reveal=False)
    # The NumPy check stands in for PyTorch; confirm the two agree on these very inputs.
    expect_close(np.asarray(found), reference.batchnorm_forward_torch(x, gamma, beta, 1e-5),
                 name="your output vs F.batch_norm(training=True)", rtol=0.0, atol=1e-4, reveal=False)


@points(1)
@hidden
def test_other_ranks_and_eps(submission, reference, nchw, hidden_rng):
    """(N, C) as BatchNorm1d sees a Linear's output, and (N, C, L) sequences, with another eps."""
    for shape in ((16, 5), (3, 4, 7)):
        channels = shape[1]
        scale = hidden_rng.uniform(0.5, 3.0, channels).reshape((1, -1) + (1,) * (len(shape) - 2))
        offset = hidden_rng.uniform(-2, 2, channels).reshape(scale.shape)
        x = (hidden_rng.normal(size=shape) * scale + offset).astype(np.float32)
        gamma = hidden_rng.uniform(0.5, 2.0, channels).astype(np.float32)
        beta = hidden_rng.uniform(-1.0, 1.0, channels).astype(np.float32)
        found = _call(submission, nchw, x, gamma, beta, eps=1e-3)
        nchw.expect_batchnorm(x, gamma, beta, 1e-3, found, expected=reference.batchnorm_forward(x, gamma, beta, 1e-3),
                              reveal=False)
