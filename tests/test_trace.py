"""`submission.trace`: which call of a student's own building blocks fed which argument of
the next, on a real U-Net-like composite in a course-layout notebook, through the real
sandbox (the wrapping happens in the child; only data comes back).

The composite mirrors the course's U-Net: `conv_block` returns (next_layer, skip), and
each `upsampling_block` must be paired with the skip connection of the encoder block of
the same size, in mirror order. The wrong notebook pairs the first decoder block with the
second encoder block's skip, so the model does not build: the trace still returns every
call made before the error, and the error itself.
"""
from __future__ import annotations

import pytest

from conftest import notebook
from grader.assignment.spec import load_assignment
from grader.run.calltrace import Source
from grader.sandbox.errors import MissingFunction
from grader.run.submission import Submission

SPEC = """\
name = "trace_demo"
exercises = ["conv_block", "upsampling_block", "unet_model"]
reference = "reference.py"
call_timeout = 30
"""

IMPORTS = """\
import numpy as np
import tensorflow as tf
from tensorflow.keras.layers import Input, Conv2D, MaxPooling2D, Dropout, Conv2DTranspose, concatenate
from test_utils import summary, comparator
"""

BLOCKS = '''\
# UNQ_C1
def conv_block(inputs=None, n_filters=32, dropout_prob=0, max_pooling=True):
    conv = Conv2D(n_filters, 3, activation='relu', padding='same', kernel_initializer='he_normal')(inputs)
    conv = Conv2D(n_filters, 3, activation='relu', padding='same', kernel_initializer='he_normal')(conv)
    if dropout_prob > 0:
        conv = Dropout(dropout_prob)(conv)
    if max_pooling:
        next_layer = MaxPooling2D(pool_size=(2, 2))(conv)
    else:
        next_layer = conv
    skip_connection = conv
    return next_layer, skip_connection


# UNQ_C2
def upsampling_block(expansive_input, contractive_input, n_filters=32):
    up = Conv2DTranspose(n_filters, 3, strides=2, padding='same')(expansive_input)
    merge = concatenate([up, contractive_input], axis=3)
    conv = Conv2D(n_filters, 3, activation='relu', padding='same', kernel_initializer='he_normal')(merge)
    conv = Conv2D(n_filters, 3, activation='relu', padding='same', kernel_initializer='he_normal')(conv)
    return conv
'''

UNET = '''\
# UNQ_C3
def unet_model(input_size=(32, 32, 3), n_filters=4, n_classes=5):
    inputs = Input(input_size)
    cblock1 = conv_block(inputs, n_filters)
    cblock2 = conv_block(cblock1[0], n_filters * 2)
    cblock3 = conv_block(cblock2[0], n_filters * 4, dropout_prob=0.3, max_pooling=False)
    ublock4 = upsampling_block(cblock3[0], cblock2[1], n_filters * 2)
    ublock5 = upsampling_block(ublock4, cblock1[1], n_filters)
    conv = Conv2D(n_filters, 3, activation='relu', padding='same', kernel_initializer='he_normal')(ublock5)
    conv = Conv2D(n_classes, 1, padding='same')(conv)
    return tf.keras.Model(inputs=inputs, outputs=conv)
'''

# The first decoder block paired with the first encoder block's skip (32x32) instead of the
# second's (16x16): Concatenate cannot join a 16x16 map with a 32x32 one.
UNET_WRONG_PAIR = UNET.replace("upsampling_block(cblock3[0], cblock2[1], n_filters * 2)",
                               "upsampling_block(cblock3[0], cblock1[1], n_filters * 2)")

DATA = """\
train_dataset = tf.data.Dataset.list_files('./data/CameraRGB/*.png')
model = unet_model((96, 128, 3))
model.compile(optimizer='adam', loss='sparse_categorical_crossentropy')
history = model.fit(train_dataset, epochs=40)
"""

WATCH = ["conv_block", "upsampling_block"]


@pytest.fixture(scope="module")
def assignment(tmp_path_factory):
    folder = tmp_path_factory.mktemp("trace_demo")
    (folder / "tests").mkdir()
    (folder / "reference.py").write_text(IMPORTS.replace("from test_utils import summary, comparator\n", "")
                                         + BLOCKS + UNET)
    (folder / "assignment.toml").write_text(SPEC)
    return load_assignment(folder)


def open_submission(tmp_path, assignment, worker, unet: str) -> Submission:
    path = notebook(tmp_path / "unet.ipynb", IMPORTS, BLOCKS, unet, DATA)
    return Submission(path, assignment, worker).open()


def test_a_correct_unet_traces_each_pairing(tmp_path, assignment, worker):
    submission = open_submission(tmp_path, assignment, worker, UNET)
    try:
        trace = submission.trace("unet_model", (32, 32, 3), watch=WATCH)
    finally:
        submission.close()
    assert trace.error is None, trace.error
    assert [str(c) for c in trace.calls] == ["conv_block call 1", "conv_block call 2", "conv_block call 3",
                                             "upsampling_block call 1", "upsampling_block call 2"]
    first = trace.call("conv_block", 1)
    assert first.arg("inputs").shape == (None, 32, 32, 3) and first.arg("inputs").source is None
    assert first.arg("n_filters").value == 4
    assert first.outputs == ((0, (None, 16, 16, 4)), (1, (None, 32, 32, 4)))
    assert trace.call("conv_block", 2).arg("inputs").source == Source("conv_block", 1, 0)
    third = trace.call("conv_block", 3)
    assert third.arg("dropout_prob").value == 0.3 and third.arg("max_pooling").value is False
    up1 = trace.call("upsampling_block", 1)
    assert up1.arg("expansive_input").source == Source("conv_block", 3, 0)
    assert up1.arg("contractive_input").source == Source("conv_block", 2, 1)
    assert trace.pairing("upsampling_block", 2, "expansive_input") == \
        "upsampling_block call 2's expansive_input is upsampling_block call 1's output"
    assert trace.pairing("upsampling_block", 2, "contractive_input") == \
        "upsampling_block call 2's contractive_input is conv_block call 1's output [1]"
    assert trace.returned == (("Functional", (None, 32, 32, 5)),)


def test_a_wrong_pairing_returns_the_calls_so_far_and_the_error(tmp_path, assignment, worker):
    submission = open_submission(tmp_path, assignment, worker, UNET_WRONG_PAIR)
    try:
        trace = submission.trace("unet_model", (32, 32, 3), watch=WATCH)
        # The wrapping was undone: the student's functions work as before afterwards.
        model = submission.model("unet_model", (32, 32, 3))
    except Exception as exc:  # the wrong U-Net does not build: a model call raises
        model = exc
    finally:
        submission.close()
    assert trace.error is not None
    assert trace.error.type == "ValueError", trace.error
    assert "[unet_model]" in trace.error.where or "[upsampling_block]" in trace.error.where, trace.error
    assert trace.returned == ()
    # Everything up to the failing call, which is marked as the one that raised.
    assert [str(c) for c in trace.calls] == ["conv_block call 1", "conv_block call 2", "conv_block call 3",
                                             "upsampling_block call 1"]
    failing = trace.calls[-1]
    assert failing.raised and not any(c.raised for c in trace.calls[:-1])
    assert failing.arg("contractive_input").source == Source("conv_block", 1, 1)
    assert failing.arg("contractive_input").shape == (None, 32, 32, 4)
    assert failing.arg("expansive_input").shape == (None, 8, 8, 16)
    assert trace.pairing("upsampling_block", 1, "contractive_input") == \
        "upsampling_block call 1's contractive_input is conv_block call 1's output [1]"
    assert not hasattr(model, "layers")  # still the student's own (unwrapped) error


def test_an_argument_computed_from_a_watched_output_names_the_layers_between(tmp_path, assignment, worker):
    unet = UNET.replace("upsampling_block(cblock3[0], cblock2[1], n_filters * 2)",
                        "upsampling_block(Dropout(0.5)(cblock3[0]), cblock2[1], n_filters * 2)")
    submission = open_submission(tmp_path, assignment, worker, unet)
    try:
        trace = submission.trace("unet_model", (32, 32, 3), watch=WATCH)
    finally:
        submission.close()
    assert trace.error is None, trace.error
    assert trace.call("upsampling_block", 1).arg("expansive_input").source == \
        Source("conv_block", 3, 0, via=("Dropout",))


def test_watching_a_function_the_notebook_lacks_is_named(tmp_path, assignment, worker):
    submission = open_submission(tmp_path, assignment, worker, UNET)
    try:
        with pytest.raises(MissingFunction, match="decoder_block"):
            submission.trace("unet_model", (32, 32, 3), watch=["conv_block", "decoder_block"])
    finally:
        submission.close()


def test_the_same_trace_under_tf_keras(tmp_path, keras2_worker):
    """Under `keras = "2"` the notebook's tf.keras is tf_keras (Keras 2): the pairings and
    the derived-through-layers sources read the same."""
    folder = tmp_path / "trace_demo_keras2"
    (folder / "tests").mkdir(parents=True)
    (folder / "reference.py").write_text("def unet_model():\n    return None\n")
    (folder / "assignment.toml").write_text(SPEC.replace('call_timeout = 30', 'call_timeout = 30\nkeras = "2"'))
    unet = UNET.replace("upsampling_block(cblock3[0], cblock2[1], n_filters * 2)",
                        "upsampling_block(Dropout(0.5)(cblock3[0]), cblock2[1], n_filters * 2)")
    path = notebook(tmp_path / "unet.ipynb", IMPORTS, BLOCKS, unet, DATA)
    submission = Submission(path, load_assignment(folder), keras2_worker).open()
    try:
        trace = submission.trace("unet_model", (32, 32, 3), watch=WATCH)
    finally:
        submission.close()
    assert trace.error is None, trace.error
    assert trace.call("upsampling_block", 1).arg("expansive_input").source == \
        Source("conv_block", 3, 0, via=("Dropout",))
    assert trace.call("upsampling_block", 2).arg("contractive_input").source == Source("conv_block", 1, 1)
    assert trace.returned == (("Functional", (None, 32, 32, 5)),)
