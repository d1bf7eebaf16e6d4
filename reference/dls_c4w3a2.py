"""Reference solutions for dls_c4w3a2: the well-known course exercise on image segmentation
with a U-Net (`conv_block`, `upsampling_block`, `unet_model`).

The assignment declares `keras = "3"`: real notebooks import from `tensorflow.keras`,
which is Keras 3 here. `keras` is imported directly, not as `tf.keras`, so that a grading
process that graded a Keras 2 assignment earlier still builds Keras 3 references.

This module is also the assignment's master (validate-assignment builds the solved
notebook and the template from it), so the three graded functions are written as a
student would write them; the block models the tests compare against are built by
`conv_block_model` and `upsampling_block_model`, the reference's twins of `probes.py`.
"""
from __future__ import annotations

from keras import Input, Model
from keras.layers import Conv2D, Conv2DTranspose, Dropout, MaxPooling2D, concatenate


def conv_block(inputs=None, n_filters=32, dropout_prob=0, max_pooling=True):
    """Two 3x3 'same' ReLU convolutions, an optional Dropout, then an optional 2x2
    max-pooling. The convolutions' output is kept as the skip connection, at full
    resolution: the decoder needs the detail that the pooling throws away."""
    conv = Conv2D(n_filters, 3, activation="relu", padding="same", kernel_initializer="he_normal")(inputs)
    conv = Conv2D(n_filters, 3, activation="relu", padding="same", kernel_initializer="he_normal")(conv)
    if dropout_prob > 0:
        conv = Dropout(dropout_prob)(conv)
    if max_pooling:
        next_layer = MaxPooling2D(pool_size=(2, 2))(conv)
    else:
        next_layer = conv
    skip_connection = conv
    return next_layer, skip_connection


def upsampling_block(expansive_input, contractive_input, n_filters=32):
    """A stride-2 transposed convolution doubles the map's size, the encoder's skip
    connection of that size is joined on the channel axis, and two 3x3 convolutions mix
    the two."""
    up = Conv2DTranspose(n_filters, 3, strides=2, padding="same")(expansive_input)
    merge = concatenate([up, contractive_input], axis=3)
    conv = Conv2D(n_filters, 3, activation="relu", padding="same", kernel_initializer="he_normal")(merge)
    conv = Conv2D(n_filters, 3, activation="relu", padding="same", kernel_initializer="he_normal")(conv)
    return conv


def unet_model(input_size=(96, 128, 3), n_filters=32, n_classes=23):
    """Five encoder blocks (x1, x2, x4, x8 filters, then x8 and x16 with dropout 0.3, the
    last without pooling), four decoder blocks each joined to the skip connection of the
    encoder block of the same size (in mirror order), a 3x3 convolution and a 1x1
    convolution giving one logit per class and pixel."""
    inputs = Input(input_size)
    cblock1 = conv_block(inputs, n_filters)
    cblock2 = conv_block(cblock1[0], n_filters * 2)
    cblock3 = conv_block(cblock2[0], n_filters * 4)
    cblock4 = conv_block(cblock3[0], n_filters * 8, dropout_prob=0.3)
    cblock5 = conv_block(cblock4[0], n_filters * 16, dropout_prob=0.3, max_pooling=False)
    ublock6 = upsampling_block(cblock5[0], cblock4[1], n_filters * 8)
    ublock7 = upsampling_block(ublock6, cblock3[1], n_filters * 4)
    ublock8 = upsampling_block(ublock7, cblock2[1], n_filters * 2)
    ublock9 = upsampling_block(ublock8, cblock1[1], n_filters)
    conv9 = Conv2D(n_filters, 3, activation="relu", padding="same", kernel_initializer="he_normal")(ublock9)
    conv10 = Conv2D(n_classes, 1, padding="same")(conv9)
    model = Model(inputs=inputs, outputs=conv10)
    return model


# ---------------------------------------------------------------- what the tests compare against

def conv_block_model(input_shape, n_filters, dropout_prob, max_pooling):
    """Input -> conv_block -> Model with two outputs, (next_layer, skip_connection), so
    each output is compared with its own counterpart."""
    X = Input(tuple(input_shape))
    next_layer, skip_connection = conv_block(X, n_filters, dropout_prob, max_pooling)
    return Model(X, [next_layer, skip_connection])


def upsampling_block_model(expansive_shape, contractive_shape, n_filters):
    """Two inputs (the decoder's map, the encoder's skip connection) -> upsampling_block."""
    expansive = Input(tuple(expansive_shape))
    contractive = Input(tuple(contractive_shape))
    return Model([expansive, contractive], upsampling_block(expansive, contractive, n_filters))
