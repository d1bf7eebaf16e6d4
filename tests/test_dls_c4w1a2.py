"""dls_c4w1a2 end to end: students' existing notebooks for the course exercise, graded as
they are, under tf_keras (`keras = "2"`).

The notebooks are written the way that course's notebooks are laid out: no tags, helper
modules (`cnn_utils`, `test_utils`) and data files that are not there, training and
plotting cells, and models written for Keras 2 era tf.keras (`input_shape=` on the first
layer, `padding='SAME'` in capitals, which Keras 3 rejects). Every notebook is graded
through the real path (sandbox worker, rebuild, the assignment's pytest tests).
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader.assignment.spec import load_assignment
from grader.run.grading import grade_submission
from grader.results import Status
from grader.run.submission import Submission

REPO = Path(__file__).resolve().parent.parent
ASSIGNMENT = "dls_c4w1a2"

# ------------------------------------------------------------------ notebook pieces

IMPORTS = """\
import math
import numpy as np
import h5py
import matplotlib.pyplot as plt
from matplotlib.pyplot import imread
import scipy
from PIL import Image
import pandas as pd
import tensorflow as tf
import tensorflow.keras.layers as tfl
from tensorflow.python.framework import ops
from cnn_utils import *
from test_utils import summary, comparator

%matplotlib inline
np.random.seed(1)
"""

LOAD_HAPPY = """\
X_train_orig, Y_train_orig, X_test_orig, Y_test_orig, classes = load_happy_dataset()

# Normalize image vectors
X_train = X_train_orig/255.
X_test = X_test_orig/255.

# Reshape
Y_train = Y_train_orig.T
Y_test = Y_test_orig.T

print ("number of training examples = " + str(X_train.shape[0]))
print ("X_train shape: " + str(X_train.shape))
"""

SHOW_HAPPY = """\
index = 124
plt.imshow(X_train_orig[index]) #display sample training image
plt.show()
"""

HAPPY_OK = """\
# GRADED FUNCTION: happyModel

def happyModel():
    \"\"\"
    Binary classifier, Sequential API.
    \"\"\"
    model = tf.keras.Sequential([
            ## ZeroPadding2D with padding 3, input shape of 64 x 64 x 3
            tfl.ZeroPadding2D(padding=(3, 3), input_shape=(64, 64, 3)),
            ## Conv2D with 32 7x7 filters and stride of 1
            tfl.Conv2D(32, (7, 7), strides=(1, 1), name='conv0'),
            ## BatchNormalization for axis 3
            tfl.BatchNormalization(axis=3, name='bn0'),
            ## ReLU
            tfl.ReLU(),
            ## Max Pooling 2D with default parameters
            tfl.MaxPool2D(),
            ## Flatten layer
            tfl.Flatten(),
            ## Dense layer with 1 unit for output & 'sigmoid' activation
            tfl.Dense(1, activation='sigmoid', name='fc'),
        ])
    return model
"""

HAPPY_RELU_FIRST = HAPPY_OK.replace(
    "tfl.BatchNormalization(axis=3, name='bn0'),\n            ## ReLU\n            tfl.ReLU(),",
    "tfl.ReLU(),\n            ## BatchNormalization for axis 3\n            tfl.BatchNormalization(axis=3, name='bn0'),")

HAPPY_SUMMARY = """\
happy_model = happyModel()
# Print a summary for each layer
for layer in summary(happy_model):
    print(layer)

output = [['ZeroPadding2D', (None, 70, 70, 3), 0, ((3, 3), (3, 3))],
            ['Conv2D', (None, 64, 64, 32), 4736, 'valid', 'linear', 'GlorotUniform'],
            ['BatchNormalization', (None, 64, 64, 32), 128],
            ['ReLU', (None, 64, 64, 32), 0],
            ['MaxPooling2D', (None, 32, 32, 32), 0, (2, 2), (2, 2), 'valid'],
            ['Flatten', (None, 32768), 0],
            ['Dense', (None, 1), 32769, 'sigmoid']]

comparator(summary(happy_model), output)
"""

HAPPY_TRAIN = """\
happy_model.compile(optimizer='adam',
                   loss='binary_crossentropy',
                   metrics=['accuracy'])
happy_model.summary()
happy_model.fit(X_train, Y_train, epochs=10, batch_size=16)
happy_model.evaluate(X_test, Y_test)
"""

LOAD_SIGNS = """\
# Loading the data (signs)
X_train_orig, Y_train_orig, X_test_orig, Y_test_orig, classes = load_signs_dataset()
"""

READ_H5 = """\
with h5py.File('datasets/train_signs.h5', "r") as train_dataset:
    train_set_x_orig = np.array(train_dataset["train_set_x"][:])
    train_set_y_orig = np.array(train_dataset["train_set_y"][:])
"""

SHOW_SIGNS = """\
# Example of an image from the dataset
index = 9
plt.imshow(X_train_orig[index])
print ("y = " + str(np.squeeze(Y_train_orig[:, index])))
"""

PREPARE_SIGNS = """\
X_train = X_train_orig/255.
X_test = X_test_orig/255.
Y_train = convert_to_one_hot(Y_train_orig, 6).T
Y_test = convert_to_one_hot(Y_test_orig, 6).T
print ("number of training examples = " + str(X_train.shape[0]))
"""

CONV_OK = """\
# GRADED FUNCTION: convolutional_model

def convolutional_model(input_shape):
    \"\"\"
    CONV2D -> RELU -> MAXPOOL -> CONV2D -> RELU -> MAXPOOL -> FLATTEN -> DENSE
    \"\"\"
    input_img = tf.keras.Input(shape=input_shape)
    ## CONV2D: 8 filters 4x4, stride of 1, padding 'SAME'
    Z1 = tfl.Conv2D(filters=8, kernel_size=(4, 4), strides=(1, 1), padding='same')(input_img)
    ## RELU
    A1 = tfl.ReLU()(Z1)
    ## MAXPOOL: window 8x8, stride 8, padding 'SAME'
    P1 = tfl.MaxPool2D(pool_size=(8, 8), strides=(8, 8), padding='SAME')(A1)
    ## CONV2D: 16 filters 2x2, stride 1, padding 'SAME'
    Z2 = tfl.Conv2D(filters=16, kernel_size=(2, 2), strides=(1, 1), padding='same')(P1)
    ## RELU
    A2 = tfl.ReLU()(Z2)
    ## MAXPOOL: window 4x4, stride 4, padding 'SAME'
    P2 = tfl.MaxPool2D(pool_size=(4, 4), strides=(4, 4), padding='SAME')(A2)
    ## FLATTEN
    F = tfl.Flatten()(P2)
    ## Dense layer, 6 neurons in output layer, softmax activation
    outputs = tfl.Dense(units=6, activation='softmax')(F)
    model = tf.keras.Model(inputs=input_img, outputs=outputs)
    return model
"""

CONV_TRUNCATED = CONV_OK.replace("model = tf.keras.Model(inputs=input_img, outputs=outputs)",
                                 "model = tf.keras.Model(inputs=input_img, outputs=Z1)")

CONV_SUMMARY = """\
conv_model = convolutional_model((64, 64, 3))
conv_model.compile(optimizer='adam',
                  loss='categorical_crossentropy',
                  metrics=['accuracy'])
conv_model.summary()

output = [['InputLayer', [(None, 64, 64, 3)], 0],
        ['Conv2D', (None, 64, 64, 8), 392, 'same', 'linear', 'GlorotUniform'],
        ['ReLU', (None, 64, 64, 8), 0],
        ['MaxPooling2D', (None, 8, 8, 8), 0, (8, 8), (8, 8), 'same'],
        ['Conv2D', (None, 8, 8, 16), 528, 'same', 'linear', 'GlorotUniform'],
        ['ReLU', (None, 8, 8, 16), 0],
        ['MaxPooling2D', (None, 2, 2, 16), 0, (4, 4), (4, 4), 'same'],
        ['Flatten', (None, 64), 0],
        ['Dense', (None, 6), 390, 'softmax']]

comparator(summary(conv_model), output)
"""

CONV_TRAIN = """\
train_dataset = tf.data.Dataset.from_tensor_slices((X_train, Y_train)).batch(64)
test_dataset = tf.data.Dataset.from_tensor_slices((X_test, Y_test)).batch(64)
history = conv_model.fit(train_dataset, epochs=100, validation_data=test_dataset)
"""

PLOTS = """\
df_loss_acc = pd.DataFrame(history.history)
df_loss = df_loss_acc[['loss','val_loss']]
df_loss.plot(title='Model loss', figsize=(12, 8)).set(xlabel='Epoch', ylabel='Loss')
"""


def course_notebook(happy: str = HAPPY_OK, conv: str = CONV_OK) -> nbformat.NotebookNode:
    """The course's layout, tags absent, around the given graded functions."""
    md = new_markdown_cell
    return new_notebook(cells=[
        md("# Convolutional Neural Networks: Application"),
        md("## 1 - Packages"),
        new_code_cell(IMPORTS),
        md("## 1.1 - Load the Data and Split the Data into Train / Test Sets"),
        new_code_cell(LOAD_HAPPY),
        new_code_cell(SHOW_HAPPY),
        md("## 3 - The Sequential API\n### Exercise 1 - happyModel"),
        new_code_cell(happy),
        new_code_cell(HAPPY_SUMMARY),
        new_code_cell(HAPPY_TRAIN),
        md("## 4 - The Functional API"),
        new_code_cell(LOAD_SIGNS),
        new_code_cell(READ_H5),
        new_code_cell(SHOW_SIGNS),
        new_code_cell(PREPARE_SIGNS),
        md("### Exercise 2 - convolutional_model"),
        new_code_cell(conv),
        new_code_cell(CONV_SUMMARY),
        new_code_cell(CONV_TRAIN),
        new_code_cell(PLOTS),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


def write(tmp_path: Path, nb, name: str) -> Path:
    path = tmp_path / name
    nbformat.write(nb, str(path))
    return path


# ------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def assignment():
    return load_assignment(ASSIGNMENT)


@pytest.fixture(scope="module")
def worker(keras2_worker):
    """The session's Keras 2 worker (conftest), shared with test_hidden_shapes."""
    return keras2_worker


def by_exercise(result) -> dict[str, list]:
    out: dict[str, list] = {}
    for test in result.tests:
        out.setdefault(test.exercise, []).append(test)
    return out


def score_of(tests) -> tuple[float, float]:
    return sum(t.score for t in tests), sum(t.max_score for t in tests)


def explain(result) -> str:
    return json.dumps(result.to_dict(), indent=1, default=str)[:6000]


# ------------------------------------------------------------------ the assignment itself

def test_spec_declares_keras_2(assignment):
    assert assignment.keras == "2"
    assert assignment.exercises == ("happyModel", "convolutional_model")
    assert assignment.reference.name == "dls_c4w1a2.py"


# ------------------------------------------------------------------ grading real notebooks

def test_course_notebook_gets_full_marks_without_import_warnings(tmp_path, assignment, worker):
    path = write(tmp_path, course_notebook(), "correct.ipynb")
    result = grade_submission(path, assignment, worker)
    assert not result.errors, explain(result)
    assert result.max_score == assignment.total_points, explain(result)
    assert result.score == result.max_score, explain(result)
    assert all(t.status is Status.PASSED for t in result.tests), explain(result)
    assert len(result.tests) == 4
    warnings = "\n".join(result.warnings)
    # The course's helper modules are declared in the spec: `cnn_utils` has a stand-in, the
    # absent `test_utils` is a note for the instructor, and no student reads an import warning.
    assert not any("import" in w for w in result.warnings), warnings
    notes = "\n".join(result.notes)
    absent = [m for m in ("test_utils", "scipy", "pandas") if importlib.util.find_spec(m) is None]
    assert len(result.notes) == 1 and "cnn_utils" not in notes, notes  # one note, for the instructor
    for module in absent:
        assert f"`{module}` (the cell starting `" in notes and "declares missing" in notes, notes
    assert not any("happyModel" in w or "convolutional_model" in w for w in result.warnings), warnings


def test_student_code_runs_and_models_come_back_under_tf_keras(tmp_path, assignment, worker):
    """The two halves of `keras = "2"`: the worker imported tf_keras as tf.keras
    (TF_USE_LEGACY_KERAS=1), and rebuild.py turns its payloads into tf_keras models."""
    assert str(worker.info.get("keras", "")).startswith("2."), worker.info
    submission = Submission(write(tmp_path, course_notebook(), "keras2.ipynb"), assignment, worker).open()
    try:
        happy = submission.model("happyModel")
        conv = submission.model("convolutional_model", (64, 64, 3))
    finally:
        submission.close()
    for model in (happy, conv):
        assert type(model).__module__.startswith("tf_keras"), type(model).__module__
    # 'SAME' in capitals reached tf_keras, which stores it normalized (Keras 3 would have raised).
    pools = [l for l in conv.layers if type(l).__name__ == "MaxPooling2D"]
    assert [l.get_config()["padding"] for l in pools] == ["same", "same"]


def test_truncated_functional_model_fails_only_convolutional_model(tmp_path, assignment, worker):
    path = write(tmp_path, course_notebook(conv=CONV_TRUNCATED), "truncated.ipynb")
    result = grade_submission(path, assignment, worker)
    assert not result.errors, explain(result)
    tests = by_exercise(result)
    assert score_of(tests["happyModel"]) == (7.0, 7.0), explain(result)
    assert score_of(tests["convolutional_model"]) == (0.0, 7.0), explain(result)
    graph, outputs = tests["convolutional_model"]
    assert graph.status is Status.FAILED
    assert graph.diagnosis == "disconnected_layers", explain(result)
    assert "never connected to the output" in graph.message, graph.message
    assert "Conv2D" in graph.message, graph.message
    assert outputs.status is Status.NOT_RUN
    assert "layer graph" in outputs.message


def test_relu_before_batchnorm_gets_the_specific_message(tmp_path, assignment, worker):
    path = write(tmp_path, course_notebook(happy=HAPPY_RELU_FIRST), "relu_first.ipynb")
    result = grade_submission(path, assignment, worker)
    assert not result.errors, explain(result)
    tests = by_exercise(result)
    order, outputs = tests["happyModel"]
    assert order.status is Status.FAILED
    assert order.diagnosis == "relu_before_bn", explain(result)
    assert "ReLU comes before BatchNormalization" in order.message, order.message
    assert order.table is not None
    assert outputs.status is Status.NOT_RUN
    assert score_of(tests["convolutional_model"]) == (7.0, 7.0), explain(result)


def test_runs_its_own_tests_after_another_assignment_in_the_same_process(tmp_path, assignment):
    """pytest's importlib mode reuses a test module already in sys.modules under the same
    file stem, so conv_bn's tests/test_convolutional_model.py (which requires
    BatchNormalization) would be run for this assignment if it were graded first in the
    process. This assignment's test files therefore have stems of their own. No sandbox
    is needed: every test fails to reach one, but which test files ran is visible."""
    conv_bn = load_assignment("conv_bn")
    ours = {p.stem for p in assignment.tests_dir.rglob("*.py")}
    assert not ours & {p.stem for p in conv_bn.tests_dir.rglob("*.py")}
    path = write(tmp_path, course_notebook(), "order.ipynb")
    first = grade_submission(path, conv_bn, None)
    assert first.tests and all(not t.nodeid.startswith("test_dls_") for t in first.tests)
    result = grade_submission(path, assignment, None)
    assert sorted(t.nodeid for t in result.tests) == [
        "test_dls_convolutional_model.py::test_layer_graph",
        "test_dls_convolutional_model.py::test_output_on_hidden_inputs",
        "test_dls_happy_model.py::test_layer_order",
        "test_dls_happy_model.py::test_output_on_hidden_inputs",
    ]


@pytest.mark.slow
def test_cli_grades_a_course_notebook_as_json(tmp_path):
    """The command line a grader runs: its own process, its own worker (about 10 s)."""
    path = write(tmp_path, course_notebook(), "cli.ipynb")
    grader = Path(sys.executable).with_name("grader")
    command = [str(grader)] if grader.exists() else [sys.executable, "-m", "grader"]
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    done = subprocess.run(command + ["grade", str(path), "--assignment", ASSIGNMENT, "--format", "json"],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip().startswith("{")]
    assert len(lines) == 1, done.stdout
    line = lines[0]
    assert line["errors"] == []
    assert (line["score"], line["max_score"]) == (14.0, 14.0), line
    assert {t["status"] for t in line["tests"]} == {"passed"}


def test_reference_builds_tf_keras_models_with_the_course_shapes(assignment):
    import importlib.util

    spec = importlib.util.spec_from_file_location("_dls_ref_check", assignment.reference)
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)
    import tensorflow as tf

    if os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        # The case that matters: TensorFlow imported without the variable (by the suite, or
        # by another assignment graded earlier in the process), so tf.keras is Keras 3 here.
        assert not tf.keras.Sequential.__module__.startswith("tf_keras")
    happy, conv = ref.happyModel(), ref.convolutional_model((64, 64, 3))
    for model in (happy, conv):
        assert type(model).__module__.startswith("tf_keras"), type(model).__module__
    assert tuple(happy.output_shape) == (None, 1)
    assert tuple(conv.output_shape) == (None, 6)
    assert happy.count_params() == 4736 + 128 + 32769
    assert conv.count_params() == 392 + 528 + 390
    assert not any("BatchNormalization" in type(l).__name__ for l in conv.layers)
