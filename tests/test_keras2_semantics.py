"""Keras 2 era notebooks keep their Keras 2 semantics in the sandbox (grader/frameworks/keras):
each difference Keras 3 introduced that course notebooks hit, tested on a real notebook in
the real sandbox, under a Keras 3 worker and under a tf_keras (`keras = "2"`) worker, whose
`import keras` is Keras 3 too.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import notebook
from grader.assignment.spec import load_assignment
from grader.frameworks.keras.child.keras2 import DIFFERENCES, legacy_targets
from grader.run.submission import Submission

REPO = Path(__file__).resolve().parent.parent

IMPORTS = """\
import numpy as np
import tensorflow as tf
import keras
from keras.layers.core import Dense, Activation, Flatten
from keras.layers.convolutional import Conv2D
from keras.layers.normalization import BatchNormalization
from keras.layers.merge import concatenate, Add
from keras.layers.pooling import MaxPooling2D
from keras.utils.data_utils import get_file
from keras.utils.vis_utils import model_to_dot, plot_model
from keras.utils.np_utils import to_categorical
from keras.utils import layer_utils
from keras.engine.topology import Input
from tensorflow.keras.layers.experimental.preprocessing import RandomFlip
import keras.backend as K
from keras.layers import AveragePooling2D
"""

FUNCTIONS = '''\
def bare_average_pooling(input_shape=(8, 8, 3)):
    X_input = Input(input_shape)
    X = AveragePooling2D()(X_input)
    X = keras.layers.AveragePooling2D(padding='same')(X)
    return keras.Model(X_input, X)


def tf_keras_bare_average_pooling():
    X_input = tf.keras.Input((8, 8, 3))
    return tf.keras.Model(X_input, tf.keras.layers.AveragePooling2D()(X_input))


def old_paths_model():
    X_input = Input((4, 4, 2))
    a = Conv2D(3, 1)(X_input)
    b = Conv2D(3, 1)(X_input)
    X = concatenate([a, b], axis=3)
    X = Add()([X, X])
    X = BatchNormalization(axis=3, fused=True)(X)
    X = Activation('relu')(X)
    X = Flatten()(X)
    X = Dense(4 / 2)(X)
    return keras.Model(X_input, X)


def backend_shape():
    return list(K.int_shape(Input((5, 6, 7))))


def where_names_come_from():
    return [get_file.__name__, model_to_dot.__name__, plot_model.__name__, to_categorical.__name__,
            RandomFlip.__name__, MaxPooling2D.__name__, type(layer_utils).__name__]
'''


def grader_spec(tmp_path: Path, keras: str) -> object:
    folder = tmp_path / f"keras{keras}_demo"
    (folder / "tests").mkdir(parents=True)
    (folder / "reference.py").write_text("def bare_average_pooling():\n    return None\n")
    (folder / "assignment.toml").write_text(f'reference = "reference.py"\nexercises = ["bare_average_pooling"]\n'
                                            f'keras = "{keras}"\ncall_timeout = 60\n')
    return load_assignment(folder)


@pytest.fixture(scope="module")
def keras3_submission(tmp_path_factory, worker):
    tmp = tmp_path_factory.mktemp("keras2_semantics")
    path = notebook(tmp / "old.ipynb", IMPORTS, FUNCTIONS, "model = bare_average_pooling()\nmodel.summary()\n")
    submission = Submission(path, grader_spec(tmp, "3"), worker).open()
    yield submission
    submission.close()


def test_the_old_imports_all_load(keras3_submission):
    assert keras3_submission.warnings == [], keras3_submission.warnings


def test_average_pooling_without_pool_size_pools_2x2(keras3_submission):
    model = keras3_submission.model("bare_average_pooling")
    pools = [l for l in model.layers if type(l).__name__ == "AveragePooling2D"]
    assert [tuple(l.get_config()["pool_size"]) for l in pools] == [(2, 2), (2, 2)]
    assert tuple(model.output.shape) == (None, 2, 2, 3)
    tf_model = keras3_submission.model("tf_keras_bare_average_pooling")
    assert tuple(tf_model.output.shape) == (None, 4, 4, 3)


def test_old_module_paths_float_units_and_fused(keras3_submission):
    model = keras3_submission.model("old_paths_model")
    kinds = [type(l).__name__ for l in model.layers]
    assert kinds == ["InputLayer", "Conv2D", "Conv2D", "Concatenate", "Add", "BatchNormalization",
                     "Activation", "Flatten", "Dense"], kinds
    assert model.layers[-1].get_config()["units"] == 2
    assert "fused" not in model.layers[5].get_config()


def test_keras_backend_functions_and_utils_resolve(keras3_submission):
    assert keras3_submission.call("backend_shape") == [None, 5, 6, 7]
    assert keras3_submission.call("where_names_come_from") == [
        "get_file", "model_to_dot", "plot_model", "to_categorical", "RandomFlip", "MaxPooling2D",
        "_LegacyModule"]


def test_keras_3_imported_by_a_keras_2_notebook_under_tf_keras(tmp_path, keras2_worker):
    """Under `keras = "2"` tf.keras is tf_keras, but `import keras` is Keras 3, imported
    after the sandbox started: the Keras 2 defaults are restored on it as it is imported."""
    path = notebook(tmp_path / "old.ipynb", "import keras\nfrom keras.layers import AveragePooling2D, Input\n",
                    "def bare_average_pooling():\n    X = Input((6, 6, 1))\n"
                    "    return keras.Model(X, AveragePooling2D()(X))\n")
    submission = Submission(path, grader_spec(tmp_path, "2"), keras2_worker).open()
    try:
        assert submission.warnings == [], submission.warnings
        model = submission.model("bare_average_pooling")
    finally:
        submission.close()
    assert tuple(model.output.shape) == (None, 3, 3, 1)


def test_only_keras_2_paths_are_restored():
    assert legacy_targets("keras.layers.merge") == ("keras.layers",)
    assert legacy_targets("tensorflow.keras.layers.experimental.preprocessing") == ("tensorflow.keras.layers",)
    assert legacy_targets("keras.engine.topology") == ("keras.layers", "keras.models", "keras")
    assert legacy_targets("keras.layers.not_a_module") == ()
    assert legacy_targets("numpy.core") == ()


def test_every_difference_is_listed_in_the_authoring_guide():
    guide = (REPO / "docs" / "authoring.md").read_text(encoding="utf-8")
    section = guide[guide.index("### Keras 2 era notebooks"):]
    for difference in DIFFERENCES:
        assert difference.keras2.split("`")[1] in section, difference
