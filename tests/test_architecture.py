"""Architecture checks on real Keras models: equivalent spellings pass, each typical
mistake gets its own sentence, diagnosis and marked table row."""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import pytest  # noqa: E402
from keras import layers as L  # noqa: E402

from grader.checks import CheckFailed  # noqa: E402
from grader.checks.architecture import (  # noqa: E402
    LayerSpec, align_specs, expect_architecture, expect_bn_after_conv, layer_specs,
)

pytestmark = pytest.mark.filterwarnings("ignore:Do not pass an `input_shape`:UserWarning")
SHAPE = (64, 64, 3)


# ------------------------------------------------------------------------- models

def sequential(*layers, explicit_input: bool = True):
    return keras.Sequential(([keras.Input(SHAPE)] if explicit_input else []) + list(layers))


def happy_layers(**override):
    """The reference happyModel's layers; `override` replaces one by key."""
    spec = {
        "pad": L.ZeroPadding2D(3), "conv": L.Conv2D(32, 7, strides=1), "bn": L.BatchNormalization(axis=3),
        "relu": L.ReLU(), "pool": L.MaxPooling2D(), "flat": L.Flatten(), "dense": L.Dense(1, activation="sigmoid"),
    }
    spec.update(override)
    return [layer for layer in spec.values() if layer is not None]


def happy(**override):
    return sequential(*happy_layers(**override))


def happy_in_order(*keys, **extra):
    layers = {"pad": L.ZeroPadding2D(3), "conv": L.Conv2D(32, 7), "bn": L.BatchNormalization(axis=3),
              "relu": L.ReLU(), "pool": L.MaxPooling2D(), "flat": L.Flatten(),
              "dense": L.Dense(1, activation="sigmoid"), **extra}
    return sequential(*(layers[k] for k in keys))


def convolutional(*, bn: bool = True, padding: str = "same", relu=L.ReLU, filters2: int = 16,
                  pool=L.MaxPooling2D, explicit_softmax: bool = False):
    x = keras.Input(SHAPE)
    y = L.Conv2D(8, 4, padding=padding)(x)
    y = L.BatchNormalization()(y) if bn else y
    y = relu()(y)
    y = pool(pool_size=(8, 8), strides=(8, 8), padding="same")(y)
    y = L.Conv2D(filters2, (2, 2), padding=padding)(y)
    y = L.BatchNormalization()(y) if bn else y
    y = relu()(y)
    y = pool(pool_size=4, strides=4, padding="same")(y)
    y = L.Flatten()(y)
    y = L.Softmax()(L.Dense(6)(y)) if explicit_softmax else L.Dense(6, activation="softmax")(y)
    return keras.Model(x, y)


def failure(expected, found, exercise="happyModel") -> CheckFailed:
    with pytest.raises(CheckFailed) as info:
        expect_architecture(expected, found, exercise=exercise)
    return info.value


HAPPY_LABELS = ["ZeroPadding2D (3, 3)", "Conv2D 32 @ 7x7, stride 1", "BatchNormalization (channels)", "ReLU",
                "MaxPooling2D 2x2", "Flatten", "Dense 1, sigmoid"]
CONV_LABELS = ["Conv2D 8 @ 4x4, stride 1, same", "BatchNormalization (channels)", "ReLU",
               "MaxPooling2D 8x8, stride 8, same", "Conv2D 16 @ 2x2, stride 1, same", "BatchNormalization (channels)",
               "ReLU", "MaxPooling2D 4x4, stride 4, same", "Flatten", "Dense 6, softmax"]


@pytest.fixture(scope="module")
def happy_ref():
    return happy()


@pytest.fixture(scope="module")
def conv_ref():
    return convolutional()


# ------------------------------------------------------------------ layer_specs

def test_happy_specs_read_like_the_course(happy_ref):
    specs = layer_specs(happy_ref)
    assert [s.label() for s in specs] == HAPPY_LABELS
    assert [s.inputs for s in specs] == [(), (0,), (1,), (2,), (3,), (4,), (5,)]


def test_convolutional_specs_follow_the_functional_graph(conv_ref):
    specs = layer_specs(conv_ref)
    assert [s.label() for s in specs] == CONV_LABELS
    assert all(s.kind != "InputLayer" for s in specs)


def test_spec_equality_ignores_names_but_not_settings():
    a = LayerSpec("Conv2D", (("filters", 32),), "conv2d", (0,))
    assert a == LayerSpec("Conv2D", (("filters", 32),), "my_conv", (0,))
    assert a != LayerSpec("Conv2D", (("filters", 16),), "conv2d", (0,))


def test_bn_label_names_the_wrong_axis():
    assert layer_specs(happy(bn=L.BatchNormalization(axis=1)))[2].label() == \
        "BatchNormalization (axis 1 — not the channel axis)"


def test_unbuilt_sequential_is_read_as_a_chain():
    model = keras.Sequential(happy_layers(bn=L.BatchNormalization()))
    assert [s.label() for s in layer_specs(model)] == HAPPY_LABELS


def test_nested_sequential_is_inlined(happy_ref):
    inner = keras.Sequential([keras.Input(SHAPE), L.ZeroPadding2D(3), L.Conv2D(32, 7)])
    outer = sequential(inner, *happy_layers(pad=None, conv=None))
    expect_architecture(happy_ref, outer, exercise="happyModel")


def test_alignment_never_pairs_different_kinds():
    conv = LayerSpec("Conv2D", (), "c")
    dense = LayerSpec("Dense", (), "d")
    rows = align_specs([conv], [dense]).rows
    assert [(r.expected, r.found) for r in rows] == [(0, 0)] and rows[0].op == "replaced"


# ------------------------------------------------------------ equivalent spellings

EQUIVALENT_HAPPY = {
    "itself": lambda: happy(),
    "axis -1": lambda: happy(bn=L.BatchNormalization(axis=-1)),
    "default axis": lambda: happy(bn=L.BatchNormalization()),
    "MaxPool2D": lambda: happy(pool=L.MaxPool2D()),
    "MaxPool2D with explicit pool and strides": lambda: happy(pool=L.MaxPool2D(pool_size=(2, 2), strides=(2, 2))),
    "padding (3, 3)": lambda: happy(pad=L.ZeroPadding2D(padding=(3, 3))),
    "padding ((3, 3), (3, 3))": lambda: happy(pad=L.ZeroPadding2D(padding=((3, 3), (3, 3)))),
    "kernel (7, 7), strides (1, 1)": lambda: happy(conv=L.Conv2D(32, (7, 7), strides=(1, 1), padding="VALID")),
    "Activation('relu')": lambda: happy(relu=L.Activation("relu")),
    "Dense + Activation('sigmoid')": lambda: sequential(*happy_layers(dense=L.Dense(1)), L.Activation("sigmoid")),
    "input_shape=": lambda: sequential(*happy_layers(pad=L.ZeroPadding2D(3, input_shape=SHAPE)),
                                       explicit_input=False),
    "functional API": lambda: _functional_happy(),
}


def _functional_happy():
    x = keras.Input(SHAPE)
    y = x
    for layer in happy_layers():
        y = layer(y)
    return keras.Model(x, y)


@pytest.mark.parametrize("spelling", EQUIVALENT_HAPPY)
def test_happy_model_equivalent_spellings_pass(happy_ref, spelling):
    found = EQUIVALENT_HAPPY[spelling]()
    expect_architecture(happy_ref, found, exercise="happyModel")
    assert layer_specs(found) == layer_specs(happy_ref)


EQUIVALENT_CONV = {
    "itself": lambda: convolutional(),
    "'SAME'": lambda: convolutional(padding="SAME"),
    "Activation('relu')": lambda: convolutional(relu=lambda: L.Activation("relu")),
    "MaxPool2D": lambda: convolutional(pool=L.MaxPool2D),
    "Dense + Softmax()": lambda: convolutional(explicit_softmax=True),
}


@pytest.mark.parametrize("spelling", EQUIVALENT_CONV)
def test_convolutional_model_equivalent_spellings_pass(conv_ref, spelling):
    expect_architecture(conv_ref, EQUIVALENT_CONV[spelling](), exercise="convolutional_model")


def test_variant_without_batchnorm_passes_against_itself():
    expect_architecture(convolutional(bn=False), convolutional(bn=False), exercise="convolutional_model")


# ------------------------------------------------------------------ wrong models

def test_bn_missing(happy_ref):
    err = failure(happy_ref, happy(bn=None))
    assert err.diagnosis == "bn_missing"
    assert err.message.startswith("BatchNormalization is missing between Conv2D and ReLU.")
    assert err.table.rows[err.table.marked] == ("3", "BatchNormalization (channels)", "—")


def test_bn_before_conv(happy_ref):
    err = failure(happy_ref, happy_in_order("pad", "bn", "conv", "relu", "pool", "flat", "dense"))
    assert err.diagnosis == "bn_before_conv"
    assert err.message.startswith("BatchNormalization comes before Conv2D.")
    assert err.table.marked == 1


def test_relu_before_bn_matches_the_feedback_mock(happy_ref):
    err = failure(happy_ref, happy_in_order("pad", "conv", "relu", "bn", "pool", "flat", "dense"))
    assert err.diagnosis == "relu_before_bn"
    assert err.message == ("ReLU comes before BatchNormalization; BatchNormalization must follow Conv2D directly: "
                           "it normalizes the convolution's output before the nonlinearity cuts off its negative half.")
    assert err.table.headers == ("#", "expected", "found")
    assert err.table.marked == 2
    assert err.table.rows[2:4] == (("3", "BatchNormalization (channels)", "ReLU"),
                                   ("4", "ReLU", "BatchNormalization (channels)"))


def test_relu_inside_conv_before_bn(happy_ref):
    found = happy(conv=L.Conv2D(32, 7, activation="relu"), relu=None)
    err = failure(happy_ref, found)
    assert err.diagnosis == "relu_before_bn"
    assert "(the activation='relu' argument of Conv2D) comes before BatchNormalization" in err.message


def test_bn_after_pooling_is_relu_before_bn(happy_ref):
    err = failure(happy_ref, happy_in_order("pad", "conv", "relu", "pool", "bn", "flat", "dense"))
    assert err.diagnosis == "relu_before_bn"
    assert err.table.marked == 2


def test_wrong_bn_axis(happy_ref):
    err = failure(happy_ref, happy(bn=L.BatchNormalization(axis=1)))
    assert err.diagnosis == "bn_wrong_axis"
    assert err.message == ("BatchNormalization normalizes axis 1 (the image rows), not the channel axis (-1 or 3): "
                           "it must normalize each of the 32 feature maps.")
    assert err.table.marked == 2


def test_wrong_filters(happy_ref):
    err = failure(happy_ref, happy(conv=L.Conv2D(16, 7)))
    assert err.diagnosis == "wrong_params:Conv2D"
    assert err.message.startswith("Conv2D has 16 filters; expected 32.")
    assert err.table.rows[err.table.marked] == ("2", "Conv2D 32 @ 7x7, stride 1", "Conv2D 16 @ 7x7, stride 1")


def test_repeated_kind_is_named_by_position(conv_ref):
    err = failure(conv_ref, convolutional(filters2=8), exercise="convolutional_model")
    assert err.message.startswith("The second Conv2D has 8 filters; expected 16.")


def test_extra_layer(happy_ref):
    found = sequential(*happy_layers(dense=L.Dense(10)), L.Dense(1, activation="sigmoid"))
    err = failure(happy_ref, found)
    assert err.diagnosis == "extra_layer"
    assert err.message.startswith("There is an extra layer Dense 10 after Flatten.")
    assert err.table.rows[err.table.marked] == ("7", "—", "Dense 10")


def test_missing_trailing_dense_is_caught_although_the_prefix_matches(happy_ref):
    err = failure(happy_ref, happy(dense=None))
    assert err.diagnosis == "missing_layer"
    assert err.message.startswith("Dense 1, sigmoid is missing at the end")
    assert "must end with Dense 1, sigmoid" in err.message
    assert err.table.rows[-1] == ("7", "Dense 1, sigmoid", "—") and err.table.marked == 6


def test_linear_dense_is_a_wrong_activation(happy_ref):
    err = failure(happy_ref, happy(dense=L.Dense(1)))
    assert err.diagnosis == "wrong_params:Dense"
    assert err.message.startswith("Dense has no activation (linear); expected sigmoid.")


def test_leaky_relu_is_not_relu(happy_ref):
    err = failure(happy_ref, happy(relu=L.LeakyReLU()))
    assert err.diagnosis == "wrong_layer"
    assert "where ReLU was expected" in err.message


def test_several_problems_lead_with_the_first_and_list_others(happy_ref):
    found = sequential(*happy_layers(conv=L.Conv2D(16, 7), bn=None, dense=L.Dense(10)))
    err = failure(happy_ref, found)
    assert err.diagnosis == "wrong_params:Conv2D"
    assert "Also: BatchNormalization is missing between Conv2D and ReLU; Dense has 10 units" in err.message


def test_output_taken_from_first_conv_reports_disconnected_layers(conv_ref):
    x = keras.Input(SHAPE)
    first = L.Conv2D(8, 4, padding="same")(x)
    y = L.ReLU(name="the_relu")(L.BatchNormalization(name="the_bn")(first))
    L.Dense(6, activation="softmax", name="the_dense")(L.Flatten()(y))
    err = failure(conv_ref, keras.Model(x, first), exercise="convolutional_model")
    assert err.diagnosis == "disconnected_layers"
    assert "'the_bn', 'the_relu'" in err.message and "'the_dense'" in err.message
    assert "created but never connected to the output" in err.message
    assert err.table.marked == 1 and err.table.rows[1][2] == "—"


def test_extra_branch_is_wrong_branching(conv_ref):
    x = keras.Input(SHAPE)
    y = L.ReLU()(L.BatchNormalization()(L.Conv2D(8, 4, padding="same")(x)))
    y = L.Add(name="merge")([y, L.Conv2D(8, 1, padding="same", name="shortcut")(x)])
    y = L.MaxPooling2D(8, strides=8, padding="same")(y)
    y = L.ReLU()(L.BatchNormalization()(L.Conv2D(16, 2, padding="same")(y)))
    y = L.Dense(6, activation="softmax")(L.Flatten()(L.MaxPooling2D(4, strides=4, padding="same")(y)))
    err = failure(conv_ref, keras.Model(x, y), exercise="convolutional_model")
    assert err.diagnosis == "wrong_branching"
    assert err.message.startswith("The input feeds 2 layers")
    assert "'shortcut'" in err.message and "each layer feeds only the next one" in err.message
    assert err.table.rows[err.table.marked][2] == "Conv2D 8 @ 1x1, stride 1, same"


def test_layer_feeding_two_consumers_is_wrong_branching(happy_ref):
    x = keras.Input(SHAPE)
    c = L.Conv2D(32, 7, name="conv")(L.ZeroPadding2D(3)(x))
    y = L.Add()([L.ReLU()(L.BatchNormalization(axis=3)(c)), c])
    y = L.Dense(1, activation="sigmoid")(L.Flatten()(L.MaxPooling2D()(y)))
    err = failure(happy_ref, keras.Model(x, y))
    assert err.diagnosis == "wrong_branching"
    assert err.message.startswith("Conv2D 'conv' feeds 2 layers")


def test_batchnorm_variant_against_reference_is_bn_missing(conv_ref):
    err = failure(conv_ref, convolutional(bn=False), exercise="convolutional_model")
    assert err.diagnosis == "bn_missing"
    assert err.message.startswith("The first BatchNormalization is missing between Conv2D and ReLU.")
    assert "Also: the second BatchNormalization is missing" in err.message


# ------------------------------------------------------------- BN after Conv2D

def test_bn_after_conv_passes_for_the_references(happy_ref, conv_ref):
    expect_bn_after_conv(happy_ref)
    expect_bn_after_conv(conv_ref)


def test_bn_after_relu_never_shows_names_keras_made_up():
    model = happy_in_order("pad", "conv", "relu", "bn", "pool", "flat", "dense",
                           bn=L.BatchNormalization(name="batch_normalization"), relu=L.ReLU(name="re_lu"))
    with pytest.raises(CheckFailed) as info:
        expect_bn_after_conv(model)
    err = info.value
    assert err.diagnosis == "relu_before_bn"
    assert err.message.startswith("BatchNormalization takes its input from ReLU, not from a Conv2D.")
    assert "re_lu" not in err.message and "batch_normalization" not in err.message
    assert err.table.marked == 3


def test_bn_after_relu_names_a_layer_the_student_named():
    model = happy_in_order("pad", "conv", "relu", "bn", "pool", "flat", "dense",
                           bn=L.BatchNormalization(name="my_bn"), relu=L.ReLU(name="my_relu"))
    with pytest.raises(CheckFailed) as info:
        expect_bn_after_conv(model)
    assert "BatchNormalization 'my_bn' takes its input from ReLU 'my_relu', not from a Conv2D" in info.value.message


def test_bn_after_conv_checks_the_axis_and_presence():
    with pytest.raises(CheckFailed) as info:
        expect_bn_after_conv(happy(bn=L.BatchNormalization(axis=2)))
    assert info.value.diagnosis == "bn_wrong_axis"
    with pytest.raises(CheckFailed) as info:
        expect_bn_after_conv(convolutional(bn=False))
    assert info.value.diagnosis == "bn_missing"
    expect_bn_after_conv(convolutional(bn=False), minimum=0)


# --------------------------------------------------------------- Keras 2 API

def test_tf_keras_graph_walk_sequential_and_functional(happy_ref, conv_ref):
    tf_keras = pytest.importorskip("tf_keras")
    K = tf_keras.layers
    seq = tf_keras.Sequential([K.ZeroPadding2D(3, input_shape=SHAPE), K.Conv2D(32, 7), K.BatchNormalization(axis=3),
                               K.ReLU(), K.MaxPool2D(), K.Flatten(), K.Dense(1, activation="sigmoid")])
    assert layer_specs(seq) == layer_specs(happy_ref)
    expect_architecture(happy_ref, seq, exercise="happyModel")

    x = tf_keras.Input(SHAPE)
    y = K.ReLU()(K.BatchNormalization()(K.Conv2D(8, 4, padding="same")(x)))
    y = K.MaxPooling2D(8, strides=8, padding="same")(y)
    c = K.Conv2D(16, 2, padding="same")(y)
    y = K.Activation("relu")(K.BatchNormalization(axis=-1)(c))
    y = K.Dense(6, activation="softmax")(K.Flatten()(K.MaxPooling2D(4, strides=4, padding="same")(y)))
    assert layer_specs(tf_keras.Model(x, y)) == layer_specs(conv_ref)
    err = failure(conv_ref, tf_keras.Model(x, c), exercise="convolutional_model")
    assert err.diagnosis == "disconnected_layers"


def _residual(*, shortcut_from_relu: bool):
    x = keras.Input((16, 16, 3))
    a = L.Conv2D(4, 3, padding="same")(x)
    b = L.ReLU()(a)
    c = L.Conv2D(4, 3, padding="same")(b)
    return keras.Model(x, L.Flatten()(L.Add(name="merge")([c, b if shortcut_from_relu else a])))


def test_same_layers_wired_differently_is_wrong_branching():
    expected = _residual(shortcut_from_relu=False)
    expect_architecture(expected, _residual(shortcut_from_relu=False), exercise="residual")
    err = failure(expected, _residual(shortcut_from_relu=True), exercise="residual")
    assert err.diagnosis == "wrong_branching"
    assert err.message.startswith("Add 'merge' takes its input from ReLU")
    assert err.table.rows[err.table.marked][1:] == ("Add", "Add")


@pytest.mark.parametrize("build", [happy, convolutional], ids=["happyModel", "convolutional_model"])
def test_json_round_trip_keeps_the_specs(build):
    """Graded models arrive rebuilt from JSON; the rebuild must read the same."""
    model = build()
    assert layer_specs(keras.models.model_from_json(model.to_json())) == layer_specs(model)


# ------------------------------------------------------------------ a conv's bias before BatchNormalization

def test_a_keras_conv_bias_before_batchnorm_like_the_reference_passes_without_a_note(happy_ref):
    """The course's Conv2D keeps Keras' default use_bias=True: the student wrote what was asked."""
    from grader.results import collecting_notes

    with collecting_notes() as notes:
        expect_architecture(happy_ref, happy(conv=L.Conv2D(32, 7, use_bias=True)), exercise="happyModel")
    assert notes == []


def test_a_keras_conv_bias_against_a_reference_without_one_is_a_difference_in_keras_words():
    """Keras compares use_bias as a setting (its output check copies weights layer by layer, bias
    included), so a bias the reference lacks is not accepted there, unlike PyTorch's graph."""
    err = failure(happy(conv=L.Conv2D(32, 7, use_bias=False)), happy())
    assert err.diagnosis == "wrong_params:Conv2D"
    assert err.message.startswith("Conv2D has a bias; expected no bias."), err.message
    assert "nn." not in err.message + err.hint


def test_keras_sentences_keep_keras_names(happy_ref):
    err = failure(happy_ref, happy(bn=None))
    assert err.message.startswith("BatchNormalization is missing between Conv2D and ReLU"), err.message
    assert err.hint == HINT_BN_KERAS
    for torch_name in ("nn.", "torch.", "F.", "bias=False"):
        assert torch_name not in err.message + err.hint, torch_name


HINT_BN_KERAS = ("put BatchNormalization directly after each Conv2D and the activation after it: "
                 "Conv2D -> BatchNormalization -> ReLU.")
