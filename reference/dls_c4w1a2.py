"""Reference solutions for dls_c4w1a2: the two Keras models of the well-known course
exercise on the Sequential and functional APIs (`happyModel`, `convolutional_model`).

Students wrote these notebooks for Keras 2 era tf.keras, so the assignment declares
`keras = "2"`: their code runs, and their models are rebuilt, under `tf_keras`. The
reference must build models of the same package, or weights could not be copied between
them and the architecture walk would compare two different Keras implementations.

`tf_keras` is imported directly instead of `tf.keras` under `TF_USE_LEGACY_KERAS=1`:
in the grading process TensorFlow may already have been imported without that variable
(another assignment graded earlier in the same process, or the test suite), and then
`tf.keras` stays Keras 3 for the rest of the process. `import tf_keras` is Keras 2
whatever happened before. It is imported inside the builders so that importing this
module costs nothing.
"""
from __future__ import annotations

INPUT_SHAPE = (64, 64, 3)


def _keras2():
    import tf_keras

    return tf_keras


def happyModel():
    """Binary smiling/not-smiling classifier, Sequential API:
    ZeroPadding2D(3) -> Conv2D(32, 7x7, stride 1) -> BatchNormalization(axis=3) -> ReLU
    -> MaxPooling2D(2) -> Flatten -> Dense(1, sigmoid), on 64x64x3 images."""
    keras = _keras2()
    tfl = keras.layers
    return keras.Sequential([
        keras.Input(shape=INPUT_SHAPE),
        tfl.ZeroPadding2D(padding=(3, 3)),
        tfl.Conv2D(filters=32, kernel_size=(7, 7), strides=(1, 1)),
        tfl.BatchNormalization(axis=3),
        tfl.ReLU(),
        tfl.MaxPooling2D(),
        tfl.Flatten(),
        tfl.Dense(units=1, activation="sigmoid"),
    ])


def convolutional_model(input_shape):
    """Six-way hand-sign classifier, functional API, no BatchNormalization:
    Conv2D(8, 4x4, 'same') -> ReLU -> MaxPool(8, stride 8, 'same')
    -> Conv2D(16, 2x2, 'same') -> ReLU -> MaxPool(4, stride 4, 'same')
    -> Flatten -> Dense(6, softmax)."""
    keras = _keras2()
    tfl = keras.layers
    input_img = keras.Input(shape=input_shape)
    x = tfl.Conv2D(filters=8, kernel_size=(4, 4), strides=(1, 1), padding="same")(input_img)
    x = tfl.ReLU()(x)
    x = tfl.MaxPooling2D(pool_size=(8, 8), strides=(8, 8), padding="same")(x)
    x = tfl.Conv2D(filters=16, kernel_size=(2, 2), strides=(1, 1), padding="same")(x)
    x = tfl.ReLU()(x)
    x = tfl.MaxPooling2D(pool_size=(4, 4), strides=(4, 4), padding="same")(x)
    x = tfl.Flatten()(x)
    outputs = tfl.Dense(units=6, activation="softmax")(x)
    return keras.Model(inputs=input_img, outputs=outputs)
