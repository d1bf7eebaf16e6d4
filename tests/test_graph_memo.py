"""`layer_graph` is remembered on the model (one submission's checks ask for it about ten
times), yet never answers with a stale graph: a pooled model handed to the next
submission carries that submission's locations, and a Sequential can still grow."""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import pytest  # noqa: E402
from keras import layers as L  # noqa: E402

from grader.checks import CheckFailed  # noqa: E402
from grader.checks.architecture import expect_bn_after_conv  # noqa: E402
from grader.checks.graph import layer_graph  # noqa: E402


def conv_relu():
    x_in = keras.Input((8, 8, 3))
    x = L.ReLU()(L.Conv2D(4, 3, padding="same")(x_in))
    return keras.Model(x_in, L.BatchNormalization()(L.Conv2D(4, 1)(x)))


def test_the_same_model_is_walked_once():
    model = conv_relu()
    first = layer_graph(model)
    assert layer_graph(model) is first
    assert layer_graph(model, cap=5) is not first  # another cap is another question
    assert layer_graph(conv_relu()) is not first


def test_a_reused_model_shows_the_new_submissions_locations():
    model = conv_relu()
    conv = model.layers[1].name
    object.__setattr__(model, "_grader_locations", {conv: ("cell In [3] [m]", 7, "x = Conv2D(4, 3)(x_in)")})
    with pytest.raises(CheckFailed) as first:
        expect_bn_after_conv(model, every_conv=True)
    assert "created in cell In [3], line 7" in first.value.message
    # What grader.frameworks.keras.model_pool does before handing the model to the next submission.
    object.__setattr__(model, "_grader_locations", {conv: ("the cell starting `def m():` [m]", 2, "y = Conv2D(4, 3)(inp)")})
    with pytest.raises(CheckFailed) as second:
        expect_bn_after_conv(model, every_conv=True)
    assert "created in the cell starting `def m():`, line 2" in second.value.message
    assert "In [3]" not in second.value.message
    assert layer_graph(model).nodes[0].location.cell == "the cell starting `def m():`"


def test_a_growing_sequential_is_walked_again():
    model = keras.Sequential([L.Conv2D(4, 3)])
    before = layer_graph(model)
    model.add(L.BatchNormalization())
    after = layer_graph(model)
    assert [s.kind for s in before.specs] == ["Conv2D"]
    assert [s.kind for s in after.specs] == ["Conv2D", "BatchNormalization"]
