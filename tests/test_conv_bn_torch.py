"""conv_bn_torch, the conv_bn lesson in PyTorch, end to end: its samples graded through the
real pipeline (notebook reader, a torch sandbox worker, rebuilt nn.Modules, the checks), each
declared score and each PyTorch-specific diagnosis asserted, and `grader validate-assignment
conv_bn_torch` passing.

Every grade here is made once per module: validation and the per-sample tests share one
cache of results (the same `grade_submission` call validation makes), so the samples are not
graded twice.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

from conftest import REPO
from grader.results import Status

pytestmark = pytest.mark.slow

ROOT = REPO / "assignments" / "conv_bn_torch"
SAMPLES = ROOT / "samples"
OUTPUTS = "output on random inputs, in eval() and train() modes"


@pytest.fixture(scope="module")
def conv_bn_torch():
    from grader.assignment.spec import load_assignment
    return load_assignment("conv_bn_torch")


@pytest.fixture(scope="module")
def graded(conv_bn_torch, torch_worker):
    """grade(path) -> the notebook's result, graded at most once in this module."""
    from grader.run.grading import grade_submission

    done: dict[Path, object] = {}

    def grade(path, a=None, worker=None, **kwargs):
        path = Path(path).resolve()
        if path not in done:
            done[path] = grade_submission(path, a or conv_bn_torch, worker or torch_worker, include_hidden=True)
        return done[path]
    return grade


@pytest.fixture(scope="module")
def validation(conv_bn_torch, torch_worker, graded):
    """What `grader validate-assignment conv_bn_torch` reports, its grades kept for the tests below."""
    import grader.run.grading
    from grader.authoring.validate import validate

    real = grader.run.grading.grade_submission
    grader.run.grading.grade_submission = lambda path, a, worker, **kw: graded(path, a, worker)
    try:
        return validate(conv_bn_torch.root, worker=torch_worker)
    finally:
        grader.run.grading.grade_submission = real


def test_validate_assignment_passes(validation):
    """The reference (the master) gets full marks, the template zero, the points add up to 23,
    the release is the template of the master, the written questions have their cells, and
    every sample scores what it declares."""
    assert validation.ok, validation.render()
    text = validation.render()
    assert "the samples score what they declare: 13 of 13" in text, text


def _result(graded, name):
    return graded(SAMPLES / f"{name}.ipynb")


def _by_name(result):
    return {(t.exercise, t.name): t for t in result.tests}


def _declared(name) -> float:
    return nbformat.read(SAMPLES / f"{name}.ipynb", as_version=4).metadata["grader"]["expected_score"]


# What each sample must fail, with the diagnosis and a phrase of the message; tests that
# depend on a failed one are "not run".
FAILS = {
    "correct": {},
    "conv_bias_true": {},
    "broken_tags": {},
    "relu_before_bn": {("happy_model", "layer order"): ("relu_before_bn", "nn.ReLU comes before nn.BatchNorm2d")},
    "bn_after_pool": {("ConvolutionalModel", "layer graph"): ("bn_after_pool", "normalizes the output of nn.MaxPool2d(4)")},
    "wrong_num_features": {("ConvolutionalModel", "layer graph"): (
        "wrong_params", "The second nn.BatchNorm2d (created in the cell starting `class ConvolutionalModel(nn.Module):`, line")},
    "batch_stats_at_eval": {("happy_model", OUTPUTS): ("eval_uses_batch_stats", "track_running_stats=False")},
    "test_stats_leak": {("standardize", "values on new data"): ("test_stats_leak", "the test set's own statistics")},
    "channels_last_axes": {("standardize", "values on new data"): ("channels_last_axes", "axis=(0, 1, 2)")},
    "eps_outside_sqrt": {("batchnorm_forward", "matches nn.BatchNorm2d in train() mode"): ("eps_outside_sqrt", "outside the square root"),
                         ("batchnorm_forward", "other ranks and eps"): ("eps_outside_sqrt", "outside the square root")},
    "unbiased_variance": {("batchnorm_forward", "matches nn.BatchNorm2d in train() mode"): ("unbiased_variance", "torch.var"),
                          ("batchnorm_forward", "other ranks and eps"): ("unbiased_variance", "torch.var")},
    "untraceable_forward": {},
}


@pytest.mark.parametrize("sample", sorted(FAILS))
def test_sample_fails_exactly_its_mistake_with_its_diagnosis(sample, graded, conv_bn_torch):
    result = _result(graded, sample)
    assert not result.errors, result.errors
    assert result.max_score == conv_bn_torch.total_points == 23
    assert result.score == pytest.approx(_declared(sample))
    tests = _by_name(result)
    expected = FAILS[sample]
    failed = {key for key, t in tests.items() if t.status is Status.FAILED}
    assert failed == set(expected), {k: tests[k].message for k in failed}
    for key, (diagnosis, phrase) in expected.items():
        t = tests[key]
        assert t.diagnosis.startswith(diagnosis), (key, t.diagnosis, t.message)
        assert phrase in t.message + t.hint, (key, t.message, t.hint)
    not_run = {key for key, t in tests.items() if t.status is Status.NOT_RUN}
    assert all(exercise in {e for e, _ in expected} for exercise, _ in not_run), not_run
    lost = sum(t.max_score for key, t in tests.items() if key in failed | not_run)
    assert result.score == pytest.approx(result.max_score - lost)


def test_template_scores_zero_saying_not_implemented(graded, conv_bn_torch):
    """ConvolutionalModel is a class: its template raises in __init__, which is 'not
    implemented yet' like a function's."""
    result = _result(graded, "template")
    assert result.score == 0
    first = {}
    for t in result.tests:
        first.setdefault(t.exercise, t)
    assert set(first) == set(conv_bn_torch.exercises)
    for t in first.values():
        assert t.diagnosis == "not_implemented", t


def test_bn_after_pool_points_at_the_students_line(graded):
    t = _by_name(_result(graded, "bn_after_pool"))[("ConvolutionalModel", "layer graph")]
    assert "self.bn1(self.pool1(" in t.message, t.message
    assert "the cell starting `class ConvolutionalModel(nn.Module):`, line " in t.message, t.message


def test_conv_bias_before_batchnorm_is_the_same_network(graded):
    """bias=True on each Conv2d before its BatchNorm2d: BatchNorm subtracts the channel mean, so
    the bias cancels; the graph and both modes' outputs match the reference (bias=False). The
    graph tests pass with a note saying the bias is wasted, naming the student's lines."""
    result = _result(graded, "conv_bias_true")
    assert result.score == result.max_score
    outputs = [t for t in result.tests if "output" in t.name or "another" in t.name]
    assert len(outputs) == 3 and all(t.status is Status.PASSED for t in outputs)
    tests = _by_name(result)
    cells = {"happy_model": "the cell starting `def happy_model():`",
             "ConvolutionalModel": "the cell starting `class ConvolutionalModel(nn.Module):`"}
    for key in (("happy_model", "layer order"), ("ConvolutionalModel", "layer graph")):
        notes = tests[key].notes
        assert len(notes) == 1 and notes[0].startswith("nn.Conv2d(..., bias=True) before nn.BatchNorm2d: accepted ("), \
            (key, notes)
        assert f"created in {cells[key[0]]}, line " in notes[0], notes
        assert "`bias=False` saves parameters" in notes[0], notes
    assert not any(t.notes for t in result.tests if t.name not in ("layer order", "layer graph",
                                                                    "another image size and number of classes"))
    assert not any(t.notes for t in _result(graded, "correct").tests)  # bias=False as specified: nothing to say


# Keras class names a PyTorch student never wrote: no sentence they read may use them.
KERAS_NAMES = ("BatchNormalization", "Conv2D", "MaxPooling2D", "ZeroPadding2D", "Dense", "Activation(", "use_bias")


@pytest.mark.parametrize("sample", sorted(FAILS))
def test_every_message_of_every_sample_speaks_pytorch(sample, graded):
    for t in _result(graded, sample).tests:
        text = " ".join([t.message, t.hint, *t.notes])
        assert not [name for name in KERAS_NAMES if name in text], (t.title, text)


def test_training_cells_are_not_run(graded):
    """broken_tags ends with a cell that would train for hours: never run, nothing times out."""
    result = _result(graded, "broken_tags")
    assert result.score == result.max_score
    assert not [t for t in result.tests if t.diagnosis == "timeout"]


def test_untraceable_forward_is_graded_through_forward_hooks(graded):
    """A forward with an `if` on a tensor's value computes the reference's network: torch.fx
    cannot trace it, so its layer order comes from forward hooks and its outputs are computed
    in the sandbox with the reference's weights sent in; it gets full marks."""
    result = _result(graded, "untraceable_forward")
    assert result.score == result.max_score, [(t.name, t.message) for t in result.tests if t.score < t.max_score]
    names = {t.name for t in result.tests if t.exercise == "ConvolutionalModel" and t.status is Status.PASSED}
    assert names == {"layer graph", OUTPUTS, "another image size and number of classes"}


# ---------------------------------------------------------------- the notebook and the checks

def test_samples_release_and_master_notebook_are_built_from_the_master(tmp_path):
    """build.py rebuilds every derived notebook; the stored ones must be what it writes now."""
    spec = importlib.util.spec_from_file_location("conv_bn_torch_build", ROOT / "build.py")
    build = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = build
    try:
        spec.loader.exec_module(build)
        written = build.build(tmp_path)
    finally:
        sys.modules.pop(spec.name, None)
    assert len(written) == 3 + len(build.SAMPLES) + 1
    for path in written:
        stored = ROOT / path.relative_to(tmp_path)
        if path.suffix == ".ipynb":
            fresh, kept = (nbformat.read(p, as_version=4) for p in (path, stored))
            assert [c.source for c in fresh.cells] == [c.source for c in kept.cells], stored
            assert fresh.metadata.get("grader") == kept.metadata.get("grader"), stored
        else:
            assert path.read_bytes() == stored.read_bytes(), stored


def _nchw_checks():
    spec = importlib.util.spec_from_file_location("conv_bn_torch_checks", ROOT / "tests" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(spec.name, None)
    return module


def _torch_reference():
    """The solutions (never in a kit or the package): the right answers the checks are given."""
    spec = importlib.util.spec_from_file_location("conv_bn_torch_reference", REPO / "reference" / "conv_bn_torch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_known_mistake_is_told_apart_on_the_hidden_inputs(seed):
    """Each wrong recipe in the catalogues differs from the right answer on the hidden inputs,
    and an output made by a recipe is named as that recipe, not as an earlier one."""
    checks = _nchw_checks()
    reference = _torch_reference()
    X_train, X_test = checks.make_standardize_inputs(seed)
    close = lambda f, c: all(checks._close(a, b) for a, b in zip(f, c))  # noqa: E731
    right = reference.standardize(X_train, X_test)
    named = 0
    mistakes = checks.standardize_mistakes(4)
    for mistake in mistakes:
        try:
            made = tuple(np.asarray(v, np.float32) for v in mistake.compute(X_train, X_test, right))
        except ValueError:
            continue
        assert not close(made, right), mistake.diagnosis
        assert checks._first_match(mistakes, (X_train, X_test, right), made, close) is mistake
        named += 1
    assert named >= 10
    x, gamma, beta = checks.make_batchnorm_inputs(seed)
    right = reference.batchnorm_forward(x, gamma, beta, 1e-5)
    mistakes = checks.batchnorm_mistakes(4)
    for mistake in mistakes:
        try:
            made = mistake.compute(x, gamma, beta, 1e-5, right).astype(np.float32)
        except ValueError:  # a (C,) gamma on the last axis: W != C here, so it raises (and is explained)
            continue
        assert not checks._close(made, right), mistake.diagnosis
        assert checks._first_match(mistakes, (x, gamma, beta, 1e-5, right), made, checks._close) is mistake


def test_reference_matches_pytorch():
    """The NumPy reference is what nn.BatchNorm2d computes in train() mode, and the models
    take (N, 3, H, W) batches to the declared outputs."""
    import torch

    spec = importlib.util.spec_from_file_location("conv_bn_torch_reference", REPO / "reference" / "conv_bn_torch.py")
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)
    checks = _nchw_checks()
    x, gamma, beta = checks.make_batchnorm_inputs(7)
    layer = torch.nn.BatchNorm2d(3)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(gamma))
        layer.bias.copy_(torch.from_numpy(beta))
        ours = reference.batchnorm_forward(x, gamma, beta)
        assert np.abs(layer.train()(torch.from_numpy(x)).numpy() - ours).max() < 1e-4
        assert tuple(reference.happy_model()(torch.zeros(2, 3, 64, 64)).shape) == (2, 1)
        assert tuple(reference.ConvolutionalModel((48, 32), 4)(torch.zeros(2, 3, 48, 32)).shape) == (2, 4)
