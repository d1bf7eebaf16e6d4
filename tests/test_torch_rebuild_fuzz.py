"""Whatever a hostile child writes into a torch module's description, the grading process
either rebuilds an allow-listed module or refuses it with the student's ModelRejected:
never another exception, never an allocation past the size limits. Seeded mutations of
real descriptions (a Sequential and a class with functions and methods in forward)."""
from __future__ import annotations

import copy
import random

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from grader.checks import CheckFailed
from grader.checks.graph import layer_graph
from grader.frameworks.torch.rebuild import RebuiltModule, rebuild_torch
from grader.frameworks.errors import ModelRejected
import grader.frameworks.torch.child as torch_side  # noqa: E402 - encodes as the sandbox child does
from grader.sandbox import protocol


class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 2 * 2, 3)

    def forward(self, x):
        y = F.max_pool2d(torch.relu(self.bn(self.conv(x))), 2)
        y = torch.cat([y, y * 0.5], dim=1)[:, :4]
        return torch.softmax(self.fc(y.view(y.size(0), -1)), dim=1)


MODELS = {"sequential": lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AvgPool2d(2),
                                              nn.Flatten(), nn.Linear(4, 2), nn.Sigmoid()),
          "class": Small}

JUNK = [None, True, -1, 0, 2 ** 62, 1e308, float("nan"), "", "x" * 500, "__class__", "os.system", [], [1, 2, 3],
        {}, {"node": "x"}, {"tuple": [1, {"node": "missing"}]}, {"unsupported": "function"}, {"dtype": "object"},
        {"slice": [None, None, None]}, {"float": "1e400"}, [[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]


def _places(tree, path=()):
    """Every (container, key) in the JSON tree, for a mutation to land on."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield tree, key
            yield from _places(value, path + (key,))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            yield tree, i
            yield from _places(value, path + (i,))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_mutated_descriptions_are_rebuilt_or_refused_never_crash(name):
    tree, blob = protocol.encode_value(MODELS[name](), side=torch_side)
    original = protocol.decode_value(tree, blob, side=torch_side)
    rng = random.Random(f"torch-fuzz-{name}")
    outcomes = {"rebuilt": 0, "refused": 0}
    for _ in range(400):
        description = copy.deepcopy(original.description)
        places = list(_places(description))
        for _ in range(rng.randint(1, 3)):
            container, key = rng.choice(places)
            container[key] = copy.deepcopy(rng.choice(JUNK))
            places = list(_places(description))
        payload = torch_side.TorchModulePayload(description, original.state, original.class_name)
        try:
            model = rebuild_torch(payload)
        except ModelRejected as exc:
            assert str(exc), "a refusal says why"
            outcomes["refused"] += 1
            continue
        outcomes["rebuilt"] += 1
        assert isinstance(model, RebuiltModule)
        assert sum(p.numel() for p in model.parameters()) < 10_000  # nothing grew past the original's size
        try:
            layer_graph(model)
        except CheckFailed:
            pass
        try:
            model(torch.zeros(1, 3, 4, 4))
        except (RuntimeError, TypeError, ValueError, IndexError, AttributeError, CheckFailed):
            pass  # a broken forward is the output check's failure, in the student's words
    assert outcomes["refused"] > 50 and outcomes["rebuilt"] > 5, outcomes
