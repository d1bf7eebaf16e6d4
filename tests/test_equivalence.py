"""Equivalence by behaviour, not spelling, on real Keras models of a small U-Net (the
course's conv_block / upsampling_block / unet_model, scaled down): settings normalized or
decided numerically at the graph's shapes, the merge-order policy (graph check and weight
transplant agree, in a lone block and in the whole model), outputs compared position by
position, further settings on request, and messages that fit an encoder-decoder."""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from keras import layers as L  # noqa: E402

from grader.checks import CheckFailed  # noqa: E402
from grader.checks.architecture import expect_architecture, layer_graph  # noqa: E402
from grader.checks.equivalence import numerically_same, resolved_params  # noqa: E402
from grader.checks.explain import MAX_TABLE_ROWS  # noqa: E402
from grader.checks.models import copy_weights, expect_output_shape, expect_same_outputs  # noqa: E402

SIZE = (16, 16, 3)
FILTERS = 4


def failure(check, *args, **kw) -> CheckFailed:
    with pytest.raises(CheckFailed) as info:
        check(*args, **kw)
    return info.value


# ------------------------------------------------------------------ the U-Net, with switches

def conv_block(x, n, *, dropout=0.0, pool=True, init="he_normal", axis_bn=None, returns="skip",
               pool_layer=L.MaxPooling2D, pool_padding="valid", kernel=3):
    c = L.Conv2D(n, kernel, activation="relu", padding="same", kernel_initializer=init)(x)
    c = L.Conv2D(n, kernel, activation="relu", padding="same", kernel_initializer=init)(c)
    if axis_bn is not None:
        c = L.BatchNormalization(axis=axis_bn)(c)
    if dropout > 0:
        c = L.Dropout(dropout)(c)
    nxt = pool_layer(pool_size=(2, 2), padding=pool_padding)(c) if pool else c
    if returns == "pooled twice":
        return nxt, nxt
    if returns == "swapped":
        return c, nxt
    return nxt, c


def upsampling_block(expansive, contractive, n, *, swapped=False, concat=None, kernel=3, strides=2,
                     use_merge=True):
    up = L.Conv2DTranspose(n, kernel, strides=strides, padding="same")(expansive)
    join = concat or (lambda: L.Concatenate(axis=3))
    merge = join()([contractive, up] if swapped else [up, contractive])
    c = L.Conv2D(n, 3, activation="relu", padding="same", kernel_initializer="he_normal")(merge if use_merge else up)
    return L.Conv2D(n, 3, activation="relu", padding="same", kernel_initializer="he_normal")(c)


def unet(*, size=SIZE, n=FILTERS, classes=3, swapped=(), concat=None, final_relu=True, **block):
    inputs = keras.Input(size)
    c1 = conv_block(inputs, n, **block)
    c2 = conv_block(c1[0], n * 2, **block)
    c3 = conv_block(c2[0], n * 4, dropout=0.3, pool=False)
    u = upsampling_block(c3[0], c2[1], n * 2, swapped=0 in swapped, concat=concat)
    u = upsampling_block(u, c1[1], n, swapped=1 in swapped, concat=concat)
    u = L.Conv2D(n, 3, activation="relu" if final_relu else None, padding="same",
                 kernel_initializer="he_normal")(u)
    return keras.Model(inputs, L.Conv2D(classes, 1, padding="same")(u))


def block_model(**kw):
    x = keras.Input((8, 8, 3))
    return keras.Model(x, conv_block(x, FILTERS, **kw))


def up_model(*, shape=(4, 4, 6), skip=(8, 8, 3), **kw):
    a, b = keras.Input(shape), keras.Input(skip)
    return keras.Model([a, b], upsampling_block(a, b, FILTERS, **kw))


def images(shape, n=2, seed=0):
    return np.random.default_rng(seed).normal(size=(n, *shape)).astype("float32")


# ------------------------------------------------------------------ 1. normalized settings

@pytest.mark.parametrize("concat", [lambda: L.Concatenate(), lambda: L.Concatenate(axis=-1)],
                         ids=["default axis", "axis=-1"])
def test_concatenate_last_axis_spellings_are_axis_3(concat):
    expect_architecture(up_model(), up_model(concat=concat), exercise="upsampling_block")
    expect_architecture(unet(), unet(concat=concat), exercise="unet_model")


def test_concatenate_on_another_axis_still_fails():
    err = failure(expect_architecture, up_model(skip=(8, 8, 4)),
                  up_model(skip=(8, 8, 4), concat=lambda: L.Concatenate(axis=2)), exercise="upsampling_block")
    assert err.diagnosis == "wrong_params:Concatenate" and "axis=2; expected axis=3" in err.message, err.message


def test_ints_tuples_aliases_case_and_initializer_objects_are_the_same():
    ref = up_model()
    a, b = keras.Input((4, 4, 6)), keras.Input((8, 8, 3))
    up = L.Conv2DTranspose(FILTERS, (3, 3), strides=(2, 2), padding="SAME")(a)
    merge = L.concatenate([up, b], axis=3)
    c = L.Conv2D(FILTERS, (3, 3), activation="relu", padding="Same", kernel_initializer=keras.initializers.HeNormal())(merge)
    c = L.Conv2D(FILTERS, 3, strides=1, activation="relu", padding="same", kernel_initializer="HeNormal")(c)
    expect_architecture(ref, keras.Model([a, b], c), exercise="upsampling_block", compare=("kernel_initializer",))
    expect_architecture(block_model(), block_model(pool_layer=L.MaxPool2D), exercise="conv_block")


def test_batchnorm_axis_minus_one_is_the_channel_axis():
    expect_architecture(block_model(axis_bn=3), block_model(axis_bn=-1), exercise="conv_block")
    err = failure(expect_architecture, block_model(axis_bn=3), block_model(axis_bn=1), exercise="conv_block")
    assert err.diagnosis == "bn_wrong_axis"


def test_pooling_same_on_a_map_the_window_divides_is_valid_and_fails_where_it_pads():
    # Even sizes: 'same' adds no row or column, so it computes what 'valid' computes.
    expect_architecture(block_model(), block_model(pool_padding="same"), exercise="conv_block")
    expect_architecture(unet(), unet(pool_padding="same"), exercise="unet_model")
    # Inference only: the bottleneck's Dropout draws at random in training mode.
    expect_same_outputs(unet(), unet(pool_padding="same"), images(SIZE), training=False)
    # The hidden test's odd size: there 'same' pads, and the graph check says so.
    x_ref, x_found = keras.Input((9, 9, 3)), keras.Input((9, 9, 3))
    odd_ref = keras.Model(x_ref, conv_block(x_ref, FILTERS))
    odd_found = keras.Model(x_found, conv_block(x_found, FILTERS, pool_padding="same"))
    err = failure(expect_architecture, odd_ref, odd_found, exercise="conv_block")
    assert err.diagnosis == "wrong_params:MaxPooling2D"
    assert "padding 'same'; expected 'valid'" in err.message


def test_average_pooling_same_on_a_two_by_two_map_is_valid():
    """ResNet50's last pooling: AveragePooling2D(2, padding='same') on a 2x2 map."""
    def model(padding, size=2):
        x = keras.Input((size, size, 8))
        return keras.Model(x, L.Dense(3)(L.Flatten()(L.AveragePooling2D((2, 2), padding=padding)(x))))
    expect_architecture(model("valid"), model("same"), exercise="ResNet50")
    expect_same_outputs(model("valid"), model("same"), images((2, 2, 8)), training=False)
    err = failure(expect_architecture, model("valid", 3), model("same", 3), exercise="ResNet50")
    assert "padding 'same'; expected 'valid'" in err.message


def test_resolved_params_only_turns_padding_that_pads_nothing_into_valid():
    graph = layer_graph(block_model(pool_padding="same"))
    pool = next(n for n in graph.nodes if n.spec.kind == "MaxPooling2D")
    assert dict(resolved_params(pool.spec, pool.input_shape))["padding"] == "valid"
    assert dict(resolved_params(pool.spec, (None, 9, 9, 4)))["padding"] == "same"


def test_numerical_decision_at_the_recorded_shape():
    # A 1x1 window steps over a 1x1 map once, whatever its stride: the same output there only.
    a, b = L.MaxPooling2D(1, strides=1), L.MaxPooling2D(1, strides=2)
    assert numerically_same(a, b, (None, 1, 1, 3))
    assert not numerically_same(a, b, (None, 4, 4, 3))
    # A capped ReLU differs on large inputs, which the random data includes.
    assert not numerically_same(L.ReLU(max_value=6.0), L.ReLU(), (None, 4, 4, 3))
    assert not numerically_same(L.LeakyReLU(negative_slope=0.2), L.LeakyReLU(negative_slope=0.3), (None, 5))
    # Unknown sizes are never decided numerically.
    assert not numerically_same(a, b, (None, None, None, 3))


def test_a_setting_difference_that_changes_the_output_still_fails():
    err = failure(expect_architecture, up_model(), up_model(kernel=2), exercise="upsampling_block")
    assert err.diagnosis == "wrong_params:Conv2DTranspose" and "2x2 kernel; expected 3x3" in err.message


# ------------------------------------------------------------------ 2. merge order

def test_swapped_concatenate_fails_by_default_alone_and_in_the_whole_model():
    lone = failure(expect_architecture, up_model(), up_model(swapped=True), exercise="upsampling_block")
    whole = failure(expect_architecture, unet(), unet(swapped=(1,)), exercise="unet_model")
    assert lone.diagnosis == whole.diagnosis == "wrong_input_order"
    assert lone.message.startswith("Concatenate takes its inputs in another order: the model's second input, then "
                                   "Conv2DTranspose; expected Conv2DTranspose, then the model's second input.")
    assert "takes its inputs in another order" in whole.message and "Conv2DTranspose" in whole.message
    assert "pass the inputs to Concatenate in the order of the specification" in lone.hint


def test_merge_order_either_accepts_the_swap_and_the_outputs_agree():
    cases = ((up_model(), up_model(swapped=True), [images((4, 4, 6)), images((8, 8, 3), seed=1)], (False, True)),
             (unet(), unet(swapped=(0, 1)), images(SIZE), (False,)))  # the U-Net's Dropout is random in training
    for ref, found, x, modes in cases:
        expect_architecture(ref, found, exercise="u", merge_order="either")
        for training in modes:
            expect_same_outputs(ref, found, x, training=training, merge_order="either")
        # The default policy fails the outputs too, naming the merge, not unrelated settings.
        err = failure(expect_same_outputs, ref, found, x, training=False)
        assert err.diagnosis == "wrong_input_order", err.message
        assert "takes its inputs in another order" in err.message
        assert "BatchNormalization" not in err.hint and "padding" not in err.hint


def test_either_order_transplant_permutes_the_next_layers_input_weights():
    ref, found = unet(swapped=()), unet(swapped=(0,))
    x = images(SIZE)
    copy_weights(ref, found, merge_order="either")
    np.testing.assert_allclose(np.asarray(found(x, training=False)), np.asarray(ref(x, training=False)),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_either_order_passes_a_full_size_unet_at_the_default_tolerance():
    """The course's U-Net (96x128, 32 filters): channels summed in another order round
    differently (about 1e-6), which the default absolute tolerance alone would fail."""
    ref = unet(size=(96, 128, 3), n=32, classes=23)
    found = unet(size=(96, 128, 3), n=32, classes=23, swapped=(0, 1))
    expect_same_outputs(ref, found, images((96, 128, 3)) * 3, training=False, merge_order="either")


def test_either_order_is_refused_where_the_swap_reaches_the_output():
    def ends_at_merge(swapped):
        a, b = keras.Input((4, 4, 2)), keras.Input((4, 4, 3))
        return keras.Model([a, b], L.Concatenate()([b, a] if swapped else [a, b]))
    err = failure(expect_architecture, ends_at_merge(False), ends_at_merge(True), exercise="m", merge_order="either")
    assert err.diagnosis == "wrong_input_order" and "accepted here only where" in err.message


def test_merge_order_must_be_a_known_policy():
    with pytest.raises(ValueError, match="merge_order"):
        expect_architecture(up_model(), up_model(), exercise="u", merge_order="any")


# ------------------------------------------------------------------ 3. several outputs

def test_a_block_returning_the_pooled_tensor_twice_fails_on_output_2():
    err = failure(expect_architecture, block_model(), block_model(returns="pooled twice"), exercise="conv_block")
    assert err.diagnosis == "wrong_output"
    assert err.message.startswith("Output 2 of the model conv_block returns (the second value returned) is the "
                                  "result of MaxPooling2D; expected the result of the second Conv2D")
    out = failure(expect_same_outputs, block_model(), block_model(returns="pooled twice"), images((8, 8, 3)),
                  training=False)
    assert "output 2 (the second value returned)" in out.message and out.diagnosis == "wrong_output_shape"


def test_outputs_in_another_order_fail_on_output_1():
    err = failure(expect_architecture, block_model(), block_model(returns="swapped"), exercise="conv_block")
    assert err.diagnosis == "wrong_output" and err.message.startswith("Output 1 of the model conv_block returns")


def test_output_count_differs():
    x = keras.Input((8, 8, 3))
    single = keras.Model(x, conv_block(x, FILTERS)[0])
    err = failure(expect_architecture, block_model(), single, exercise="conv_block")
    assert err.diagnosis in ("wrong_output_count", "wrong_branching")
    out = failure(expect_same_outputs, block_model(), single, images((8, 8, 3)), training=False)
    assert out.diagnosis == "wrong_output_count" and "return the 2 values" in out.hint


# ------------------------------------------------------------------ 4. further settings

def test_compare_kernel_initializer_on_request():
    ref, found = block_model(), block_model(init="glorot_uniform")
    expect_architecture(ref, found, exercise="conv_block")  # not graded unless asked
    err = failure(expect_architecture, ref, found, exercise="conv_block", compare=("kernel_initializer",))
    assert err.diagnosis == "wrong_setting:kernel_initializer"
    assert "has kernel_initializer 'glorot_uniform'; expected 'he_normal'." in err.message
    assert "Also: the second Conv2D has kernel_initializer" in err.message
    assert err.hint == "pass kernel_initializer='he_normal' to that layer."
    seeded = block_model(init=keras.initializers.HeNormal(seed=7))
    expect_architecture(ref, seeded, exercise="conv_block", compare=("kernel_initializer",))


def test_compare_restricted_to_one_kind_of_layer():
    """Every layer has an initializer: a decoder's Conv2DTranspose given he_normal too is
    not failed when only the Conv2Ds' initializer is graded."""
    def decoder(transpose_init):
        a, b = keras.Input((4, 4, 6)), keras.Input((8, 8, 3))
        up = L.Conv2DTranspose(FILTERS, 3, strides=2, padding="same", kernel_initializer=transpose_init)(a)
        c = L.Conv2D(FILTERS, 3, padding="same", kernel_initializer="he_normal")(L.Concatenate()([up, b]))
        return keras.Model([a, b], c)
    ref, found = decoder("glorot_uniform"), decoder("he_normal")
    expect_architecture(ref, found, exercise="upsampling_block", compare=("Conv2D.kernel_initializer",))
    err = failure(expect_architecture, ref, found, exercise="upsampling_block", compare=("kernel_initializer",))
    assert "Conv2DTranspose" in err.message and err.diagnosis == "wrong_setting:kernel_initializer"


# ------------------------------------------------------------------ 5. messages for any architecture

def test_unet_messages_use_no_residual_words_and_short_tables():
    err = failure(expect_architecture, unet(), unet(final_relu=False), exercise="unet_model")
    text = err.message + err.hint
    for word in ("residual", "main path", "shortcut"):
        assert word not in text
    assert "add The" not in err.hint and err.hint[:1].islower()
    assert err.message.startswith("The ReLU of the 11th Conv2D (activation='relu') is missing between Conv2D and "
                                  "Conv2D."), err.message
    assert len(err.table.rows) <= MAX_TABLE_ROWS + 2
    marked = err.table.rows[err.table.marked]
    assert "ReLU" in marked[1] and marked[2] != marked[1]


def test_an_unused_merge_in_a_block_gets_a_block_hint():
    err = failure(expect_architecture, up_model(), up_model(use_merge=False), exercise="upsampling_block")
    assert err.diagnosis == "disconnected_layers"
    assert "Model(inputs" not in err.hint and "pass it to the layer that should read it" in err.hint


def test_a_fully_convolutional_models_shape_hint_names_filters_not_dense():
    err = failure(expect_output_shape, unet(), images(SIZE), (None, 16, 16, 5))
    assert "filters of the last convolution" in err.hint and "Flatten" not in err.hint


# ------------------------------------------------------------------ Keras 2 (tf_keras)

def test_tf_keras_merge_order_and_axis():
    tf_keras = pytest.importorskip("tf_keras")
    K = tf_keras.layers

    def block(swapped=False, axis=3):
        a, b = tf_keras.Input((4, 4, 6)), tf_keras.Input((8, 8, 3))
        up = K.Conv2DTranspose(FILTERS, 3, strides=2, padding="same")(a)
        merge = K.Concatenate(axis=axis)([b, up] if swapped else [up, b])
        return tf_keras.Model([a, b], K.Conv2D(FILTERS, 3, padding="same")(merge))

    expect_architecture(block(), block(axis=-1), exercise="upsampling_block")
    err = failure(expect_architecture, block(), block(swapped=True), exercise="upsampling_block")
    assert err.diagnosis == "wrong_input_order"
    expect_architecture(block(), block(swapped=True), exercise="upsampling_block", merge_order="either")
    x = [images((4, 4, 6)), images((8, 8, 3), seed=1)]
    expect_same_outputs(block(), block(swapped=True), x, training=False, merge_order="either")
    # The numerical decision builds tf_keras layers the same way.
    assert numerically_same(K.MaxPooling2D(1, strides=1), K.MaxPooling2D(1, strides=2), (None, 1, 1, 3))
    assert not numerically_same(K.BatchNormalization(epsilon=1e-3), K.BatchNormalization(epsilon=0.5),
                                (None, 4, 4, 3))

    def pooled(padding):
        x_in = tf_keras.Input((2, 2, 4))
        return tf_keras.Model(x_in, K.Flatten()(K.AveragePooling2D((2, 2), padding=padding)(x_in)))
    expect_architecture(pooled("valid"), pooled("same"), exercise="ResNet50")


def test_the_alignment_is_computed_once_per_pair_of_graphs():
    """The graph check and the weight transplant read the same alignment (and the
    numerical decisions in it are made once)."""
    from grader.checks.equivalence import align_graphs
    ref, found = layer_graph(unet()), layer_graph(unet(pool_padding="same"))
    first = align_graphs(ref, found)
    assert first is align_graphs(ref, found) and first.exact
    assert not align_graphs(layer_graph(unet(final_relu=False)), found).exact


def test_bn_after_conv_table_shows_the_rows_around_the_first_violation():
    from grader.checks.architecture import expect_bn_after_conv
    err = failure(expect_bn_after_conv, unet(axis_bn=3))
    assert len(layer_graph(unet(axis_bn=3)).nodes) > MAX_TABLE_ROWS
    assert len(err.table.rows) <= MAX_TABLE_ROWS + 2
    assert err.table.rows[err.table.marked][1].startswith("BatchNormalization")
    assert err.table.rows[-1][1].endswith("rows below")
