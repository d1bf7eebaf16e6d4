"""Reference solutions for the conv_bn assignment (input standardization and
BatchNormalization after Conv2D).

These are what students' answers are compared against, so they favour being obviously
right over being short: statistics are computed in float64 and only the results are cast
to float32, and the models name every layer argument the exercise text names.
TensorFlow is imported inside the model builders, so code that needs only the NumPy
references does not pay for importing it (about 3 s here).
"""
from __future__ import annotations

import numpy as np


def _channel_axes(x: np.ndarray) -> tuple[int, ...]:
    # Channels are last; a convolution shares its weights over images, rows and columns,
    # so those are the axes a statistic is pooled over.
    return tuple(range(x.ndim - 1))


def standardize(X_train, X_test):
    """Per-channel standardization with statistics from `X_train` only.

    Only the training set is measured because the test set stands in for data that
    arrives after training; measuring it would leak information and apply a different
    transform to it than the model was trained with.
    """
    train = np.asarray(X_train, dtype=np.float64)
    test = np.asarray(X_test, dtype=np.float64)
    axes = _channel_axes(train)
    mean = train.mean(axis=axes)
    std = train.std(axis=axes)  # population (ddof=0), as Keras' Normalization layer uses
    return ((train - mean) / std).astype(np.float32), ((test - mean) / std).astype(np.float32)


def batchnorm_forward(x, gamma, beta, eps=1e-3):
    """Training-mode batch normalization, channels last, as Keras computes it.

    `eps` sits inside the square root (Keras' default epsilon is 1e-3) so a channel
    with almost no variance is scaled by about 1/sqrt(eps) instead of blowing up.
    """
    x = np.asarray(x)
    axes = _channel_axes(x)
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=axes)
    var = x64.var(axis=axes)
    out = np.asarray(gamma, np.float64) * (x64 - mean) / np.sqrt(var + eps) + np.asarray(beta, np.float64)
    return out.astype(x.dtype if np.issubdtype(x.dtype, np.floating) else np.float32)


def batchnorm_forward_keras(x, gamma, beta, eps=1e-3):
    """The same through Keras' own layer, for the test that shows a student's output is what
    Keras computes. It lives here, with the solutions, and never in the grader package that
    students install: it is a working `batchnorm_forward`.

    Runs TensorFlow ops: only in the grading process, never in one that forks the sandbox
    worker afterwards (a child forked after any TF op hangs in its first op)."""
    import keras

    x = np.asarray(x, dtype=np.float32)
    layer = keras.layers.BatchNormalization(axis=-1, epsilon=eps)
    layer.build(x.shape)
    layer.gamma.assign(np.asarray(gamma, dtype=np.float32))
    layer.beta.assign(np.asarray(beta, dtype=np.float32))
    return np.asarray(layer(x, training=True))


def happyModel():
    """Conv -> BN -> ReLU as a Sequential model, the binary smiling/frowning classifier."""
    import tensorflow as tf

    tfl = tf.keras.layers
    return tf.keras.Sequential([
        tf.keras.Input(shape=(64, 64, 3)),
        tfl.ZeroPadding2D(padding=3),
        tfl.Conv2D(32, 7, strides=1),
        tfl.BatchNormalization(axis=3),
        tfl.ReLU(),
        tfl.MaxPooling2D(),
        tfl.Flatten(),
        tfl.Dense(1, activation="sigmoid"),
    ])


def convolutional_model(input_shape):
    """Two Conv -> BN -> ReLU -> MaxPool blocks and a 6-way softmax, functional API."""
    import tensorflow as tf

    tfl = tf.keras.layers
    inputs = tf.keras.Input(shape=input_shape)
    x = tfl.Conv2D(8, 4, padding="same")(inputs)
    x = tfl.BatchNormalization(axis=3)(x)
    x = tfl.ReLU()(x)
    x = tfl.MaxPooling2D(pool_size=8, strides=8, padding="same")(x)
    x = tfl.Conv2D(16, 2, padding="same")(x)
    x = tfl.BatchNormalization(axis=3)(x)
    x = tfl.ReLU()(x)
    x = tfl.MaxPooling2D(pool_size=4, strides=4, padding="same")(x)
    x = tfl.Flatten()(x)
    outputs = tfl.Dense(6, activation="softmax")(x)
    return tf.keras.Model(inputs=inputs, outputs=outputs)
