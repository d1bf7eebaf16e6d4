"""The PyTorch adapter does everything the Keras one does: each entry of `Adapter`, and the
public checks built on them (`expect_output_shape`, `expect_input_shape`, `copy_weights`,
the numerical layer test behind `expect_architecture`, `merge_order="either"` for
`torch.cat`), on real torch modules; students' modules cross as the sandbox sends them
(described, encoded, decoded, rebuilt). Modules torch.fx cannot trace run in a real torch
worker's child."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import notebook
from grader.checks import CheckFailed
from grader.checks.adapters import named
from grader.checks.architecture import expect_architecture
from grader.checks.equivalence import numerically_same
from grader.checks.graph import layer_graph
from grader.checks.models import copy_weights, expect_input_shape, expect_output_shape, expect_same_outputs
from grader.frameworks.torch.rebuild import rebuild_torch
from grader.frameworks.torch.shapes import forget_input_shape, record_input_shape
from grader.run.submission import Submission
import grader.frameworks.torch.child as torch_side  # noqa: E402 - encodes as the sandbox child does
from grader.sandbox import protocol
from grader.assignment.spec import load_assignment

ADAPTER = named("torch")


def crossed(module: nn.Module):
    """The student's module as the grading process gets it: described, sent, rebuilt."""
    tree, blob = protocol.encode_value(module, side=torch_side)
    return rebuild_torch(protocol.decode_value(tree, blob, side=torch_side))


def images(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


class Classifier(nn.Module):
    """Conv -> BatchNorm -> ReLU -> pool, twice, then a Linear sized for `size`."""

    def __init__(self, size=(16, 16), classes: int = 3, bias: bool = False):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(3, 4, 3, padding=1, bias=bias), nn.BatchNorm2d(4)
        self.c2, self.b2 = nn.Conv2d(4, 6, 3, padding=1, bias=bias), nn.BatchNorm2d(6)
        self.fc = nn.Linear(6 * (size[0] // 4) * (size[1] // 4), classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.b1(self.c1(x))), 2)
        x = F.max_pool2d(F.relu(self.b2(self.c2(x))), 2)
        return self.fc(torch.flatten(x, 1))


def reference_classifier(**kwargs) -> Classifier:
    model = Classifier(**kwargs)
    with torch.no_grad():  # statistics unlike a fresh layer's, so eval() and train() differ
        for bn in (model.b1, model.b2):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
    return model


def state(module: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_every_entry_of_the_adapter_is_filled():
    assert all(getattr(ADAPTER, entry) is not None for entry in
               ("copy_weights", "outputs", "input_shape", "numerically_same", "expect_same_outputs", "layer_graph"))


# ------------------------------------------------------------------ outputs, output shape

@pytest.mark.parametrize("training", [True, False])
def test_outputs_run_in_the_mode_asked_and_leave_mode_and_statistics_as_found(training):
    model = crossed(reference_classifier())
    model.train(not training)
    before = state(model)
    found = ADAPTER.outputs(model, images(4, 3, 16, 16), training, "your model")
    assert len(found) == 1 and found[0].shape == (4, 3)
    assert model.training is (not training) and same_state(before, state(model))
    model.train(training)  # the mode asked gives what torch itself computes in that mode
    with torch.no_grad():
        assert np.allclose(found[0], model(torch.from_numpy(images(4, 3, 16, 16))).numpy(), atol=1e-6)


def test_a_failed_call_is_a_check_failure_naming_who_was_called():
    with pytest.raises(CheckFailed) as failed:
        ADAPTER.outputs(crossed(reference_classifier()), images(2, 3, 20, 16), False, "your model")
    assert failed.value.diagnosis == "model_call_failed"
    assert failed.value.message.startswith("Calling your model on a batch of shape (2, 3, 20, 16) failed")


def test_expect_output_shape_on_a_torch_module():
    model = crossed(reference_classifier())
    expect_output_shape(model, images(5, 3, 16, 16), (None, 3))
    with pytest.raises(CheckFailed) as failed:
        expect_output_shape(model, images(5, 3, 16, 16), (None, 4))
    assert failed.value.diagnosis == "wrong_output_shape" and "(5, 3)" in failed.value.message


# ------------------------------------------------------------------ input shape

def test_the_input_shape_derived_from_the_layers_when_it_is_unambiguous():
    assert ADAPTER.input_shape(crossed(reference_classifier(size=(16, 16)))) == (3, 16, 16)
    assert ADAPTER.input_shape(crossed(nn.Sequential(nn.Linear(7, 2), nn.ReLU()))) == (7,)
    fully_convolutional = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                        nn.Conv2d(4, 2, 1))
    assert ADAPTER.input_shape(crossed(fully_convolutional)) == (3, None, None)
    expect_input_shape(crossed(fully_convolutional), (3, 48, 32), function="fcn")  # takes any size


def test_a_module_that_ignored_its_input_shape_argument_is_found_out():
    hard_coded = crossed(reference_classifier(size=(16, 16)))  # asked for 32x32, built for 16x16
    with pytest.raises(CheckFailed) as failed:
        expect_input_shape(hard_coded, (3, 32, 32), function="Classifier", usual=(3, 16, 16))
    assert failed.value.diagnosis == "input_shape_ignored"
    assert "still 3x16x16" in failed.value.message and "32" not in failed.value.message
    assert "in_features" in failed.value.hint and "keras" not in failed.value.hint
    expect_input_shape(crossed(reference_classifier(size=(32, 32))), (3, 32, 32), function="Classifier")


def test_an_ambiguous_module_says_why_until_it_has_run_on_the_shape():
    model = crossed(reference_classifier(size=(48, 32)))  # its Linear fits 48x32 and 32x48 alike
    with pytest.raises(CheckFailed) as failed:
        expect_input_shape(model, (3, 48, 32), function="Classifier")
    assert failed.value.diagnosis == "input_shape_unknown"
    assert "32x48, 48x32" in failed.value.message and "expect_output_shape" in failed.value.hint
    expect_output_shape(model, images(2, 3, 48, 32), (None, 3))  # a pass that ran records its shape
    expect_input_shape(model, (3, 48, 32), function="Classifier")
    other = crossed(reference_classifier(size=(48, 32)))
    record_input_shape(other, (3, 48, 32))  # or the instructor says so
    assert ADAPTER.input_shape(other) == (3, 48, 32)
    forget_input_shape(other)
    with pytest.raises(CheckFailed):
        ADAPTER.input_shape(other)


def test_a_module_whose_first_operation_fixes_nothing_says_so():
    class Flat(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(12, 2)

        def forward(self, x):
            return self.fc(x.view(x.size(0), -1))

    with pytest.raises(CheckFailed) as failed:
        ADAPTER.input_shape(crossed(Flat()))
    assert failed.value.diagnosis == "input_shape_unknown" and "record_input_shape" in failed.value.hint


# ------------------------------------------------------------------ copy_weights

def test_copy_weights_makes_the_students_module_compute_the_references():
    reference, student = reference_classifier(), crossed(Classifier())
    x = images(4, 3, 16, 16)
    copy_weights(reference, student)
    for training in (False, True):
        expected = ADAPTER.outputs(reference, x, training, "the reference")[0]
        assert np.allclose(ADAPTER.outputs(student, x, training, "your model")[0], expected, atol=1e-5)
    assert torch.equal(student.b2.running_var, reference.b2.running_var)


def test_copy_weights_folds_a_bias_the_student_left_out_and_zeroes_one_the_reference_lacks():
    reference = reference_classifier(bias=True)
    with torch.no_grad():
        reference.c1.bias.uniform_(-1.0, 1.0)
    student = crossed(Classifier(bias=False))
    copy_weights(reference, student)
    x = images(3, 3, 16, 16)
    assert np.allclose(ADAPTER.outputs(student, x, False, "s")[0], ADAPTER.outputs(reference, x, False, "r")[0],
                       atol=1e-5)
    with_bias = crossed(Classifier(bias=True))
    copy_weights(reference_classifier(bias=False), with_bias)
    assert float(with_bias.c1.bias.detach().abs().sum()) == 0.0


def test_copy_weights_checks_every_shape_before_writing_anything():
    student = crossed(Classifier(size=(16, 16), classes=5))  # the Linear's weight is 5x96, not 3x96
    before = state(student)
    with pytest.raises(CheckFailed) as failed:
        copy_weights(reference_classifier(), student)
    assert failed.value.diagnosis == "weight_shape_mismatch"
    assert "nn.Linear(96, 5)'s weight has shape (5, 96)" in failed.value.message, failed.value.message
    assert same_state(before, state(student))


def test_copy_weights_refuses_layers_that_do_not_pair():
    student = crossed(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 16 * 16, 3)))
    with pytest.raises(CheckFailed) as failed:
        copy_weights(reference_classifier(), student)
    assert failed.value.diagnosis == "architecture_mismatch"


# ------------------------------------------------------------------ numerical equivalence

def test_numerically_same_on_fresh_copies_of_torch_layers():
    assert numerically_same(nn.MaxPool2d(2), nn.MaxPool2d(2, stride=2), (None, 8, 8, 3))
    assert numerically_same(nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(3, 4, 3, padding="same"), (None, 8, 8, 3))
    assert not numerically_same(nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(3, 4, 3, padding=2), (None, 8, 8, 3))
    assert numerically_same(nn.MaxPool2d(2), nn.MaxPool2d(2, ceil_mode=True), (None, 8, 8, 3))
    assert not numerically_same(nn.MaxPool2d(2), nn.MaxPool2d(2, ceil_mode=True), (None, 9, 9, 3))
    assert not numerically_same(nn.MaxPool2d(2), nn.MaxPool2d(2), None)  # no shape, no verdict
    conv = nn.Conv2d(3, 4, 3)
    weights = state(conv)
    numerically_same(conv, nn.Conv2d(3, 4, 3, padding_mode="reflect"), (None, 8, 8, 3))
    assert same_state(weights, state(conv))  # fresh copies: the layers themselves are untouched


def small(pool: nn.Module, conv: nn.Conv2d) -> nn.Sequential:
    return nn.Sequential(conv, nn.BatchNorm2d(4), nn.ReLU(), pool, nn.Flatten(), nn.Linear(4 * 8 * 8, 2))


@pytest.mark.parametrize("reference, written", [
    (small(nn.MaxPool2d(2), nn.Conv2d(3, 4, 3, padding=1, bias=False)),
     small(nn.MaxPool2d(2, stride=2), nn.Conv2d(3, 4, 3, padding="same", bias=False))),
    (small(nn.MaxPool2d(2), nn.Conv2d(3, 4, 3, padding=1, bias=False)),  # 16x16: ceil_mode leaves nothing over
     small(nn.MaxPool2d(2, ceil_mode=True), nn.Conv2d(3, 4, 3, padding=1, bias=False))),
    (small(nn.MaxPool2d(2), nn.Conv2d(3, 4, 1, bias=False)),  # a 1x1 window: 'same' pads nothing
     small(nn.MaxPool2d(2), nn.Conv2d(3, 4, 1, padding="same", bias=False, padding_mode="reflect"))),
])
def test_settings_that_compute_the_same_at_the_tests_shapes_pass(reference, written):
    expect_architecture(reference, crossed(written), exercise="small")
    expect_same_outputs(reference, crossed(written), images(2, 3, 16, 16), training=False)


def test_a_setting_that_changes_the_output_still_fails():
    reference = small(nn.MaxPool2d(2), nn.Conv2d(3, 4, 3, padding=1, bias=False))
    written = crossed(small(nn.MaxPool2d(2), nn.Conv2d(3, 4, 3, padding=1, bias=False, padding_mode="reflect")))
    with pytest.raises(CheckFailed) as failed:
        expect_architecture(reference, written, exercise="small")
    assert "padding_mode" in failed.value.message
    with pytest.raises(CheckFailed):
        expect_same_outputs(reference, written, images(2, 3, 16, 16), training=False)


def test_ceil_mode_is_decided_at_the_tests_shape():
    def fcn(ceil: bool) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=ceil))

    reference, student = fcn(False), crossed(fcn(True))
    expect_architecture(reference, student, exercise="fcn")  # read at a usual, even size
    record_input_shape(reference, (3, 9, 9))
    record_input_shape(student, (3, 9, 9))  # an odd map: ceil_mode keeps a last row and column
    with pytest.raises(CheckFailed) as failed:
        expect_architecture(reference, student, exercise="fcn")
    assert "ceil_mode" in failed.value.message
    with pytest.raises(CheckFailed) as failed:
        expect_same_outputs(reference, student, images(2, 3, 9, 9), training=False)
    assert failed.value.diagnosis == "wrong_output_shape"


# ------------------------------------------------------------------ merge order of torch.cat

class Up(nn.Module):
    """A U-Net style merge: an upsampled path and a skip, concatenated on channels, then
    BatchNorm, ReLU and a 3x3 convolution that mixes them."""

    def __init__(self, skip_first: bool = False, skip_is_input: bool = False):
        super().__init__()
        self.up = nn.Conv2d(3, 4, 3, padding=1)
        if not skip_is_input:
            self.skip = nn.Conv2d(3, 2, 1)
        self.bn = nn.BatchNorm2d(4 + (3 if skip_is_input else 2))
        self.mix = nn.Conv2d(4 + (3 if skip_is_input else 2), 5, 3, padding=1)
        self.skip_first, self.skip_is_input = skip_first, skip_is_input

    def forward(self, x):
        up = F.relu(self.up(x))
        skip = x if self.skip_is_input else self.skip(x)
        merged = torch.cat([skip, up], dim=1) if self.skip_first else torch.cat([up, skip], dim=1)
        return self.mix(F.relu(self.bn(merged)))


def up_reference(**kwargs) -> Up:
    model = Up(**kwargs)
    with torch.no_grad():
        model.bn.running_mean.uniform_(-1.0, 1.0)
        model.bn.running_var.uniform_(0.5, 2.0)
        model.bn.weight.uniform_(0.5, 2.0)
        model.bn.bias.uniform_(-1.0, 1.0)
    return model


@pytest.mark.parametrize("skip_is_input", [False, True])
def test_a_concatenation_in_the_other_order_fails_when_fixed_and_passes_with_either(skip_is_input):
    reference, student = up_reference(skip_is_input=skip_is_input), crossed(Up(True, skip_is_input))
    x = images(2, 3, 8, 8, seed=3)
    with pytest.raises(CheckFailed) as failed:
        expect_architecture(reference, student, exercise="up")
    assert failed.value.diagnosis == "wrong_input_order" and "torch.cat" in failed.value.message
    with pytest.raises(CheckFailed) as failed:
        expect_same_outputs(reference, student, x, training=False)
    assert failed.value.diagnosis == "wrong_input_order"
    before = state(student)
    expect_architecture(reference, student, exercise="up", merge_order="either")
    for training in (False, True):
        expect_same_outputs(reference, student, x, training=training, merge_order="either")
    assert same_state(before, state(student))


def test_the_dimension_of_torch_cat_is_read_and_said_as_torch_counts_it():
    class Joined(nn.Module):
        def __init__(self, dim: int):
            super().__init__()
            self.a, self.b, self.dim = nn.Conv2d(3, 2, 1), nn.Conv2d(3, 2, 1), dim

        def forward(self, x):
            return torch.cat([self.a(x), self.b(x)], dim=self.dim)

    expect_architecture(Joined(1), crossed(Joined(-3)), exercise="joined")  # the same axis of NCHW
    with pytest.raises(CheckFailed) as failed:
        expect_architecture(Joined(1), crossed(Joined(2)), exercise="joined")
    assert failed.value.message.startswith("torch.cat has dim=2; expected dim=1."), failed.value.message


def test_copy_weights_follows_the_students_order():
    reference, student = up_reference(), crossed(Up(skip_first=True))
    copy_weights(reference, student, merge_order="either")
    # the student's channels 0-1 hold the reference's 4-5: the mixing conv's input weights moved alike
    assert torch.equal(student.mix.weight[:, :2], reference.mix.weight[:, 4:])
    assert torch.equal(student.bn.running_mean[2:], reference.bn.running_mean[:4])
    x = images(2, 3, 8, 8)
    assert np.allclose(ADAPTER.outputs(student, x, False, "s")[0], ADAPTER.outputs(reference, x, False, "r")[0],
                       atol=1e-5)


def test_a_student_kits_recorded_reference_permutes_alike(tmp_path):
    """The self-check's reference is a recording (graph, layer states, outputs): the
    transplant after a reordered torch.cat is permuted for it as for the real module."""
    import json

    from grader.kit.torch_models import TorchLiveModel, read, write
    live, x = TorchLiveModel(up_reference()), images(2, 3, 8, 8)
    for training in (False, True):  # what the visible tests ask is recorded at export
        expect_same_outputs(live, crossed(Up(skip_first=True)), x, training=training, merge_order="either")
    entry = write(live, tmp_path, "up")
    recorded = read(json.loads((tmp_path / "up.graph.json").read_text()), entry, tmp_path, lambda f, n: f / n)
    expect_architecture(recorded, crossed(Up(skip_first=True)), exercise="up", merge_order="either")
    for training in (False, True):
        expect_same_outputs(recorded, crossed(Up(skip_first=True)), x, training=training, merge_order="either")
    with pytest.raises(CheckFailed) as failed:
        expect_same_outputs(recorded, crossed(Up(skip_first=True)), x, training=False)
    assert failed.value.diagnosis == "wrong_input_order"


def test_either_still_fails_a_swap_that_reaches_the_output():
    class Last(nn.Module):
        def __init__(self, swap: bool):
            super().__init__()
            self.a, self.b, self.swap = nn.Conv2d(3, 2, 1), nn.Conv2d(3, 2, 1), swap

        def forward(self, x):
            a, b = self.a(x), self.b(x)
            return torch.cat([b, a] if self.swap else [a, b], 1)

    reference, student = Last(False), crossed(Last(True))
    with pytest.raises(CheckFailed) as failed:
        expect_architecture(reference, student, exercise="last", merge_order="either")
    assert failed.value.diagnosis == "wrong_input_order"
    with pytest.raises(CheckFailed):
        expect_same_outputs(reference, student, images(2, 3, 4, 4), training=False, merge_order="either")


def test_features_concatenated_before_a_linear_are_absorbed_too():
    class Heads(nn.Module):
        def __init__(self, swap: bool):
            super().__init__()
            self.a, self.b, self.out, self.swap = nn.Linear(6, 3), nn.Linear(6, 2), nn.Linear(5, 1), swap

        def forward(self, x):
            a, b = F.relu(self.a(x)), F.relu(self.b(x))
            return self.out(torch.cat([b, a] if self.swap else [a, b], dim=-1))

    reference, student = Heads(False), crossed(Heads(True))
    expect_architecture(reference, student, exercise="heads", merge_order="either")
    expect_same_outputs(reference, student, images(4, 6), training=False, merge_order="either")
    with pytest.raises(CheckFailed):
        expect_same_outputs(reference, student, images(4, 6), training=False)


# ------------------------------------------------------------------ modules torch.fx cannot trace

REFERENCE = '''
from torch import nn

def conv_model():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
'''

STUDENT = '''
import torch
from torch import nn

class ConvModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        if x.abs().sum() < 0:  # never true, but torch.fx cannot know
            return x
        return self.fc(torch.flatten(self.pool(torch.relu(self.bn(self.conv(x)))), 1))

def conv_model():
    return ConvModel()
'''


@pytest.fixture(scope="module")
def untraced(tmp_path_factory, torch_worker):
    root = tmp_path_factory.mktemp("untraced_adapter")
    (root / "tests").mkdir()
    (root / "reference.py").write_text(REFERENCE)
    (root / "assignment.toml").write_text('name = "untraced_adapter"\nexercises = ["conv_model"]\n'
                                          'reference = "reference.py"\nframework = "torch"\n')
    path = notebook(Path(tmp_path_factory.mktemp("student")) / "s.ipynb", STUDENT)
    submission = Submission(path, load_assignment(root), torch_worker).open()
    yield submission
    submission.close()


def test_an_untraceable_module_runs_its_outputs_in_the_child(untraced):
    model = untraced.model("conv_model")
    assert model.fx_graph is None
    x = images(2, 3, 8, 8)
    with pytest.raises(CheckFailed) as failed:  # no graph to derive it from, nothing run yet
        expect_input_shape(model, (3, 8, 8), function="conv_model")
    assert failed.value.diagnosis == "input_shape_unknown" and "expect_output_shape" in failed.value.hint
    expect_output_shape(model, x, (None, 3))
    expect_input_shape(model, (3, 8, 8), function="conv_model")  # the run in the child recorded it
    found = ADAPTER.outputs(model, x, False, "your model")
    assert len(found) == 1 and found[0].shape == (2, 3)
    with pytest.raises(CheckFailed) as failed:
        expect_output_shape(model, x, (None, 4))
    assert failed.value.diagnosis == "wrong_output_shape"


def test_an_untraceable_module_says_what_the_instructor_can_do_instead(untraced):
    model = untraced.model("conv_model")
    namespace: dict = {}
    exec(REFERENCE, namespace)  # noqa: S102 - the instructor's reference, as the plugin imports it
    with pytest.raises(CheckFailed) as failed:
        copy_weights(namespace["conv_model"](), model)
    assert failed.value.diagnosis == "untraceable_forward" and "expect_same_outputs" in failed.value.hint
    expect_same_outputs(namespace["conv_model"](), model, images(2, 3, 8, 8), training=False,
                        merge_order="either")  # nothing to reorder: compared in the child as before
    # its layers are torch's own, so the numerical test reads them as any others
    assert numerically_same(model.pool, nn.MaxPool2d(2, stride=2), (None, 8, 8, 4))
