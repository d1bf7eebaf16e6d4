"""happyModel: ZeroPadding2D -> Conv2D -> BatchNormalization -> ReLU -> MaxPool -> Flatten
-> Dense(1, sigmoid), Sequential, on 64x64x3 images (tf_keras, Keras 2 API)."""
import numpy as np

from grader.checks.architecture import expect_architecture
from grader.checks.models import expect_same_outputs
from grader.testing import depends, exercise, points

pytestmark = exercise("happyModel")
INPUT_SHAPE = (64, 64, 3)


@points(4)
def test_layer_order(submission, reference):
    found = submission.model("happyModel", expected="a tf.keras.Sequential model")
    expect_architecture(reference.happyModel(), found, exercise="happyModel")


@points(3)
@depends("test_layer_order")
def test_output_on_hidden_inputs(submission, reference, hidden_rng):
    x = hidden_rng.normal(0.0, 1.0, size=(4, *INPUT_SHAPE)).astype(np.float32)
    student = submission.model("happyModel")
    ref = reference.happyModel()
    expect_same_outputs(ref, student, x, training=False, what="inference output")
    expect_same_outputs(ref, student, x, training=True, what="training output")
