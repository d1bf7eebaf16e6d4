"""convolutional_model: two Conv -> BN -> ReLU -> MaxPool blocks, functional API."""
import numpy as np

from grader.checks.architecture import expect_architecture, expect_bn_after_conv
from grader.checks.models import expect_same_outputs
from grader.testing import CheckFailed, depends, exercise, points

pytestmark = exercise("convolutional_model")
INPUT_SHAPE = (64, 64, 3)
# The exercise lets the input shape vary, so the hidden test varies it too: a model that
# hard-codes (64, 64, 3) loses this test's points. Never shown to students.
OTHER_SHAPE = (48, 32, 3)


def _expect_built_for(model, shape: tuple) -> None:
    """The model's input must follow the `input_shape` argument. Checked before any
    output, because a hard-coded shape would otherwise surface as a Keras error about
    weight or batch shapes; the message does not reveal the hidden shape."""
    found = tuple(model.inputs[0].shape)[1:]
    if found != tuple(shape):
        raise CheckFailed(
            f"Called with another input shape, `convolutional_model` returned a model whose input is "
            f"{'still ' * (found == INPUT_SHAPE)}{'x'.join(map(str, found))}, not the shape it was given: the "
            f"model does not follow its `input_shape` argument, so it only works for images of one size.",
            hint="build the input from the argument: `tf.keras.Input(shape=input_shape)`, not a fixed shape.",
            diagnosis="input_shape_ignored")


@points(4)
def test_layer_graph(submission, reference):
    found = submission.model("convolutional_model", INPUT_SHAPE, expected="a functional tf.keras.Model")
    expect_architecture(reference.convolutional_model(INPUT_SHAPE), found, exercise="convolutional_model")
    expect_bn_after_conv(found)


@points(3)
@depends("test_layer_graph")
def test_output_on_hidden_inputs(submission, reference, hidden_rng):
    x = hidden_rng.normal(0.0, 1.0, size=(4, *INPUT_SHAPE)).astype(np.float32)
    student = submission.model("convolutional_model", INPUT_SHAPE)
    ref = reference.convolutional_model(INPUT_SHAPE)
    expect_same_outputs(ref, student, x, training=False, what="inference output")
    expect_same_outputs(ref, student, x, training=True, what="training output")
    other = hidden_rng.normal(0.0, 1.0, size=(4, *OTHER_SHAPE)).astype(np.float32)
    student = submission.model("convolutional_model", OTHER_SHAPE)
    _expect_built_for(student, OTHER_SHAPE)
    ref = reference.convolutional_model(OTHER_SHAPE)
    expect_same_outputs(ref, student, other, training=False, what="inference output on other images")
    expect_same_outputs(ref, student, other, training=True, what="training output on other images")
