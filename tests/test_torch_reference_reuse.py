"""What a grading process keeps of a PyTorch reference between checks and submissions, and
what it must not: the reference's outputs are reused only for the same inputs, mode and
weights (and never when its forward pass draws random numbers), a kept reference module is
handed out as freshly built, and the checks fail what they failed before."""
from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch
from torch import nn

from grader.checks import CheckFailed
from grader.checks.models import expect_same_outputs
from grader.frameworks.torch import outputs
from grader.frameworks.torch.rebuild import rebuild_torch
from grader.frameworks.torch.shapes import record_input_shape, recorded_input_shape
from grader.run.plugin import _ReferenceModels
import grader.frameworks.torch.child as torch_side  # noqa: E402 - encodes as the sandbox child does
from grader.sandbox import protocol

X = np.random.default_rng(0).normal(size=(4, 3, 16, 16)).astype(np.float32)


def happy(*, relu_first: bool = False, dropout: float = 0.0) -> nn.Sequential:
    conv, bn, relu = nn.Conv2d(3, 8, 7), nn.BatchNorm2d(8), nn.ReLU()
    middle = [conv, relu, bn] if relu_first else [conv, bn, relu]
    extra = [nn.Dropout(dropout)] if dropout else []
    return nn.Sequential(nn.ZeroPad2d(3), *middle, nn.MaxPool2d(2), nn.Flatten(), *extra,
                         nn.Linear(8 * 8 * 8, 1), nn.Sigmoid())


def crossed(module: nn.Module):
    """The student's module as the grading process gets it: described, sent, rebuilt."""
    tree, blob = protocol.encode_value(module, side=torch_side)
    return rebuild_torch(protocol.decode_value(tree, blob, side=torch_side))


def counted(module: nn.Module) -> list:
    """How many times `module` runs forward."""
    calls: list = []
    module.register_forward_hook(lambda *_: calls.append(1))
    return calls


def state(module: nn.Module) -> dict:
    return {k: v.clone() for k, v in module.state_dict().items()}


def same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_reference_runs_once_per_inputs_mode_and_weights():
    reference, student = happy(), crossed(happy())
    runs = counted(reference)
    for training in (False, True, False, True):
        expect_same_outputs(reference, student, X, training=training)
    assert len(runs) == 2  # one pass per mode; the rest remembered
    other = X[::-1].copy()
    expect_same_outputs(reference, student, other, training=False)
    assert len(runs) == 3  # other inputs: run again
    with torch.no_grad():  # other weights (the student receives them too): run again, never the stale answer
        reference[1].weight.mul_(-2.0)
        reference[2].running_var.fill_(4.0)
    expect_same_outputs(reference, student, X, training=False)
    expect_same_outputs(reference, student, X, training=True)
    assert len(runs) == 5


def test_a_remembered_reference_output_fails_what_a_fresh_one_fails():
    reference, right, wrong = happy(), crossed(happy()), crossed(happy(relu_first=True))
    with torch.no_grad():  # statistics a trained BatchNorm has: in eval() too, ReLU first is another function
        reference[2].running_mean.uniform_(-1.0, 1.0)
        reference[2].bias.uniform_(-1.0, 1.0)
    for _ in range(2):  # the second time the reference's outputs are remembered
        for training in (False, True):
            with pytest.raises(CheckFailed) as failed:
                expect_same_outputs(reference, wrong, X, training=training)
            assert "differs from the reference" in failed.value.message
            expect_same_outputs(reference, right, X, training=training)


def test_the_reference_is_left_as_it_was_whether_it_ran_or_not():
    reference, student = happy(), crossed(happy())
    reference.train()
    reference[2].eval()  # a submodule in another mode than its parent
    before, modes = state(reference), [m.training for m in reference.modules()]
    for _ in range(2):
        expect_same_outputs(reference, student, X, training=True)  # moves BatchNorm's statistics while it runs
        assert same_state(state(reference), before)
        assert [m.training for m in reference.modules()] == modes


def test_a_reference_drawing_random_numbers_is_never_remembered():
    reference = happy(dropout=0.5)
    runs = counted(reference)
    x = torch.from_numpy(X)
    first = outputs._ReferenceOutputs.run(reference, x, True, "the reference model")
    second = outputs._ReferenceOutputs.run(reference, x, True, "the reference model")
    assert len(runs) == 2 and not np.array_equal(first[0], second[0])
    outputs._ReferenceOutputs.run(reference, x, False, "the reference model")  # eval(): no dropout, no draws
    outputs._ReferenceOutputs.run(reference, x, False, "the reference model")
    assert len(runs) == 3


@pytest.fixture
def reference_module():
    """A reference module as an assignment has one: a function building a PyTorch model."""
    module = types.ModuleType("_grader_reference_reuse_test")
    module.nn = nn

    def happy_model(width=8):
        return nn.Sequential(nn.Conv2d(3, width, 3), nn.BatchNorm2d(width), nn.ReLU())

    class ConvolutionalModel(nn.Module):  # an exercise that is a class: called like a function
        def __init__(self, classes=2):
            super().__init__()
            self.fc = nn.Linear(4, classes)

        def forward(self, x):
            return self.fc(x)

    module.happy_model, module.ConvolutionalModel = happy_model, ConvolutionalModel
    sys.modules[module.__name__] = module
    yield module
    del sys.modules[module.__name__]


def test_a_kept_reference_module_is_handed_out_as_freshly_built(reference_module):
    models = _ReferenceModels(reference_module)
    first = models.happy_model()
    built, modes = state(first), [m.training for m in first.modules()]
    with torch.no_grad():  # what one submission's tests may leave on it
        first[0].weight.add_(1.0)
        first[1].running_mean.fill_(3.0)
    first.eval()
    record_input_shape(first, (3, 32, 32))
    again = models.happy_model()
    assert again is first  # kept: no second build, trace or graph of the same code
    assert same_state(state(again), built)
    assert [m.training for m in again.modules()] == modes
    assert recorded_input_shape(again) is None  # read at this submission's shapes, not the last one's
    assert models.happy_model(16) is not first  # other arguments, another model
    again[2] = nn.Sigmoid()  # a layer replaced: built anew
    assert models.happy_model() is not first


def test_reference_modules_have_the_same_weights_in_every_process_and_keep_torch_random_state(reference_module):
    rng = torch.random.get_rng_state()
    one = _ReferenceModels(reference_module).happy_model()
    assert torch.equal(rng, torch.random.get_rng_state())
    two = _ReferenceModels(reference_module).happy_model()  # as another grading process builds it
    assert one is not two and same_state(state(one), state(two))
    models = _ReferenceModels(reference_module)
    net = models.ConvolutionalModel()
    assert models.ConvolutionalModel() is net and models.ConvolutionalModel(3) is not net
    assert same_state(state(net), state(_ReferenceModels(reference_module).ConvolutionalModel()))
