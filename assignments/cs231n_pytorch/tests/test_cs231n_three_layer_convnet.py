"""three_layer_convnet(x, params): the forward pass with the weights it is given."""
import numpy as np
import torch

from grader.checks import CheckFailed
from grader.checks.arrays import expect_close, expect_numbers, within_tolerance
from grader.sandbox.errors import StudentCodeError
from grader.testing import exercise, hidden, points, title

pytestmark = exercise("three_layer_convnet")


def _scores(submission, x, params):
    try:
        found = submission.call("three_layer_convnet", torch.from_numpy(x), [torch.from_numpy(p) for p in params])
    except StudentCodeError as exc:
        _explain_error(submission, exc)
        raise
    return expect_numbers(found, name="the returned scores")


def _explain_error(submission, exc: StudentCodeError) -> None:
    text = f"{exc.type}: {exc.detail}"
    if "shapes cannot be multiplied" not in text and "size mismatch" not in text:
        return
    source = submission.source("three_layer_convnet")
    if "F.linear" in source or "linear(" in source:
        raise CheckFailed(f"three_layer_convnet raised {text}. F.linear(x, w, b) computes x @ w.T + b, but fc_w "
                          "here is (channel_2 * H * W, num_classes): it is meant for x.mm(fc_w) + fc_b.",
                          hint="Write flatten(x).mm(fc_w) + fc_b (or F.linear(x, fc_w.t(), fc_b)).",
                          diagnosis="linear_without_transpose")
    raise CheckFailed(f"three_layer_convnet raised {text}. The flattened activations do not fit fc_w: fc_w expects "
                      "channel_2 * H * W values per image, which the convolutions only keep with padding=2 (5x5) "
                      "and padding=1 (3x3).", hint="F.conv2d(x, conv_w1, conv_b1, padding=2), then padding=1.",
                      diagnosis="padding_missing")


def _inputs(convnet, rng, n, c_in, c1, c2, h, w, k):
    """Images and weights drawn from `rng` alone: what a test hands the reference is fixed
    by the test's code, so a student kit can answer it from a recording."""
    params = convnet.random_params(int(rng.integers(2**31)), c_in, c1, c2, h, w, k)
    x = rng.normal(0.0, 1.0, size=(n, c_in, h, w)).astype(np.float32)
    return x, params


def _tensors(x, params):
    return torch.from_numpy(x), [torch.from_numpy(p) for p in params]


def _judge(submission, x, params, expected, mistakes, *, reveal):
    """The student's scores against the reference's, and against each typical wrong
    version's on the same inputs, so a mismatch is named by the mistake it matches."""
    n, k = x.shape[0], params[-1].shape[0]
    found = _scores(submission, x, params)
    if found.shape == (n, 10) and k != 10:
        raise CheckFailed(f"The scores have 10 columns for a fc_w with {k}: the number of classes is fc_w's "
                          "second dimension, never a fixed 10.", diagnosis="hardcoded_classes")
    if found.shape == expected.shape and not within_tolerance(found, expected, rtol=1e-4, atol=1e-4):
        for label, wrong in mistakes.items():
            if within_tolerance(found, wrong.numpy(), rtol=1e-4, atol=1e-4):
                raise CheckFailed(_MISTAKES[label][0], hint=_MISTAKES[label][1], diagnosis=label)
        zeroed = [np.zeros_like(p) for p in params]
        if within_tolerance(_scores(submission, x, zeroed), found, rtol=1e-6, atol=1e-6):
            raise CheckFailed("The scores do not change when every weight in `params` is zero: the function does "
                              "not use the weights it is given.", hint="Unpack them with conv_w1, conv_b1, conv_w2, "
                              "conv_b2, fc_w, fc_b = params and use those.", diagnosis="params_not_used")
    expect_close(found, expected, name="three_layer_convnet(x, params)", rtol=1e-4, atol=1e-4, reveal=reveal)


_MISTAKES = {
    "no_relu_1": ("The first convolution's output is not passed through a ReLU.", "x = F.relu(F.conv2d(...))."),
    "no_relu_2": ("The second convolution's output is not passed through a ReLU.", "Apply F.relu before flattening."),
    "relu_after_fc": ("The scores go through a ReLU: class scores must be the fully connected layer's output as it "
                      "is (they may be negative).", "Return flatten(x).mm(fc_w) + fc_b without a ReLU."),
    "no_biases": ("The biases conv_b1, conv_b2 and fc_b are not added.", "Pass conv_b1/conv_b2 to F.conv2d and add fc_b."),
}


@points(2)
@title("scores on the notebook's shapes")
def test_scores(submission, reference, convnet):
    x, params = _inputs(convnet, np.random.default_rng(231), 4, 3, 6, 9, 32, 32, 10)
    tx, tp = _tensors(x, params)
    expected = reference.three_layer_convnet(tx, tp).numpy()
    _judge(submission, x, params, expected, reference.three_layer_convnet_mistakes(tx, tp), reveal=True)


@points(3)
@hidden
@title("scores with other batch, image, channel and class sizes")
def test_scores_other_sizes(submission, reference, convnet, hidden_rng):
    c1, c2 = (int(v) for v in hidden_rng.integers(4, 9, size=2))
    side = int(hidden_rng.choice([8, 12, 16]))
    k = int(hidden_rng.integers(4, 8))
    n = int(hidden_rng.integers(2, 6))
    x, params = _inputs(convnet, hidden_rng, n, 2, c1, c2, side, side + 4, k)
    tx, tp = _tensors(x, params)
    expected = reference.three_layer_convnet(tx, tp).numpy()
    _judge(submission, x, params, expected, reference.three_layer_convnet_mistakes(tx, tp), reveal=False)
