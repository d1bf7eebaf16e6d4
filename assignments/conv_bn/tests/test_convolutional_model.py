"""convolutional_model: two Conv -> BN -> ReLU -> MaxPool blocks, functional API."""
import numpy as np

from grader.checks.architecture import expect_architecture, expect_bn_after_conv
from grader.checks.models import expect_input_shape, expect_same_outputs
from grader.testing import depends, exercise, hidden, points, title

pytestmark = exercise("convolutional_model")
INPUT_SHAPE = (64, 64, 3)
# The exercise lets the input shape vary, so the output test varies it too: a model that
# hard-codes (64, 64, 3) loses that test's points. The shape itself is never shown to students.
OTHER_SHAPE = (48, 32, 3)


@points(4)
def test_layer_graph(submission, reference):
    found = submission.model("convolutional_model", INPUT_SHAPE, expected="a functional tf.keras.Model")
    expect_architecture(reference.convolutional_model(INPUT_SHAPE), found, exercise="convolutional_model")
    expect_bn_after_conv(found)


@points(2)
@title("output on random inputs")
@depends("test_layer_graph")
def test_output_on_hidden_inputs(submission, reference, hidden_rng):
    x = hidden_rng.normal(0.0, 1.0, size=(4, *INPUT_SHAPE)).astype(np.float32)
    student = submission.model("convolutional_model", INPUT_SHAPE)
    ref = reference.convolutional_model(INPUT_SHAPE)
    expect_same_outputs(ref, student, x, training=False, what="inference output")
    expect_same_outputs(ref, student, x, training=True, what="training output")


# Hidden, so that the other shape stays out of the student kit (which ships visible tests).
@points(1)
@hidden
@title("output for another input shape")
@depends("test_layer_graph")
def test_output_for_another_input_shape(submission, reference, hidden_rng):
    other = hidden_rng.normal(0.0, 1.0, size=(4, *OTHER_SHAPE)).astype(np.float32)
    student = submission.model("convolutional_model", OTHER_SHAPE)
    expect_input_shape(student, OTHER_SHAPE, function="convolutional_model", usual=INPUT_SHAPE)
    ref = reference.convolutional_model(OTHER_SHAPE)
    expect_same_outputs(ref, student, other, training=False, what="inference output on other images")
    expect_same_outputs(ref, student, other, training=True, what="training output on other images")
