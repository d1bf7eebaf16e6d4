"""Probes: instructor code that runs in the sandbox beside the student's, graded end to end.

A small assignment is written into tmp_path (spec, reference, probes.py, tests) and real
notebooks are graded through `grade_submission` with the real sandbox and real Keras
models. Each assignment test asserts one behaviour of the probe contract and passes only
if that behaviour holds, so a submission's score tells the whole story.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import notebook
from grader.assignment.spec import load_assignment
from grader.run.grading import grade_submission
from grader.results import Status

SPEC = """\
name = "probe_demo"
exercises = ["block"]
reference = "reference.py"
probes = "probes.py"
call_timeout = 20
secret = "probe-secret"
"""

REFERENCE = '''\
import keras


def block(X, f, filters, training=True):
    Y = keras.layers.Conv2D(filters, f, padding="same")(X)
    Y = keras.layers.BatchNormalization(axis=3)(Y, training=training)
    return keras.layers.ReLU()(Y)


def block_model(f=3, filters=4):
    X = keras.Input((6, 6, 2))
    return keras.Model(X, block(X, f, filters))
'''

# The instructor's probe: wraps the student's tensor-in/tensor-out `block` into a model,
# whatever spelling of the signature the student has.
PROBES = '''\
import inspect

import keras

PROBE_SOURCE_MARKER = "probe-code-must-not-reach-students"


def block_model(f=3, filters=4):
    X = keras.Input((6, 6, 2))
    params = inspect.signature(block).parameters
    if "stage" in params:
        Y = block(X, f, filters, stage=2, block="a")
    elif "training" in params:
        Y = block(X, f, filters, training=False)
    else:
        Y = block(X, f, filters)
    return keras.Model(X, Y)


def signature_of_block():
    return list(inspect.signature(block).parameters)


def calls_a_missing_name():
    return not_written_by_anyone(1)


def _helper_is_not_a_probe():
    return 1
'''

TESTS = '''\
import numpy as np
import pytest

from grader.sandbox.client import MissingFunction, ProbeError
from grader.testing import exercise, points


@points(1)
@exercise("block")
def test_probe_model_is_rebuilt(submission):
    model = submission.probe_model("block_model", f=3, filters=4)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["InputLayer", "Conv2D", "BatchNormalization", "ReLU"], kinds
    out = np.asarray(model(np.ones((2, 6, 6, 2), np.float32)))
    assert out.shape == (2, 6, 6, 4)
    assert np.abs(np.asarray(model.layers[1].get_weights()[0])).sum() > 0


@points(1)
@exercise("block")
def test_weightless_model_keeps_architecture(submission):
    model = submission.probe_model("block_model", f=3, filters=4, weights=False)
    assert [type(layer).__name__ for layer in model.layers][1:] == ["Conv2D", "BatchNormalization", "ReLU"]
    assert np.asarray(model(np.ones((1, 6, 6, 2), np.float32))).shape == (1, 6, 6, 4)


@points(1)
@exercise("block")
def test_student_signature_is_visible(submission):
    names = submission.probe("signature_of_block")
    assert names[:3] == ["X", "f", "filters"], names


@points(1)
@exercise("block")
def test_missing_name_is_the_students(submission):
    with pytest.raises(MissingFunction, match="`not_written_by_anyone` is not defined in your notebook"):
        submission.probe("calls_a_missing_name")


@points(1)
@exercise("block")
def test_private_helpers_are_not_probes(submission):
    with pytest.raises(ProbeError):
        submission.probe("_helper_is_not_a_probe")
    with pytest.raises(ProbeError):
        submission.probe("block")  # the student's own function is not a probe either
'''

CURRENT = '''\
import tensorflow as tf
from tensorflow.keras.layers import Conv2D, BatchNormalization, ReLU


def block(X, f, filters, training=True, initializer=None):
    X = Conv2D(filters, f, padding="same")(X)
    X = BatchNormalization(axis=3)(X, training=training)
    return ReLU()(X)
'''

WITHOUT_TRAINING = '''\
import tensorflow as tf
from tensorflow.keras.layers import Conv2D, BatchNormalization, ReLU


def block(X, f, filters, initializer=None):
    X = Conv2D(filters, f, padding="same")(X)
    X = BatchNormalization(axis=3)(X)
    return ReLU()(X)
'''

STAGE_BLOCK = '''\
import tensorflow as tf
from tensorflow.keras.layers import Conv2D, BatchNormalization, ReLU


def block(X, f, filters, stage, block):
    name = "res" + str(stage) + block
    X = Conv2D(filters, f, padding="same", name=name + "_conv")(X)
    X = BatchNormalization(axis=3, name=name + "_bn")(X)
    return ReLU()(X)
'''

RAISES = '''\
import tensorflow as tf
from tensorflow.keras.layers import Conv2D


def block(X, f, filters, training=True):
    X = Conv2D(filters, f, padding="same")(X)
    shape = X.shape
    raise ValueError("filters do not match: " + str(filters))
'''


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> object:
    root = tmp_path_factory.mktemp("probe_demo")
    (root / "tests").mkdir()
    (root / "assignment.toml").write_text(SPEC)
    (root / "reference.py").write_text(REFERENCE)
    (root / "probes.py").write_text(PROBES)
    (root / "tests" / "test_block.py").write_text(TESTS)
    return load_assignment(root)


def _grade(tmp_path: Path, source: str, assignment, worker):
    path = notebook(tmp_path / "submission.ipynb", "import numpy as np", source)
    return grade_submission(path, assignment, worker)


def test_spec_key_names_the_probe_file(demo):
    assert demo.probes == demo.root / "probes.py"


@pytest.mark.parametrize("source", [CURRENT, WITHOUT_TRAINING, STAGE_BLOCK],
                         ids=["training", "no-training", "stage-block"])
def test_probe_adapts_to_each_signature_and_model_is_rebuilt(tmp_path, demo, worker, source):
    result = _grade(tmp_path, source, demo, worker)
    assert not result.errors, result.errors
    failed = [(t.name, t.message) for t in result.tests if t.status is not Status.PASSED]
    assert not failed
    assert result.score == result.max_score == 5


def test_student_error_inside_probe_names_their_function_cell_and_line(tmp_path, demo, worker):
    result = _grade(tmp_path, RAISES, demo, worker)
    test = next(t for t in result.tests if t.name == "probe model is rebuilt")
    assert test.status is not Status.PASSED and test.diagnosis == "raised"
    assert test.message.startswith("Your `block` raised ValueError: filters do not match: 4"), test.message
    # The notebook's second cell, named by its first line: the compile label carries the function too.
    assert "(the cell starting `import tensorflow as tf`, line 8)" in test.message, test.message
    assert 'File "the cell starting `import tensorflow as tf` [block]", line 8, in block' in test.student_traceback
    shown = " ".join([test.message, test.hint, test.student_traceback, test.output])
    for probe_text in ("block_model", "probes", "inspect.signature", "keras.Model(X, Y)"):
        assert probe_text not in shown, (probe_text, shown)


def test_weightless_payload_carries_no_weights(worker):
    """`weights=False` ships the configuration only: no weight arrays cross the wire."""
    from grader.frameworks.keras.child.payload import ModelPayload
    source = ("import tensorflow as tf\n\ndef big():\n    return tf.keras.Sequential("
              "[tf.keras.Input((64,)), tf.keras.layers.Dense(512), tf.keras.layers.Dense(512)])\n")
    session = worker.session([{"source": source, "line": 1, "label": "cell 1 [big]", "kind": "def"}])
    try:
        full = session.call("big").value
        light = session.call("big", weights=False).value
    finally:
        session.close()
    assert isinstance(full, ModelPayload) and isinstance(light, ModelPayload)
    assert not full.weightless and sum(w.nbytes for w in full.weights) > 1_000_000
    assert light.weightless and light.weights == ()
    import json
    kinds = [[layer["class_name"] for layer in json.loads(p.config)["config"]["layers"]] for p in (full, light)]
    assert kinds[0] == kinds[1] == ["InputLayer", "Dense", "Dense"]

    from grader.frameworks.keras.rebuild import rebuild
    model = rebuild(light)  # fresh weights, same architecture
    assert [w.shape for w in model.get_weights()] == [w.shape for w in full.weights]


def test_probe_source_is_not_in_the_child_before_a_probe_runs(tmp_path, demo, worker):
    """Student code that looks for the probes at load time, or in a call made before any
    probe, finds nothing: the probe source is sent only when the first probe is called."""
    from grader.run.submission import Submission
    snoop = ('import gc\n\ndef block(X, f, filters):\n    return X\n\n'
             'def snoop(again=False):\n'
             '    return sorted(o.__name__ for o in gc.get_objects() if callable(o) and\n'
             '                  getattr(getattr(o, "__code__", None), "co_filename", "") == "<grader probes>")\n')
    path = notebook(tmp_path / "snoop.ipynb", snoop)
    submission = Submission(path, demo, worker).open()
    try:
        assert submission.call("snoop") == []
        assert submission.probe("signature_of_block") == ["X", "f", "filters"]
        # The same search finds the probes once they have been sent: it is able to fail.
        assert "block_model" in submission.call("snoop", again=True)
    finally:
        submission.close()


def test_broken_probes_are_the_instructors_error_not_the_students(tmp_path, worker):
    """Probe code that does not even load is reported as the grader's problem, naming the
    probe file's error; the student's own code is not blamed."""
    root = tmp_path / "broken"
    (root / "tests").mkdir(parents=True)
    (root / "assignment.toml").write_text(SPEC.replace('"probes.py"', '"broken_probes.py"'))
    (root / "reference.py").write_text(REFERENCE)
    (root / "broken_probes.py").write_text("def block_model(:\n    pass\n")
    (root / "tests" / "test_block.py").write_text(
        "from grader.testing import exercise, points\n\n\n@points(1)\n@exercise('block')\n"
        "def test_probe(submission):\n    submission.probe_model('block_model')\n")
    result = _grade(tmp_path, CURRENT, load_assignment(root), worker)
    (test,) = result.tests
    assert test.diagnosis == "grader_error" and "not your fault" in test.message, test.message
    assert "probes could not be loaded: SyntaxError" in test.message
    assert any("probes could not be loaded" in w for w in result.warnings)


def test_missing_probe_file_is_refused_when_the_spec_is_read(tmp_path):
    from grader.assignment.spec import AssignmentError
    (tmp_path / "assignment.toml").write_text(SPEC)
    (tmp_path / "reference.py").write_text(REFERENCE)
    with pytest.raises(AssignmentError, match="probes"):
        load_assignment(tmp_path)
