"""happyModel: Conv2D -> BatchNormalization -> ReLU as a Sequential model."""
import numpy as np

from grader.checks.architecture import expect_architecture
from grader.checks.models import expect_same_outputs
from grader.testing import depends, exercise, points, title

pytestmark = exercise("happyModel")


@points(4)
def test_layer_order(submission, reference):
    expect_architecture(reference.happyModel(), submission.model("happyModel"), exercise="happyModel")


@points(3)
@title("output on random inputs")
@depends("test_layer_order")
def test_output_on_hidden_inputs(submission, reference, hidden_rng):
    x = hidden_rng.normal(0.0, 1.0, size=(4, 64, 64, 3)).astype(np.float32)
    student = submission.model("happyModel")
    ref = reference.happyModel()
    expect_same_outputs(ref, student, x, training=False, what="inference output")
    expect_same_outputs(ref, student, x, training=True, what="training output")
