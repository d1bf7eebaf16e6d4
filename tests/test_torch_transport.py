"""PyTorch modules cross the sandbox boundary as data only, in a real torch worker.

The child describes a returned `nn.Module` (module tree, `torch.fx` graph, state dict as
arrays); the grading process rebuilds it from allow-listed parts and must compute what
the student's module computed in the child. Tensors cross as arrays both ways.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from grader.checks import CheckFailed
from grader.checks.graph import layer_graph
from grader.frameworks.torch.rebuild import RebuiltModule, rebuild_torch
from grader.frameworks.errors import ModelRejected
from grader.sandbox import protocol
from grader.frameworks.torch.child.payload import TorchModulePayload

STUDENT = '''
import torch
from torch import nn
import torch.nn.functional as F

def happy_model():
    return nn.Sequential(nn.ZeroPad2d(3), nn.Conv2d(3, 8, 7), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(8 * 8 * 8, 1), nn.Sigmoid())

class ConvolutionalModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 4 * 4, 5)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.max_pool2d(x, 2)
        x = x.view(x.size(0), -1)
        return torch.softmax(self.fc(x), dim=1)

def with_output(name, train_first):
    torch.manual_seed(3)
    model = happy_model() if name == "happy" else ConvolutionalModel()
    x = torch.linspace(-2, 2, 2 * 3 * (16 if name == "happy" else 8) ** 2).reshape(2, 3, *(2 * [16 if name == "happy" else 8]))
    if train_first:
        model.train()
        model(x)
        model(x * 0.5)
    model.eval()
    return model, model(x), x

class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        if x.sum() > 0:
            return self.conv(x)
        return x

def branchy():
    return Branchy()

def recurrent():
    return nn.Sequential(nn.Flatten(), nn.LSTM(4, 4))

class Exotic(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return torch.fft.fft(self.fc(x)).real

def exotic():
    return Exotic()

def double(t):
    return type(t).__name__, t * 2
'''


@pytest.fixture(scope="module")
def session(torch_worker):
    s = torch_worker.session([{"source": STUDENT, "line": 1, "label": "cell In [4] [models]", "kind": "def"}])
    yield s
    s.close()


def test_the_torch_worker_never_imports_tensorflow(torch_worker):
    info = torch_worker.probe()
    assert info["torch_imported"] is True and info["tensorflow_imported"] is False, info
    assert info["threads"] == 1, info  # fork-safe: no thread started by the preload
    assert "torch" in torch_worker.info and "tensorflow" not in torch_worker.info


@pytest.mark.parametrize("name", ["happy", "custom"])
def test_a_returned_module_is_rebuilt_and_computes_what_it_computed_in_the_child(session, name):
    value = session.call("with_output", name, True).value
    payload, output, x = value
    assert isinstance(payload, TorchModulePayload) and isinstance(output, np.ndarray) and isinstance(x, np.ndarray)
    model = rebuild_torch(payload)
    assert isinstance(model, RebuiltModule) and not model.training  # returned in eval(): kept
    with torch.no_grad():
        again = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(again, output, rtol=1e-5, atol=1e-6)


def test_batchnorm_running_statistics_and_counter_cross_as_buffers(session):
    payload, _, _ = session.call("with_output", "happy", True).value
    state = dict(payload.state)
    assert state["2.num_batches_tracked"].shape == () and int(state["2.num_batches_tracked"]) == 2
    assert state["2.running_mean"].shape == (8,) and np.abs(state["2.running_mean"]).sum() > 0
    model = rebuild_torch(payload)
    np.testing.assert_array_equal(model.get_submodule("2").running_var.numpy(), state["2.running_var"])
    assert int(model.get_submodule("2").num_batches_tracked) == 2


def test_the_graph_keeps_where_the_student_wrote_each_operation(session):
    model = rebuild_torch(session.call("ConvolutionalModel").value)
    graph = layer_graph(model)
    kinds = [n.spec.kind for n in graph.nodes]
    assert kinds == ["Conv2D", "BatchNormalization", "ReLU", "MaxPooling2D", "Flatten", "Dense"], kinds
    relu = graph.nodes[2]
    assert relu.location is not None and relu.location.cell == "cell In [4]" and relu.location.function == "models"
    assert "F.relu(self.bn1(self.conv1(x)))" in relu.location.source
    assert graph.nodes[1].spec.label() == "nn.BatchNorm2d(4)"


def test_tensors_arrive_as_torch_tensors_and_come_back_as_arrays(session):
    kind, doubled = session.call("double", torch.arange(3, dtype=torch.float32)).value
    assert kind == "Tensor"
    assert isinstance(doubled, np.ndarray) and doubled.tolist() == [0.0, 2.0, 4.0]


def test_a_forward_that_branches_on_values_is_a_clear_failure_naming_its_line(session):
    model = rebuild_torch(session.call("branchy").value)
    assert model.fx_graph is None and model.untraceable_where[1] > 0
    with pytest.raises(CheckFailed) as failed:
        layer_graph(model)
    assert "`Branchy.forward`" in str(failed.value) and "if x.sum() > 0:" in str(failed.value)
    line = STUDENT.splitlines().index("        if x.sum() > 0:") + 1
    assert f"(cell In [4], line {line}: `if x.sum() > 0:`)" in str(failed.value), str(failed.value)
    assert failed.value.diagnosis == "untraceable_forward"


def test_a_layer_outside_the_allow_list_is_rejected_with_its_name(session):
    with pytest.raises(ModelRejected, match=r"nn\.LSTM.*not one of the layers"):
        rebuild_torch(session.call("recurrent").value)


def test_a_function_outside_the_allow_list_is_rejected_with_its_name(session):
    with pytest.raises(ModelRejected, match=r"forward calls `.*fft.*`, which this grader does not run"):
        rebuild_torch(session.call("exotic").value)


def test_layers_of_a_sequential_point_at_the_line_that_created_them(session):
    graph = layer_graph(rebuild_torch(session.call("happy_model").value))
    by_kind = {n.spec.kind: n for n in graph.nodes}
    conv, dense = by_kind["Conv2D"].location, by_kind["Dense"].location
    assert conv is not None and conv.cell == "cell In [4]" and "nn.Conv2d(3, 8, 7)" in conv.source
    lines = STUDENT.splitlines()
    assert "nn.Conv2d(3, 8, 7)" in lines[conv.line - 1]
    assert dense is not None and "nn.Linear(8 * 8 * 8, 1)" in lines[dense.line - 1]


def test_a_module_asked_for_without_weights_crosses_without_its_state(session):
    payload = session.call("happy_model", weights=False).value
    assert payload.weightless and payload.state == ()
    model = rebuild_torch(payload)  # fresh weights, the same layers
    assert [n.spec.kind for n in layer_graph(model).nodes][:3] == ["ZeroPadding2D", "Conv2D", "BatchNormalization"]
    assert model(torch.zeros(1, 3, 16, 16)).shape == (1, 1)
