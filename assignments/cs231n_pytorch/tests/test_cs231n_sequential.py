"""The Sequential-API three-layer ConvNet and its optimizer, built at the top level of a cell
that also trains: read with `submission.variable`, which never runs the training."""
import numpy as np

from grader.checks import CheckFailed
from grader.checks.architecture import expect_architecture
from grader.checks.models import expect_same_outputs
from grader.checks.optimizer import expect_optimizer
from grader.testing import depends, exercise, hidden, points, title

pytestmark = exercise("sequential_convnet")
# The cell above the TODO sets `channel_1 = 32` and `channel_2 = 16`: the model the exercise
# describes is the reference at these values. Built from the test's own constants, never
# from the student's, it is the same model for every submission (a student kit records it).
NOTEBOOK_CHANNELS = (32, 16)
NESTEROV = "The exercise asks for Nesterov momentum: optim.SGD(model.parameters(), lr=learning_rate, " \
           "momentum=0.9, nesterov=True)."


def _model(submission, convnet):
    return submission.variable("model", exercise="sequential_convnet", marker=convnet.marker,
                               expected="a torch nn.Module")


def _channels(submission, convnet):
    return [int(submission.variable(n, exercise="sequential_convnet", marker=convnet.marker))
            for n in ("channel_1", "channel_2")]


@points(3)
@title("the nn.Sequential model")
def test_sequential_model(submission, reference, convnet):
    found = _model(submission, convnet)
    c1, c2 = _channels(submission, convnet)
    convnet.expect_layers(found, channel_2=c2, num_classes=10)
    convnet.expect_relus(found)
    if (c1, c2) != NOTEBOOK_CHANNELS:
        raise CheckFailed(
            f"The cell sets channel_1 = {c1}, channel_2 = {c2}; the exercise gives channel_1 = "
            f"{NOTEBOOK_CHANNELS[0]}, channel_2 = {NOTEBOOK_CHANNELS[1]} above the TODO, and the model is "
            "checked with those.", hint=f"Keep channel_1 = {NOTEBOOK_CHANNELS[0]} and channel_2 = "
            f"{NOTEBOOK_CHANNELS[1]}; try other sizes in Part V.", diagnosis="channels_changed")
    expect_architecture(reference.sequential_convnet(*NOTEBOOK_CHANNELS), found, exercise="sequential_convnet")


@points(1)
@hidden
@title("the model's scores, with the reference's weights")
@depends("test_sequential_model")
def test_sequential_scores(submission, reference, convnet, hidden_rng):
    x = hidden_rng.normal(0.0, 1.0, size=(3, 3, 32, 32)).astype(np.float32)
    expect_same_outputs(reference.sequential_convnet(*NOTEBOOK_CHANNELS), _model(submission, convnet), x,
                        training=False, rtol=1e-4, atol=1e-4)


@points(3)
@title("SGD with Nesterov momentum 0.9 over the model's parameters")
def test_optimizer(submission, convnet):
    found = submission.variable("optimizer", exercise="sequential_convnet", marker=convnet.marker)
    model = _model(submission, convnet)
    expect_optimizer(found, cls="SGD", momentum=0.9, nesterov=True, hints={"nesterov": NESTEROV, "momentum": NESTEROV},
                     parameters=[tuple(p.shape) for p in model.parameters()])
