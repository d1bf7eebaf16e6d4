"""Residual networks: graphs compared as graphs (commutative merges match in either
order), skip connections and BatchNormalization after every Conv2D on every branch,
each mistake with its own message naming the branch, and a bounded graph walk."""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from keras import layers as L  # noqa: E402

from grader.checks import CheckFailed  # noqa: E402
from grader.checks.architecture import (  # noqa: E402
    GraphTooLarge, expect_architecture, expect_bn_after_conv, expect_skip_connection, layer_graph, layer_specs,
)
from grader.checks.models import copy_weights, expect_same_outputs  # noqa: E402

SHAPE = (8, 8, 6)
INPUTS = np.random.default_rng(0).normal(size=(2, *SHAPE)).astype("float32")


def conv_block(*, shortcut_first=False, shortcut="projection", add_after_relu=False, shortcut_bn=True,
               shortcut_on_main=False, merge=L.Add, s=2, f3=4):
    """The course's convolutional_block (f=3, filters (2, 3, 4), s=2), with switches for
    the spellings and mistakes real notebooks have."""
    x_in = keras.Input(SHAPE)
    x = L.Activation("relu")(L.BatchNormalization(axis=3)(L.Conv2D(2, 1, strides=s)(x_in)))
    x = L.Activation("relu")(L.BatchNormalization(axis=3)(L.Conv2D(3, 3, padding="same")(x)))
    x = L.BatchNormalization(axis=3)(L.Conv2D(f3, 1)(x))
    if add_after_relu:
        x = L.Activation("relu")(x)
    x_short = x if shortcut_on_main else x_in
    if shortcut == "projection":
        x_short = L.Conv2D(f3, 1, strides=1 if shortcut_on_main else s)(x_short)
        if shortcut_bn:
            x_short = L.BatchNormalization(axis=3)(x_short)
    out = merge()([x_short, x] if shortcut_first else [x, x_short])
    if not add_after_relu:
        out = L.Activation("relu")(out)
    return keras.Model(x_in, out)


def identity_block(*, skip=True, shortcut_first=False):
    x_in = keras.Input(SHAPE)
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(2, 1)(x_in)))
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(3, 3, padding="same")(x)))
    x = L.BatchNormalization()(L.Conv2D(6, 1)(x))
    if skip:
        x = L.Add()([x_in, x] if shortcut_first else [x, x_in])
    return keras.Model(x_in, L.ReLU()(x))


def failure(check, *args, **kw) -> CheckFailed:
    with pytest.raises(CheckFailed) as info:
        check(*args, **kw)
    return info.value


# ------------------------------------------------------------ commutative merges

@pytest.mark.parametrize("build", [conv_block, identity_block], ids=["convolutional", "identity"])
def test_add_matches_whichever_branch_was_written_first(build):
    expected, found = build(), build(shortcut_first=True)
    assert layer_specs(expected) == layer_specs(found)
    expect_architecture(expected, found, exercise="block")


def test_shortcut_first_block_gets_the_reference_weights_and_outputs():
    reference, student = conv_block(), conv_block(shortcut_first=True)
    for training in (False, True):
        expect_same_outputs(reference, student, INPUTS, training=training)
    copy_weights(reference, student)
    np.testing.assert_array_equal(reference(INPUTS, training=False), student(INPUTS, training=False))


def test_concatenate_keeps_its_order():
    expected, found = conv_block(merge=L.Concatenate), conv_block(merge=L.Concatenate, shortcut_first=True)
    assert layer_specs(expected) != layer_specs(found)
    err = failure(expect_architecture, expected, found, exercise="block")
    assert err.diagnosis == "wrong_input_order"
    # A Concatenate's branches are no "main path" and "shortcut": its inputs are named by position.
    assert err.message.startswith(
        "Concatenate takes its inputs in another order: the fourth BatchNormalization, then the third "
        "BatchNormalization; expected the third BatchNormalization, then the fourth BatchNormalization. "
        "Concatenate keeps the order of its inputs")
    assert "shortcut" not in err.message and "main path" not in err.message


def test_mistakes_against_the_reference_name_the_branch():
    err = failure(expect_architecture, conv_block(), conv_block(shortcut_bn=False), exercise="convolutional_block")
    assert err.diagnosis == "bn_missing"
    assert err.message.startswith("The shortcut branch's BatchNormalization is missing between Conv2D and Add.")
    err = failure(expect_architecture, conv_block(), conv_block(add_after_relu=True), exercise="convolutional_block")
    assert err.diagnosis == "merge_after_activation"
    assert err.message.startswith("The main path's third ReLU comes before the Add; expected right after it.")


def shortcut_conv_on_the_main_path():
    """A real mistake: the shortcut's layers applied to X, not X_shortcut, so the
    shortcut Conv2D is never connected and the Add sums the main path with itself."""
    x_in = keras.Input(SHAPE)
    x = L.Activation("relu")(L.BatchNormalization(axis=3)(L.Conv2D(2, 1, strides=2)(x_in)))
    x = L.Activation("relu")(L.BatchNormalization(axis=3)(L.Conv2D(3, 3, padding="same")(x)))
    x = L.BatchNormalization(axis=3)(L.Conv2D(4, 1)(x))
    x_shortcut = L.Conv2D(4, 1, strides=2)(x)  # noqa: F841 - the mistake: overwritten just below
    x_shortcut = L.BatchNormalization(axis=3)(x)
    return keras.Model(x_in, L.Activation("relu")(L.Add()([x, x_shortcut])))


def test_shortcut_conv_never_connected():
    err = failure(expect_architecture, conv_block(), shortcut_conv_on_the_main_path(), exercise="convolutional_block")
    assert err.diagnosis == "disconnected_layers"
    assert err.message.startswith("A Conv2D was created but never connected to the output: the model "
                                  "convolutional_block returns ends at the third ReLU.")
    assert "conv2d" not in err.message
    err = failure(expect_skip_connection, shortcut_conv_on_the_main_path(), projection=True)
    assert err.diagnosis == "shortcut_from_main_path"


# ------------------------------------------------------------ skip connections

def test_correct_blocks_pass_the_skip_checks():
    expect_skip_connection(conv_block(), projection=True)
    expect_skip_connection(conv_block(shortcut_first=True), projection=True)
    expect_skip_connection(identity_block(), projection=False)
    expect_skip_connection(identity_block(shortcut_first=True), projection=False)
    expect_bn_after_conv(conv_block(), every_conv=True)
    expect_bn_after_conv(identity_block(), every_conv=True)


def test_missing_skip_connection():
    err = failure(expect_skip_connection, identity_block(skip=False))
    assert err.diagnosis == "skip_missing"
    assert err.message.startswith("There is no skip connection: no Add joins the block's input to the main path.")


def test_shortcut_added_after_the_final_relu():
    err = failure(expect_skip_connection, conv_block(add_after_relu=True), projection=True,
                  exercise="convolutional_block")
    assert err.diagnosis == "merge_after_activation"
    assert err.message.startswith("The shortcut is added after the final activation: the model "
                                  "convolutional_block returns ends with the Add")


def test_projection_missing_on_the_shortcut():
    err = failure(expect_skip_connection, conv_block(shortcut="identity", s=1, f3=6), projection=True)
    assert err.diagnosis == "projection_missing"
    assert err.message.startswith("The shortcut branch has no Conv2D")


def test_shortcut_conv_applied_to_the_main_path():
    err = failure(expect_skip_connection, conv_block(shortcut_on_main=True), projection=True)
    assert err.diagnosis == "shortcut_from_main_path"
    assert "computed from the main path's output instead of the block's input" in err.message


def test_every_conv_catches_a_shortcut_conv_without_batchnorm():
    model = conv_block(shortcut_bn=False)
    expect_bn_after_conv(model)  # every BatchNormalization still reads a Conv2D
    err = failure(expect_bn_after_conv, model, every_conv=True)
    assert err.diagnosis == "bn_missing"
    assert err.message.startswith("The shortcut branch's Conv2D is not followed by BatchNormalization.")
    assert "conv2d" not in err.message
    err = failure(expect_skip_connection, model, projection=True)
    assert err.diagnosis == "projection_bn_missing"
    assert err.message.startswith("The shortcut branch's Conv2D is not followed by BatchNormalization")


def test_every_conv_names_the_main_path_layer():
    x_in = keras.Input(SHAPE)
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(2, 1)(x_in)))
    x = L.ReLU()(L.Conv2D(3, 3, padding="same")(x))
    x = L.BatchNormalization()(L.Conv2D(6, 1)(x))
    model = keras.Model(x_in, L.ReLU()(L.Add()([x, x_in])))
    err = failure(expect_bn_after_conv, model, every_conv=True)
    assert err.diagnosis == "relu_before_bn"
    assert err.message.startswith("The main path's second Conv2D is followed by ReLU, not by BatchNormalization.")


def test_every_conv_catches_a_conv_output_used_before_its_batchnorm():
    x_in = keras.Input(SHAPE)
    c = L.Conv2D(6, 1)(x_in)
    model = keras.Model(x_in, L.ReLU()(L.Add()([L.BatchNormalization()(c), c])))
    expect_bn_after_conv(model)
    err = failure(expect_bn_after_conv, model, every_conv=True)
    assert err.diagnosis == "bn_not_after_conv"
    assert err.message.startswith("Conv2D feeds its BatchNormalization and also Add, which then reads its output "
                                  "before it is normalized.")


# ------------------------------------------------------------ bounded walk

def nested(depth: int, calls: int):
    """Each level calls the model inside it `calls` times: tiny as data, calls**depth
    layer calls unrolled."""
    x = keras.Input((2,))
    inner = keras.Model(x, L.Dense(2)(x))
    for _ in range(depth):
        x = keras.Input((2,))
        y = x
        for _ in range(calls):
            y = inner(y)
        inner = keras.Model(x, y)
    return inner


def test_nested_models_unroll_and_are_counted():
    assert len(layer_graph(nested(2, 3)).nodes) == 9
    assert len(layer_graph(nested(3, 3)).nodes) == 27


def test_nested_model_bomb_is_refused_with_a_message():
    with pytest.raises(GraphTooLarge) as info:
        layer_graph(nested(8, 5))
    err = info.value
    assert isinstance(err, CheckFailed) and err.diagnosis == "graph_too_large"
    assert "more than 5,000 layer calls" in err.message and "nested" in err.message
    with pytest.raises(CheckFailed) as info:
        expect_architecture(identity_block(), nested(8, 5), exercise="identity_block")
    assert info.value.diagnosis == "graph_too_large"


def test_the_cap_is_what_stops_the_walk():
    """The same model fits under a larger cap: the refusal is the cap, not a crash."""
    assert len(layer_graph(nested(4, 3), cap=81).nodes) == 81
    with pytest.raises(GraphTooLarge):
        layer_graph(nested(4, 3), cap=80)


def two_branches(*, kernels=(3, 1), swapped=False):
    """Two equally deep branches that differ only in their settings."""
    x_in = keras.Input(SHAPE)
    a = L.BatchNormalization()(L.Conv2D(4, kernels[0], padding="same")(x_in))
    b = L.BatchNormalization()(L.Conv2D(4, kernels[1], padding="same")(x_in))
    return keras.Model(x_in, L.ReLU()(L.Add()([b, a] if swapped else [a, b])))


def test_equally_deep_branches_are_ordered_by_what_they_compute():
    expect_architecture(two_branches(), two_branches(swapped=True), exercise="block")
    err = failure(expect_architecture, two_branches(), two_branches(kernels=(3, 5), swapped=True), exercise="block")
    # Equally deep branches that differ are paired by their settings: the unchanged 3x3
    # branch pairs with the reference's, and the changed one is reported (at most both).
    assert err.diagnosis == "wrong_params:Conv2D"
    assert "has a 5x5 kernel; expected 1x1" in err.message


def test_a_long_flat_model_over_the_cap_is_not_blamed_on_nesting():
    x = y = keras.Input((2,))
    for _ in range(12):
        y = L.Dense(2)(y)
    with pytest.raises(GraphTooLarge) as info:
        layer_graph(keras.Model(x, y), cap=10)
    assert "more than 10 layer calls" in info.value.message and "nested" not in info.value.message


def two_identity_blocks(*, second_bn=True):
    """A small network of two identity blocks in a row: the second block's fork is the
    first block's output, not the model input."""
    x = x_in = keras.Input(SHAPE)
    for k in range(2):
        shortcut = x
        y = L.ReLU()(L.BatchNormalization()(L.Conv2D(2, 1)(x)))
        y = L.Conv2D(6, 1)(y)
        y = L.BatchNormalization()(y) if (k == 0 or second_bn) else y
        x = L.ReLU()(L.Add()([y, shortcut]))
    return keras.Model(x_in, x)


def test_blocks_inside_a_network_are_named_by_block():
    expect_bn_after_conv(two_identity_blocks(), every_conv=True)
    err = failure(expect_bn_after_conv, two_identity_blocks(second_bn=False), every_conv=True)
    assert err.message.startswith("The main path's second Conv2D of the second residual block is not followed by "
                                  "BatchNormalization.")
    err = failure(expect_architecture, two_identity_blocks(), two_identity_blocks(second_bn=False), exercise="net")
    assert err.message.startswith("The main path's second BatchNormalization of the second residual block is "
                                  "missing between Conv2D and Add.")


def test_a_deep_chain_is_walked_without_recursion():
    """The walk keeps its own stacks: a chain deeper than Python's recursion limit
    (the old recursive walk raised RecursionError here) is just a long list."""
    import sys
    limit = sys.getrecursionlimit()
    depth = limit + 200
    x = y = keras.Input((2,))
    for _ in range(depth):
        y = L.ReLU()(y)
    sys.setrecursionlimit(4 * depth)  # Keras' own Model() recurses on the depth
    try:
        model = keras.Model(x, y)
    finally:
        sys.setrecursionlimit(limit)
    graph = layer_graph(model)
    assert len(graph.nodes) == depth and graph.is_chain()
