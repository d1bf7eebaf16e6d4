"""Reference solutions for dls_c4w2a1: the well-known course exercise on residual networks
(`identity_block`, `convolutional_block`, `ResNet50`).

The assignment declares `keras = "3"`. Students' notebooks come in three variants (with a
`training` argument, without it, and the Keras 2 era `stage, block` one written against
`keras.layers`); all three run as they are under Keras 3, where `tensorflow.keras` and
`keras` are the same package. Under `keras = "2"` the Keras 2 era variant would build
Keras 3 models (`import keras` stays Keras 3 there) next to a tf_keras reference, and
`K.set_learning_phase` does not exist in Keras 3 either way; the grader never runs that
call (it is not a definition), so nothing is lost.

`keras` is imported directly, not as `tf.keras`: in a grading process where TensorFlow was
first imported with `TF_USE_LEGACY_KERAS=1` (a Keras 2 assignment graded earlier),
`tf.keras` would be tf_keras for the rest of the process, while `import keras` is Keras 3
whatever happened before.

This module is also the assignment's master (validate-assignment builds the solved
notebook and the template from it), so the three graded functions are written as a
student would write them, and the block models the tests compare against are built by
`identity_block_model` and friends, the reference's twins of `probes.py`.
"""
from __future__ import annotations

from keras import Input, Model
from keras.initializers import glorot_uniform, random_uniform
from keras.layers import (Activation, Add, AveragePooling2D, BatchNormalization, Conv2D, Dense, Flatten,
                          MaxPooling2D, ZeroPadding2D)


def identity_block(X, f, filters, training=True, initializer=random_uniform):
    """Main path Conv2D(F1, 1x1) -> BN -> ReLU -> Conv2D(F2, fxf, same) -> BN -> ReLU
    -> Conv2D(F3, 1x1) -> BN; the block's input is added back before the last ReLU, so the
    block only has to learn a correction to the identity."""
    F1, F2, F3 = filters
    X_shortcut = X
    X = Conv2D(F1, 1, strides=1, padding="valid", kernel_initializer=initializer(seed=0))(X)
    X = BatchNormalization(axis=3)(X, training=training)
    X = Activation("relu")(X)
    X = Conv2D(F2, f, strides=1, padding="same", kernel_initializer=initializer(seed=0))(X)
    X = BatchNormalization(axis=3)(X, training=training)
    X = Activation("relu")(X)
    X = Conv2D(F3, 1, strides=1, padding="valid", kernel_initializer=initializer(seed=0))(X)
    X = BatchNormalization(axis=3)(X, training=training)
    X = Add()([X, X_shortcut])
    X = Activation("relu")(X)
    return X


def convolutional_block(X, f, filters, s=2, training=True, initializer=glorot_uniform):
    """The identity block's main path with stride s on its first Conv2D; the shortcut is a
    Conv2D(F3, 1x1, stride s) -> BN projection, so both branches have the same shape."""
    F1, F2, F3 = filters
    X_shortcut = X
    X = Conv2D(F1, 1, strides=s, padding="valid", kernel_initializer=initializer(seed=0))(X)
    X = BatchNormalization(axis=3)(X, training=training)
    X = Activation("relu")(X)
    X = Conv2D(F2, f, strides=1, padding="same", kernel_initializer=initializer(seed=0))(X)
    X = BatchNormalization(axis=3)(X, training=training)
    X = Activation("relu")(X)
    X = Conv2D(F3, 1, strides=1, padding="valid", kernel_initializer=initializer(seed=0))(X)
    X = BatchNormalization(axis=3)(X, training=training)
    X_shortcut = Conv2D(F3, 1, strides=s, padding="valid", kernel_initializer=initializer(seed=0))(X_shortcut)
    X_shortcut = BatchNormalization(axis=3)(X_shortcut, training=training)
    X = Add()([X, X_shortcut])
    X = Activation("relu")(X)
    return X


def ResNet50(input_shape=(64, 64, 3), classes=6):
    """ZeroPadding2D(3) -> Conv2D(64, 7x7, stride 2) -> BN -> ReLU -> MaxPool(3x3, stride 2)
    -> four stages of one convolutional block and 2, 3, 5, 2 identity blocks (stage 2 keeps
    the size, s=1; stages 3-5 halve it, s=2) -> AveragePooling2D(2x2) -> Flatten
    -> Dense(classes, softmax)."""
    X_input = Input(input_shape)
    X = ZeroPadding2D((3, 3))(X_input)
    X = Conv2D(64, (7, 7), strides=(2, 2), kernel_initializer=glorot_uniform(seed=0))(X)
    X = BatchNormalization(axis=3)(X)
    X = Activation("relu")(X)
    X = MaxPooling2D((3, 3), strides=(2, 2))(X)
    X = convolutional_block(X, f=3, filters=[64, 64, 256], s=1)
    X = identity_block(X, 3, [64, 64, 256])
    X = identity_block(X, 3, [64, 64, 256])
    X = convolutional_block(X, f=3, filters=[128, 128, 512], s=2)
    X = identity_block(X, 3, [128, 128, 512])
    X = identity_block(X, 3, [128, 128, 512])
    X = identity_block(X, 3, [128, 128, 512])
    X = convolutional_block(X, f=3, filters=[256, 256, 1024], s=2)
    X = identity_block(X, 3, [256, 256, 1024])
    X = identity_block(X, 3, [256, 256, 1024])
    X = identity_block(X, 3, [256, 256, 1024])
    X = identity_block(X, 3, [256, 256, 1024])
    X = identity_block(X, 3, [256, 256, 1024])
    X = convolutional_block(X, f=3, filters=[512, 512, 2048], s=2)
    X = identity_block(X, 3, [512, 512, 2048])
    X = identity_block(X, 3, [512, 512, 2048])
    X = AveragePooling2D((2, 2))(X)
    X = Flatten()(X)
    X = Dense(classes, activation="softmax", kernel_initializer=glorot_uniform(seed=0))(X)
    return Model(inputs=X_input, outputs=X)


# ---------------------------------------------------------------- what the tests compare against

def identity_block_model(input_shape, f, filters, training=None):
    """Input -> identity_block -> Model. `training=None` leaves BatchNormalization's mode to
    the call (`model(x, training=...)`), which is how a correct block behaves."""
    X = Input(tuple(input_shape))
    return Model(X, identity_block(X, f, list(filters), training=training))


def convolutional_block_model(input_shape, f, filters, s, training=None):
    X = Input(tuple(input_shape))
    return Model(X, convolutional_block(X, f, list(filters), s=s, training=training))
