"""One output check for both merge orders of a PyTorch module: `merge_order="either"` (the
reference's weights permuted after a reordered torch.cat) goes through the same function
as the fixed order, so it reuses the reference outputs a kept reference module remembers,
and says what the fixed order says of a mistake that is not the merge's order. Students'
modules cross as the sandbox sends them (`crossed`, shared with the reuse tests)."""
from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch
from torch import nn

from grader.checks import CheckFailed
from grader.checks.models import expect_same_outputs
from grader.run.plugin import _ReferenceModels
from test_torch_reference_reuse import counted, crossed, same_state, state

X = np.random.default_rng(1).normal(size=(3, 3, 12, 12)).astype(np.float32)


class Merged(nn.Module):
    """A U-Net style merge: two branches concatenated on channels, then BatchNorm, ReLU and
    a 1x1 convolution mixing them; `swapped` writes torch.cat's inputs the other way round,
    `relu_first` puts the ReLU before the BatchNorm (a mistake of another kind)."""

    def __init__(self, swapped: bool = False, relu_first: bool = False):
        super().__init__()
        self.up, self.skip = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(3, 2, 1)
        self.bn, self.mix = nn.BatchNorm2d(6), nn.Conv2d(6, 5, 1)
        self.swapped, self.relu_first = swapped, relu_first

    def forward(self, x):
        up, skip = torch.relu(self.up(x)), self.skip(x)
        merged = torch.cat([skip, up], dim=1) if self.swapped else torch.cat([up, skip], dim=1)
        if self.relu_first:
            return self.mix(self.bn(torch.relu(merged)))
        return self.mix(torch.relu(self.bn(merged)))


def merged_model() -> Merged:
    model = Merged()
    with torch.no_grad():  # statistics and shifts unlike a fresh layer's: eval() and train() differ, ReLU matters
        model.bn.running_mean.uniform_(-1.0, 1.0)
        model.bn.running_var.uniform_(0.5, 2.0)
        model.bn.bias.uniform_(-1.0, 1.0)
    return model


@pytest.fixture
def models():
    """The reference modules a grading process keeps from one submission to the next."""
    module = types.ModuleType("_grader_same_outputs_test")
    module.merged_model = merged_model
    sys.modules[module.__name__] = module
    yield _ReferenceModels(module)
    del sys.modules[module.__name__]


def test_either_order_reuses_the_kept_references_outputs_across_submissions(models):
    kept = models.merged_model()
    runs = counted(kept)
    for student in (crossed(Merged(swapped=True)), crossed(Merged())):  # two submissions, each order once
        reference = models.merged_model()
        assert reference is kept
        before = state(student)
        for training in (False, True):
            expect_same_outputs(reference, student, X, training=training, merge_order="either")
        assert same_state(state(student), before)
    assert len(runs) == 2  # one forward pass per mode for both submissions, not one per check
    swapped = crossed(Merged(swapped=True))
    for training in (False, True):
        with pytest.raises(CheckFailed) as failed:
            expect_same_outputs(models.merged_model(), swapped, X, training=training)
        assert failed.value.diagnosis == "wrong_input_order", failed.value.message
        assert "torch.cat" in failed.value.message
    assert len(runs) == 2  # the fixed order reads the outputs the "either" checks remembered


def test_a_remembered_output_fails_under_either_what_it_fails_under_fixed(models):
    """A mistake that is not the merge's order (ReLU before BatchNorm) fails in both
    orders, the first time and with the reference's outputs remembered, with the same
    message; the student's module is left as it was."""
    for student in (crossed(Merged(relu_first=True)), crossed(Merged(swapped=True, relu_first=True))):
        before = state(student)
        for training in (False, True):
            said = []
            for _ in range(2):  # the second time the reference's outputs are remembered
                with pytest.raises(CheckFailed) as failed:
                    expect_same_outputs(models.merged_model(), student, X, training=training, merge_order="either")
                said.append(failed.value.message)
            assert said[0] == said[1]
            assert "differs from the reference" in said[0] or failed.value.diagnosis == "wrong_input_order"
        assert same_state(state(student), before)
    unswapped = crossed(Merged(relu_first=True))
    for training in (False, True):
        messages = []
        for order in ("fixed", "either"):
            with pytest.raises(CheckFailed) as failed:
                expect_same_outputs(models.merged_model(), unswapped, X, training=training, merge_order=order)
            messages.append((failed.value.message, failed.value.hint, failed.value.diagnosis))
        assert messages[0] == messages[1]


def test_either_order_refuses_several_inputs_by_name(models):
    with pytest.raises(CheckFailed) as failed:
        expect_same_outputs(models.merged_model(), crossed(Merged()), [X, X], training=False, merge_order="either")
    assert failed.value.diagnosis == "model_call_failed" and "2 inputs" in failed.value.message
