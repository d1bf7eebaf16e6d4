"""The existing checks grade PyTorch modules: expect_architecture, expect_bn_after_conv and
expect_same_outputs on a real reference module and a student's module rebuilt from its
description (encoded and decoded by the wire format, vetted by the torch rebuild), with
the same diagnoses as for Keras, and labels and sentences in PyTorch's own words."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from grader.checks import CheckFailed
from grader.checks.architecture import expect_architecture, expect_bn_after_conv
from grader.checks.graph import layer_graph
from grader.checks.models import expect_same_outputs
from grader.frameworks.torch.rebuild import MAX_PARAMS, rebuild_torch
from grader.frameworks.errors import ModelRejected
from grader.results import collecting_notes
import grader.frameworks.torch.child as torch_side  # noqa: E402 - encodes as the sandbox child does
from grader.sandbox import protocol


def crossed(module: nn.Module):
    """The student's module as the grading process gets it: described, sent, rebuilt."""
    tree, blob = protocol.encode_value(module, side=torch_side)
    return rebuild_torch(protocol.decode_value(tree, blob, side=torch_side))


def happy(*, order: str = "ok", num_features: int = 8, bias: bool = False, eps: float = 1e-5) -> nn.Sequential:
    conv, bn, relu, pool = nn.Conv2d(3, 8, 7, bias=bias), nn.BatchNorm2d(num_features, eps=eps), nn.ReLU(), \
        nn.MaxPool2d(2)
    middle = {"ok": [conv, bn, relu, pool], "relu_first": [conv, relu, bn, pool],
              "bn_after_pool": [conv, relu, pool, bn]}[order]
    return nn.Sequential(nn.ZeroPad2d(3), *middle, nn.Flatten(), nn.Linear(8 * 8 * 8, 1), nn.Sigmoid())


class Functional(nn.Module):
    """The happy model as a student writes it in a class: F.relu, view(N, -1), torch.sigmoid."""

    def __init__(self, unused_bn: bool = False):
        super().__init__()
        self.pad = nn.ZeroPad2d(3)
        self.conv = nn.Conv2d(3, 8, 7, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8 * 8 * 8, 1)
        if unused_bn:
            self.bn2 = nn.BatchNorm2d(8)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn(self.conv(self.pad(x)))), 2)
        return torch.sigmoid(self.fc(x.view(x.size(0), -1)))


X = np.random.default_rng(0).normal(size=(4, 3, 16, 16)).astype(np.float32)


@pytest.fixture
def reference() -> nn.Sequential:
    model = happy()
    with torch.no_grad():  # running statistics unlike a fresh layer's, so eval() and train() differ
        model[2].running_mean.fill_(0.25)
        model[2].running_var.fill_(2.0)
    return model


def test_the_same_model_written_with_functions_passes_the_architecture_check(reference):
    expect_architecture(reference, crossed(Functional()), exercise="happy_model")
    expect_bn_after_conv(crossed(Functional()), every_conv=True)


def test_relu_before_batchnorm_is_diagnosed_in_pytorch_words(reference):
    with pytest.raises(CheckFailed) as failed:
        expect_architecture(reference, crossed(happy(order="relu_first")), exercise="happy_model")
    assert failed.value.diagnosis == "relu_before_bn"
    rows = failed.value.table.rows
    assert ("3", "nn.BatchNorm2d(8)", "nn.ReLU()") in rows, rows
    assert any("nn.Conv2d(3, 8, 7, bias=False)" in row[1] for row in rows), rows


def test_batchnorm_after_pooling_is_not_batchnorm_after_the_convolution(reference):
    student = crossed(happy(order="bn_after_pool"))
    with pytest.raises(CheckFailed) as failed:
        expect_bn_after_conv(student)
    assert failed.value.diagnosis in ("relu_before_bn", "bn_not_after_conv")
    assert "MaxPool" in str(failed.value) or "ReLU" in str(failed.value)
    with pytest.raises(CheckFailed):
        expect_architecture(reference, student, exercise="happy_model")


def test_a_wrong_num_features_is_its_own_difference(reference):
    with pytest.raises(CheckFailed) as failed:
        expect_architecture(reference, crossed(happy(num_features=16)), exercise="happy_model")
    assert "num_features=16" in str(failed.value) and "num_features=8" in str(failed.value)
    assert any(row[1] == "nn.BatchNorm2d(8)" and row[2] == "nn.BatchNorm2d(16)" for row in failed.value.table.rows)


def test_a_layer_defined_but_never_called_is_listed_as_disconnected():
    graph = layer_graph(crossed(Functional(unused_bn=True)))
    assert graph.disconnected == ("bn2",)


@pytest.mark.parametrize("training", [True, False])
def test_outputs_with_transplanted_weights_match_in_train_and_eval(reference, training):
    student = crossed(Functional())
    own = {k: v.clone() for k, v in student.state_dict().items()}
    expect_same_outputs(reference, student, X, training=training)
    # both modules get their own weights and modes back
    assert all(torch.equal(own[k], v) for k, v in student.state_dict().items())
    assert float(reference[2].running_mean[0]) == pytest.approx(0.25) and reference.training


def test_a_conv_bias_before_batchnorm_computes_the_same_and_passes(reference):
    expect_architecture(reference, crossed(happy(bias=True)), exercise="happy_model")
    for training in (True, False):
        expect_same_outputs(reference, crossed(happy(bias=True)), X, training=training)


def test_a_missing_conv_bias_before_batchnorm_passes_when_the_reference_has_one():
    reference = happy(bias=True)
    with torch.no_grad():
        reference[1].bias.uniform_(-1.0, 1.0)
        reference[2].running_mean.fill_(0.25)
    for training in (True, False):
        expect_same_outputs(reference, crossed(happy(bias=False)), X, training=training)


def test_relu_before_batchnorm_changes_the_outputs_and_says_why(reference):
    with pytest.raises(CheckFailed) as failed:
        expect_same_outputs(reference, crossed(happy(order="relu_first")), X, training=False)
    assert failed.value.diagnosis == "outputs_differ_inference"
    assert "nn.ReLU comes before nn.BatchNorm2d" in str(failed.value)


def test_a_different_eps_shows_in_training_mode(reference):
    with pytest.raises(CheckFailed) as failed:
        expect_same_outputs(reference, crossed(happy(eps=1e-1)), X, training=True)
    assert failed.value.diagnosis == "outputs_differ_training"


# ------------------------------------------------------------------ hostile descriptions

def _payload(module: nn.Module) -> torch_side.TorchModulePayload:
    tree, blob = protocol.encode_value(module, side=torch_side)
    return protocol.decode_value(tree, blob, side=torch_side)


def _edited(module: nn.Module, edit) -> torch_side.TorchModulePayload:
    payload = _payload(module)
    description = copy.deepcopy(payload.description)
    edit(description)
    return torch_side.TorchModulePayload(description, payload.state, payload.class_name)


def test_sizes_are_refused_before_anything_is_allocated():
    def huge(d):
        entry = next(e for e in d["modules"] if e["class"] == "Linear")
        entry["args"]["in_features"] = entry["args"]["out_features"] = 10_000_000
    with pytest.raises(ModelRejected, match=r"whole number from 1 to|more than .* parameters"):
        rebuild_torch(_edited(happy(), huge))

    def many(d):
        for e in d["modules"]:
            if e["class"] == "Conv2d":
                e["args"].update(in_channels=4096, out_channels=4096, kernel_size=[64, 64])
    with pytest.raises(ModelRejected, match=f"more than {MAX_PARAMS:,} parameters"):
        rebuild_torch(_edited(happy(), many))


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["graph"]["nodes"][1].update(op="call_function", target="builtins.eval", known=False),
     "builtins.eval"),
    (lambda d: d["graph"]["nodes"][1].update(op="call_method", target="__setattr__"), "__setattr__"),
    (lambda d: d["graph"]["nodes"][1].update(op="get_attr", target="training"), "not one of its parameters"),
    (lambda d: d["graph"]["nodes"][1].update(op="call_function", target="getattr",
                                             args=[{"node": "input_1"}, "__class__"]), "attribute"),
    (lambda d: d["graph"]["nodes"][1]["args"].append({"unsupported": "function"}), "cannot rebuild"),
    (lambda d: d["graph"]["nodes"][1].update(args=[{"node": "nowhere"}]), "malformed"),
    (lambda d: d["modules"][0].update(path="../x"), "malformed"),
    (lambda d: d.update(format=2), "malformed"),
    (lambda d: d["graph"]["nodes"][0].update(target="x; import os"), "an input's name"),
    (lambda d: next(e for e in d["modules"] if e["class"] == "Conv2d")["args"].update(padding="same", stride=[2, 2]),
     "could not be rebuilt"),
])
def test_anything_outside_the_allow_lists_is_the_students_model_rejected(edit, message):
    with pytest.raises(ModelRejected, match=message.replace("(", r"\(").replace(".", r"\.")):
        rebuild_torch(_edited(happy(), edit))


def test_state_must_fit_the_rebuilt_layers():
    payload = _payload(happy())
    wrong = tuple((k, np.zeros((3, 3), np.float32) if k == "1.weight" else a) for k, a in payload.state)
    with pytest.raises(ModelRejected, match="`1.weight` has shape"):
        rebuild_torch(torch_side.TorchModulePayload(payload.description, wrong, payload.class_name))
    extra = payload.state + (("evil", np.zeros(1, np.float32)),)
    with pytest.raises(ModelRejected, match="none of its layers"):
        rebuild_torch(torch_side.TorchModulePayload(payload.description, extra, payload.class_name))


FLATTENS = {
    "x.view(x.size(0), -1)": lambda x: x.view(x.size(0), -1),
    "x.view(-1, 8 * 8 * 8)": lambda x: x.view(-1, 8 * 8 * 8),
    "x.reshape(x.shape[0], -1)": lambda x: x.reshape(x.shape[0], -1),
    "torch.flatten(x, 1)": lambda x: torch.flatten(x, 1),
    "x.flatten(1)": lambda x: x.flatten(1),
}


@pytest.mark.parametrize("flatten", sorted(FLATTENS))
def test_every_usual_spelling_of_flatten_is_the_flatten_layer(reference, flatten):
    class Written(Functional):
        def forward(self, x):
            x = F.max_pool2d(F.relu(self.bn(self.conv(self.pad(x)))), 2)
            return torch.sigmoid(self.fc(FLATTENS[flatten](x)))
    expect_architecture(reference, crossed(Written()), exercise="happy_model")


def test_a_students_own_conv_subclass_reads_as_the_convolution_it_computes(reference):
    class MyConv(nn.Conv2d):  # traced through: F.conv2d on its own weight
        pass

    student = Functional()
    student.conv = MyConv(3, 8, 7, bias=False)
    graph = layer_graph(crossed(student))
    conv = next(n.spec for n in graph.nodes if n.spec.kind == "Conv2D")
    assert conv.param("filters") == 8 and conv.param("kernel_size") == (7, 7) and conv.param("padding") == "valid"
    expect_architecture(reference, crossed(student), exercise="happy_model")
    expect_same_outputs(reference, crossed(student), X, training=False)


# ---------------------------------------------------------------- PyTorch's words in sentences

# Keras class names a PyTorch student never wrote: none may appear in what they read.
KERAS_NAMES = ("BatchNormalization", "Conv2D", "MaxPooling2D", "ZeroPadding2D", "Dense", "Activation(", "Model()",
               "use_bias")


def student_text(failure: CheckFailed) -> str:
    """What the student reads besides the table (whose labels are the displays)."""
    return f"{failure.message}\n{failure.hint}"


def assert_pytorch_words(failure: CheckFailed, *names: str) -> None:
    text = student_text(failure)
    for name in names:
        assert name in text, (name, text)
    for keras in KERAS_NAMES:
        assert keras not in text, (keras, text)


def without_bn() -> nn.Sequential:
    return nn.Sequential(nn.ZeroPad2d(3), nn.Conv2d(3, 8, 7, bias=False), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(8 * 8 * 8, 1), nn.Sigmoid())


def test_relu_before_batchnorm_is_said_with_pytorch_names(reference):
    with pytest.raises(CheckFailed) as failed:
        expect_architecture(reference, crossed(happy(order="relu_first")), exercise="happy_model")
    assert failed.value.message.startswith("nn.ReLU comes before nn.BatchNorm2d; nn.BatchNorm2d must follow nn.Conv2d")
    assert_pytorch_words(failed.value, "nn.Conv2d -> nn.BatchNorm2d -> nn.ReLU")


def test_a_functional_relu_before_batchnorm_is_named_as_written(reference):
    class ReluFirst(Functional):
        def forward(self, x):
            x = F.max_pool2d(self.bn(F.relu(self.conv(self.pad(x)))), 2)
            return torch.sigmoid(self.fc(x.view(x.size(0), -1)))

    with pytest.raises(CheckFailed) as failed:
        expect_architecture(reference, crossed(ReluFirst()), exercise="happy_model")
    assert failed.value.diagnosis == "relu_before_bn"
    assert_pytorch_words(failed.value, "F.relu comes before nn.BatchNorm2d")


def test_batchnorm_after_pooling_is_said_with_pytorch_names(reference):
    student = crossed(happy(order="bn_after_pool"))
    with pytest.raises(CheckFailed) as failed:
        expect_bn_after_conv(student, every_conv=True)
    assert_pytorch_words(failed.value, "is followed by nn.ReLU, not by nn.BatchNorm2d", "not from a nn.Conv2d")
    with pytest.raises(CheckFailed) as failed:
        expect_architecture(reference, student, exercise="happy_model")
    assert_pytorch_words(failed.value, "nn.BatchNorm2d")


def test_a_wrong_num_features_is_said_with_pytorch_names(reference):
    with pytest.raises(CheckFailed) as failed:
        expect_architecture(reference, crossed(happy(num_features=16)), exercise="happy_model")
    assert failed.value.message.startswith("nn.BatchNorm2d has num_features=16; expected num_features=8."), \
        failed.value.message
    assert_pytorch_words(failed.value, "make that layer nn.BatchNorm2d(8)")


def test_a_missing_batchnorm_is_said_with_pytorch_names(reference):
    with pytest.raises(CheckFailed) as failed:
        expect_architecture(reference, crossed(without_bn()), exercise="happy_model")
    assert failed.value.diagnosis == "bn_missing"
    assert_pytorch_words(failed.value, "nn.BatchNorm2d(8) is missing between nn.Conv2d and nn.ReLU",
                         "put nn.BatchNorm2d directly after each nn.Conv2d")
    with pytest.raises(CheckFailed) as failed:
        expect_bn_after_conv(crossed(without_bn()))
    assert_pytorch_words(failed.value, "The model has 0 nn.BatchNorm2d layers", "after each nn.Conv2d")


def test_batchnorm_before_the_convolution_is_said_with_pytorch_names(reference):
    student = nn.Sequential(nn.ZeroPad2d(3), nn.BatchNorm2d(3), nn.Conv2d(3, 8, 7, bias=False), nn.ReLU(),
                            nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 8 * 8, 1), nn.Sigmoid())
    with pytest.raises(CheckFailed) as failed:
        expect_architecture(reference, crossed(student), exercise="happy_model")
    assert failed.value.diagnosis == "bn_before_conv"
    assert_pytorch_words(failed.value, "nn.BatchNorm2d comes before nn.Conv2d")


def test_a_layer_never_called_in_forward_is_said_in_pytorch_terms(reference):
    with pytest.raises(CheckFailed) as failed:
        expect_architecture(reference, crossed(Functional(unused_bn=True)), exercise="happy_model")
    assert failed.value.diagnosis == "disconnected_layers"
    assert_pytorch_words(failed.value, "self.bn2", "never called", "forward")


def test_train_and_eval_differences_are_said_with_pytorch_names(reference):
    """The output check explains a different graph with the same sentences (here in eval())."""
    with pytest.raises(CheckFailed) as failed:
        expect_same_outputs(reference, crossed(without_bn()), X, training=False)
    assert_pytorch_words(failed.value, "nn.BatchNorm2d(8) is missing")


def test_a_conv_bias_before_batchnorm_passes_with_a_note(reference):
    with collecting_notes() as notes:
        expect_architecture(reference, crossed(happy(bias=True)), exercise="happy_model")
    assert notes == ["nn.Conv2d(..., bias=True) before nn.BatchNorm2d: accepted; the batch norm subtracts the mean, "
                     "so the convolution's bias has no effect — `bias=False` saves parameters."]
    with collecting_notes() as notes:  # the specification's own bias=False: nothing to say
        expect_architecture(reference, crossed(happy(bias=False)), exercise="happy_model")
    assert notes == []
    with collecting_notes() as notes:  # a bias the specification has too: nothing to say either
        expect_architecture(happy(bias=True), crossed(happy(bias=True)), exercise="happy_model")
    assert notes == []
