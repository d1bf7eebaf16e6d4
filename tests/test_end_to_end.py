"""The walking skeleton, end to end: real notebooks, the real sandbox, the real checks."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, SAMPLES, notebook
from grader.run.grading import grade_submission
from grader.results import Status

HEADER = "import numpy as np\nimport tensorflow as tf\nfrom tensorflow.keras import layers as tfl"


def _by_name(result):
    return {(t.exercise, t.name): t for t in result.tests}


# ---------------------------------------------------------------- samples

@pytest.fixture(scope="module")
def graded_sample(worker, conv_bn):
    """Each sample graded once for the tests below that only read its result (the tests of
    determinism and of the reference models grade afresh, on purpose)."""
    done = {}

    def grade(name: str):
        if name not in done:
            done[name] = grade_submission(SAMPLES / name, conv_bn, worker)
        return done[name]
    return grade


EXPECTED_FAILURES = {
    "correct.ipynb": set(),
    "broken_tags.ipynb": set(),
    "relu_before_bn.ipynb": {("happyModel", "layer order"), ("happyModel", "output on random inputs")},
    "bn_missing.ipynb": {("convolutional_model", "layer graph"), ("convolutional_model", "output on random inputs"),
                         ("convolutional_model", "output for another input shape")},
    "test_stats_leak.ipynb": {("standardize", "values on new data")},
    "eps_outside_sqrt.ipynb": {("batchnorm_forward", "matches Keras BatchNormalization(training=True)")},
    "mixed.ipynb": {("batchnorm_forward", "matches Keras BatchNormalization(training=True)"),
                    ("batchnorm_forward", "other ranks and eps"),
                    ("convolutional_model", "layer graph"), ("convolutional_model", "output on random inputs"),
                    ("convolutional_model", "output for another input shape")},
}


@pytest.mark.parametrize("sample", sorted(EXPECTED_FAILURES))
def test_sample_submissions_fail_exactly_the_expected_checks(sample, graded_sample, conv_bn):
    result = graded_sample(sample)
    assert not result.errors
    failed = {(t.exercise, t.name) for t in result.tests if t.status is not Status.PASSED}
    assert failed == EXPECTED_FAILURES[sample]
    assert result.max_score == conv_bn.total_points
    lost = sum(t.max_score for t in result.tests if (t.exercise, t.name) in failed)
    assert result.score == pytest.approx(result.max_score - lost)


def test_reference_solution_scores_full_marks(graded_sample, worker):
    result = graded_sample("correct.ipynb")
    assert result.score == result.max_score == 23
    assert result.isolation.startswith(worker.level)


def test_untouched_template_scores_zero_with_not_implemented_feedback(graded_sample, conv_bn):
    result = graded_sample("template.ipynb")
    assert result.score == 0
    first_per_exercise = {}
    for t in result.tests:
        first_per_exercise.setdefault(t.exercise, t)
    assert set(first_per_exercise) == set(conv_bn.exercises)
    for t in first_per_exercise.values():
        assert "not implemented yet" in t.message, t
    dependent = [t for t in result.tests if t.status is Status.NOT_RUN]
    assert dependent and all("first" in t.message for t in dependent)


def test_specific_feedback_for_relu_before_bn(graded_sample):
    tests = _by_name(graded_sample("relu_before_bn.ipynb"))
    order = tests[("happyModel", "layer order")]
    assert "ReLU comes before BatchNormalization" in order.message
    assert order.diagnosis == "relu_before_bn"
    assert order.table is not None and order.table.marked is not None
    assert tests[("happyModel", "output on random inputs")].status is Status.NOT_RUN


def test_training_cells_and_magics_are_not_run(graded_sample):
    """broken_tags.ipynb ends with a cell that would train for hours: it is never run, so
    nothing times out and every test passes (had it run, each call would hit the limit)."""
    result = graded_sample("broken_tags.ipynb")
    assert result.score == result.max_score
    assert not [t for t in result.tests if t.diagnosis == "timeout"]


# ---------------------------------------------------------------- happyModel variants

CORRECT_LAYERS = [
    "tf.keras.Input((64, 64, 3))", "tfl.ZeroPadding2D(3)", "tfl.Conv2D(32, 7, strides=1)",
    "tfl.BatchNormalization(axis=3)", "tfl.ReLU()", "tfl.MaxPooling2D()", "tfl.Flatten()",
    "tfl.Dense(1, activation='sigmoid')",
]


def _happy(layers: list[str]) -> str:
    body = ",\n        ".join(layers)
    return f"def happyModel():\n    return tf.keras.Sequential([\n        {body}\n    ])"


def _variant(layers=None, *, swap=None, drop=None, replace=None, insert=None):
    layers = list(layers or CORRECT_LAYERS)
    if swap:
        i, j = swap
        layers[i], layers[j] = layers[j], layers[i]
    if replace:
        layers[replace[0]] = replace[1]
    if insert:
        layers.insert(insert[0], insert[1])
    if drop is not None:
        del layers[drop]
    return _happy(layers)


WRONG_HAPPY = {
    "bn_missing": (_variant(drop=3), "BatchNormalization is missing"),
    "bn_before_conv": (_variant(swap=(2, 3)), "BatchNormalization comes before Conv2D"),
    "relu_before_bn": (_variant(swap=(3, 4)), "ReLU comes before BatchNormalization"),
    "wrong_bn_axis": (_variant(replace=(3, "tfl.BatchNormalization(axis=1)")), "not the channel axis"),
    "wrong_filters": (_variant(replace=(2, "tfl.Conv2D(16, 7, strides=1)")), "16 filters"),
    "extra_layer": (_variant(insert=(7, "tfl.Dense(10)")), "extra"),
    "missing_last_layer": (_variant(drop=7), "missing"),
    "raises": ("def happyModel():\n    raise ValueError('my bad')", "raised ValueError: my bad"),
    "returns_none": ("def happyModel():\n    model = tf.keras.Sequential()\n", "returned None"),
}


@pytest.mark.parametrize("variant", sorted(WRONG_HAPPY))
def test_wrong_happy_model_gets_its_specific_message(variant, tmp_path, worker, conv_bn):
    source, phrase = WRONG_HAPPY[variant]
    nb = notebook(tmp_path / f"{variant}.ipynb", HEADER, ("happyModel", source))
    result = grade_submission(nb, conv_bn, worker, only_exercises=frozenset({"happyModel"}))
    order = _by_name(result)[("happyModel", "layer order")]
    assert order.status is Status.FAILED and order.score == 0
    assert phrase in order.message, order.message
    assert result.score == 0


EQUIVALENT_HAPPY = {
    "axis_minus_one": _variant(replace=(3, "tfl.BatchNormalization(axis=-1)")),
    "maxpool2d_alias": _variant(replace=(5, "tfl.MaxPool2D()")),
    "padding_tuple": _variant(replace=(1, "tfl.ZeroPadding2D(padding=(3, 3))")),
    "kernel_tuple_same_case": _variant(replace=(2, "tfl.Conv2D(32, (7, 7), strides=(1, 1), padding='VALID')")),
    "activation_relu": _variant(replace=(4, "tfl.Activation('relu')")),
    "input_shape_kwarg": _happy(["tfl.ZeroPadding2D(3, input_shape=(64, 64, 3))"] + CORRECT_LAYERS[2:]),
}


@pytest.mark.parametrize("variant", sorted(EQUIVALENT_HAPPY))
def test_equivalent_spellings_of_happy_model_pass(variant, tmp_path, worker, conv_bn):
    nb = notebook(tmp_path / f"{variant}.ipynb", HEADER, ("happyModel", EQUIVALENT_HAPPY[variant]))
    result = grade_submission(nb, conv_bn, worker, only_exercises=frozenset({"happyModel"}))
    assert [t.status for t in result.tests] == [Status.PASSED, Status.PASSED], [t.message for t in result.tests]


def test_lambda_layer_is_refused_with_a_clear_message(tmp_path, worker, conv_bn):
    layers = list(CORRECT_LAYERS)
    layers[4] = "tfl.Lambda(tf.nn.relu)"
    nb = notebook(tmp_path / "lambda.ipynb", HEADER, ("happyModel", _happy(layers)))
    result = grade_submission(nb, conv_bn, worker, only_exercises=frozenset({"happyModel"}))
    order = _by_name(result)[("happyModel", "layer order")]
    assert "Lambda layer, which is not allowed" in order.message
    assert result.score == 0


def test_a_tampered_model_config_is_the_students_error_not_the_graders(tmp_path, worker, conv_bn):
    """Issue 13, item 7: a list where the vetting expects a name raised TypeError in the
    grading process, and every test of the exercise (the hidden one too, by name) said
    "the grader's own check failed ... this is not your fault"."""
    source = _happy(CORRECT_LAYERS).replace("    return tf.keras.Sequential(", "    model = tf.keras.Sequential(")
    source += ("\n    import json\n    config = json.loads(model.to_json())\n"
               "    config['config']['layers'][-1]['config']['activation'] = {\n"
               "        'module': 'keras.activations', 'class_name': 'function', 'config': ['relu']}\n"
               "    model.to_json = lambda **kwargs: json.dumps(config)\n    return model")
    nb = notebook(tmp_path / "tampered.ipynb", HEADER, ("happyModel", source))
    result = grade_submission(nb, conv_bn, worker, only_exercises=frozenset({"happyModel"}))
    happy = [t for t in result.tests if t.exercise == "happyModel"]
    assert happy and result.score == 0
    for test in happy:
        assert test.diagnosis != "grader_error" and "not your fault" not in test.message, (test.name, test.message)
    assert any(t.diagnosis == "model_rejected" and "cannot be graded" in t.message for t in happy), \
        [(t.name, t.diagnosis, t.message) for t in happy]
    assert not [w for w in result.warnings if "internal error" in w], result.warnings


# ---------------------------------------------------------------- runaway code

def test_infinite_loop_is_killed_within_the_timeout_and_the_next_submission_grades(tmp_path, worker, quick_conv_bn):
    looping = notebook(tmp_path / "loop.ipynb", HEADER, ("happyModel", "def happyModel():\n    while True:\n        pass"))
    result = grade_submission(looping, quick_conv_bn, worker, only_exercises=frozenset({"happyModel"}))
    order = _by_name(result)[("happyModel", "layer order")]
    assert order.diagnosis == "timeout" and "time limit" in order.message
    # Killed at the assignment's own limit (3 s here), not after some default.
    assert f"after {quick_conv_bn.call_timeout:g} s" in order.message, order.message
    after = grade_submission(SAMPLES / "correct.ipynb", quick_conv_bn, worker)
    assert after.score == after.max_score


# ---------------------------------------------------------------- the command line contract

BAD_INPUTS = {
    "not_json.ipynb": (b"this is not json at all", "not valid JSON"),
    "truncated.ipynb": (None, "truncated"),
    "empty.ipynb": (b"", "empty"),
    "not_a_notebook.ipynb": (b'{"name": "x", "items": [1, 2]}', "not a Jupyter notebook"),
    "missing_cells.ipynb": (b'{"nbformat": 4, "nbformat_minor": 5, "metadata": {}}', "cells"),
    "latin1.ipynb": ('{"cells": [], "metadata": {"a": "caf\xe9"}, "nbformat": 4, "nbformat_minor": 5}'.encode("latin-1"),
                     "UTF-8"),
}


def _write_bad_inputs(folder: Path) -> None:
    folder.mkdir()
    correct = (SAMPLES / "correct.ipynb").read_bytes()
    for name, (content, _) in BAD_INPUTS.items():
        (folder / name).write_bytes(content if content is not None else correct[: len(correct) // 2])
    (folder / "directory.ipynb").mkdir()


def _v3_notebook(path: Path) -> None:
    import nbformat
    v4 = nbformat.read(str(SAMPLES / "correct.ipynb"), as_version=4)
    cells = [{"cell_type": "code", "input": c.source, "language": "python", "outputs": [],
              "metadata": dict(c.metadata), "collapsed": False}
             for c in v4.cells if c.cell_type == "code"]
    path.write_text(json.dumps({"nbformat": 3, "nbformat_minor": 0, "metadata": {"name": "old"},
                                "worksheets": [{"cells": cells, "metadata": {}}]}))


@pytest.mark.slow
def test_cli_json_contract_bad_inputs_and_exit_status(tmp_path):
    folder = tmp_path / "subs"
    _write_bad_inputs(folder)
    _v3_notebook(folder / "old_v3.ipynb")
    (folder / ".ipynb_checkpoints").mkdir()
    (folder / ".ipynb_checkpoints" / "ignored-checkpoint.ipynb").write_text("{}")
    proc = subprocess.run([sys.executable, "-m", "grader", "grade", str(folder), str(SAMPLES / "correct.ipynb"),
                           "--assignment", "conv_bn", "--format", "json", "--jobs", "1"],
                          capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 1, proc.stderr[-2000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines()]  # nothing but JSON on stdout
    by_file = {Path(d["submission"]).name: d for d in lines}
    assert set(by_file) == set(BAD_INPUTS) | {"directory.ipynb", "old_v3.ipynb", "correct.ipynb"}
    for name, (_, phrase) in BAD_INPUTS.items():
        d = by_file[name]
        assert d["score"] == 0 and len(d["errors"]) == 1
        assert name in d["errors"][0] and phrase.lower() in d["errors"][0].lower(), d["errors"]
        assert "\n" not in d["errors"][0]
    assert "directory" in by_file["directory.ipynb"]["errors"][0]
    for name in ("old_v3.ipynb", "correct.ipynb"):
        d = by_file[name]
        assert d["errors"] == [] and d["score"] == d["max_score"] == 23
        for t in d["tests"]:
            assert set(t) >= {"name", "exercise", "score", "max_score", "status", "output"}
            assert t["status"] in ("passed", "failed")


def test_cli_usage_errors_exit_2():
    proc = subprocess.run([sys.executable, "-m", "grader", "grade", "x.ipynb"], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert proc.returncode == 2 and "--assignment" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "grader", "grade", "x.ipynb", "--assignment", "no_such_thing"],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 2 and "unknown assignment" in proc.stderr


def test_grading_is_deterministic_and_independent_of_order(worker, conv_bn):
    """Seeded hidden inputs and seeded children: the same notebook gets the same verdicts,
    whatever was graded before it on the same worker."""
    names = ["correct.ipynb", "relu_before_bn.ipynb", "test_stats_leak.ipynb", "eps_outside_sqrt.ipynb"]

    def verdicts(order):
        out = {}
        for name in order:
            result = grade_submission(SAMPLES / name, conv_bn, worker)
            out[name] = [(t.exercise, t.name, t.score, t.status, t.message, t.diagnosis) for t in result.tests]
        return out

    assert verdicts(names) == verdicts(list(reversed(names)))


def test_reference_models_are_built_once_and_left_as_they_were(worker, conv_bn):
    """Reference models are shared by every submission a process grades, so grading must not
    change them (the output checks copy weights into the student's model, never back)."""
    import numpy as np

    from grader.run.plugin import GradingContext

    grade_submission(SAMPLES / "correct.ipynb", conv_bn, worker)
    reference = GradingContext(conv_bn, None).reference_module()
    happy = reference.happyModel()
    assert reference.happyModel() is happy  # built once per process
    before = [w.copy() for w in happy.get_weights()]
    result = grade_submission(SAMPLES / "bn_missing.ipynb", conv_bn, worker)
    assert result.score == result.max_score - 7
    grade_submission(SAMPLES / "correct.ipynb", conv_bn, worker)
    assert reference.happyModel() is happy
    assert all(np.array_equal(a, b) for a, b in zip(before, happy.get_weights()))
