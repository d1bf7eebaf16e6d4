"""happy_model: ZeroPad2d -> Conv2d -> BatchNorm2d -> ReLU -> MaxPool2d -> Flatten -> Linear -> Sigmoid."""
import numpy as np

from grader.checks.architecture import expect_architecture
from grader.testing import depends, exercise, points, title

pytestmark = exercise("happy_model")


@points(4)
def test_layer_order(submission, reference, nchw):
    found = submission.model("happy_model", expected="a torch nn.Module")
    nchw.expect_bn_reads_conv(found)
    expect_architecture(reference.happy_model(), found, exercise="happy_model")


@points(3)
@title("output on random inputs, in eval() and train() modes")
@depends("test_layer_order")
def test_output_on_hidden_inputs(submission, reference, nchw, hidden_rng):
    x = hidden_rng.normal(0.0, 1.0, size=(4, 3, 64, 64)).astype(np.float32)
    nchw.expect_outputs_in_both_modes(reference.happy_model(), submission.model("happy_model"), x)
