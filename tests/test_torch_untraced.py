"""A PyTorch module that torch.fx cannot trace (its forward branches on a tensor's value)
is graded by running it in the sandbox child: the order of its layer calls recorded with
forward hooks, and its outputs computed there with the reference's weights sent in as
arrays. A real notebook, a real torch worker, a real `framework = "torch"` assignment."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from conftest import notebook
from grader.assignment.spec import load_assignment
from grader.checks import CheckFailed
from grader.checks.architecture import expect_architecture
from grader.checks.models import expect_same_outputs
from grader.frameworks.torch.rebuild import RebuiltModule
from grader.frameworks.torch.untraced import (expect_layer_order_by_hooks, expect_same_outputs_by_hooks,
                                              hooked_run)
from grader.run.submission import Submission

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
    def __init__(self, relu_first):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(4 * 4 * 4, 3)
        self.relu_first = relu_first

    def forward(self, x):
        if x.abs().sum() < 0:  # never true, but torch.fx cannot know
            return x
        x = self.conv(x)
        x = self.bn(self.relu(x)) if self.relu_first else self.relu(self.bn(x))
        return self.fc(torch.flatten(self.pool(x), 1))

def conv_model():
    return ConvModel(RELU_FIRST)
'''


@pytest.fixture(scope="module")
def assignment(tmp_path_factory):
    root = tmp_path_factory.mktemp("untraced")
    (root / "tests").mkdir()
    (root / "reference.py").write_text(REFERENCE)
    (root / "assignment.toml").write_text('name = "untraced"\nexercises = ["conv_model"]\n'
                                          'reference = "reference.py"\nframework = "torch"\n')
    return load_assignment(root)


def reference() -> nn.Module:
    namespace: dict = {}
    exec(REFERENCE, namespace)  # noqa: S102 - the instructor's reference, as the plugin imports it
    model = namespace["conv_model"]()
    with torch.no_grad():
        model[1].running_mean.fill_(0.5)
        model[1].running_var.fill_(3.0)
    return model


@pytest.fixture(scope="module")
def submissions(tmp_path_factory, assignment, torch_worker):
    opened = {}
    for name, relu_first in (("right", False), ("wrong", True)):
        folder = tmp_path_factory.mktemp(name)
        path = notebook(Path(folder) / "s.ipynb", f"RELU_FIRST = {relu_first}", STUDENT)
        opened[name] = Submission(path, assignment, torch_worker).open()
    yield opened
    for submission in opened.values():
        submission.close()


X = np.random.default_rng(1).normal(size=(2, 3, 8, 8)).astype(np.float32)


def test_the_graph_checks_say_why_they_cannot_read_it(submissions):
    model = submissions["right"].model("conv_model")
    assert isinstance(model, RebuiltModule) and model.fx_graph is None
    with pytest.raises(CheckFailed) as failed:
        expect_architecture(reference(), model, exercise="conv_model")
    assert failed.value.diagnosis == "untraceable_forward" and "if x.abs().sum() < 0:" in str(failed.value)


def test_the_layer_order_comes_from_forward_hooks(submissions):
    run = hooked_run(submissions["right"], "conv_model", X)
    assert [path for path, _ in run.order] == ["conv", "bn", "relu", "pool", "fc"]
    expect_layer_order_by_hooks(reference(), submissions["right"].model("conv_model"), run, X, exercise="conv_model")
    wrong = hooked_run(submissions["wrong"], "conv_model", X)
    with pytest.raises(CheckFailed) as failed:
        expect_layer_order_by_hooks(reference(), submissions["wrong"].model("conv_model"), wrong, X,
                                    exercise="conv_model")
    assert failed.value.diagnosis == "relu_before_bn"


@pytest.mark.parametrize("training", [True, False])
def test_outputs_are_computed_in_the_child_with_the_references_weights(submissions, training):
    ref = reference()
    expect_same_outputs_by_hooks(ref, submissions["right"].model("conv_model"), submissions["right"], "conv_model",
                                 X, training=training)
    assert float(ref[1].running_mean[0]) == pytest.approx(0.5)  # the reference is left as it was
    with pytest.raises(CheckFailed) as failed:
        expect_same_outputs_by_hooks(ref, submissions["wrong"].model("conv_model"), submissions["wrong"],
                                     "conv_model", X, training=training)
    assert failed.value.diagnosis == f"outputs_differ_{'training' if training else 'inference'}"


def test_expect_same_outputs_runs_an_untraceable_module_in_the_child_by_itself(submissions):
    ref = reference()
    expect_same_outputs(ref, submissions["right"].model("conv_model"), X, training=False)
    with pytest.raises(CheckFailed) as failed:
        expect_same_outputs(ref, submissions["wrong"].model("conv_model"), X, training=True)
    assert failed.value.diagnosis == "outputs_differ_training"
