"""The adapter registry (grader.checks.adapters): each model goes to its framework's
adapter, a framework is only ever asked once it is imported, and a third framework
joins through `register` with the same checks."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from grader.checks import CheckFailed  # noqa: E402
from grader.checks.adapters import Adapter, adapter_for, register, unregister  # noqa: E402
from grader.checks.architecture import expect_architecture  # noqa: E402
from grader.checks.graph import GraphNode, LayerGraph, layer_graph  # noqa: E402
from grader.checks.models import expect_output_shape, expect_same_outputs  # noqa: E402
from grader.checks.specs import LayerSpec  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


def test_keras_models_and_layers_go_to_the_keras_adapter():
    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    assert adapter_for(model).name == "keras"
    assert adapter_for(model.layers[0]).name == "keras"
    assert [s.kind for s in layer_graph(model).specs] == ["Dense"]


def test_torch_modules_go_to_the_torch_adapter():
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.ReLU())
    assert adapter_for(model).name == "torch"
    assert [s.kind for s in layer_graph(model).specs][0] == "Dense"


def test_a_torch_process_never_imports_the_keras_adapter_or_tensorflow():
    pytest.importorskip("torch")
    out = _run("import sys, torch\n"
               "from grader.checks.graph import layer_graph\n"
               "from grader.checks.models import expect_same_outputs\n"
               "import numpy as np\n"
               "m = torch.nn.Sequential(torch.nn.Linear(3, 2))\n"
               "expect_same_outputs(m, m, np.ones((2, 3), np.float32), training=False)\n"
               "print(len(layer_graph(m).nodes), sorted(n for n in ('tensorflow', 'keras', 'tf_keras',"
               " 'grader.frameworks.keras.adapter', 'grader.frameworks.torch.adapter') if n in sys.modules))\n")
    assert out == "1 ['grader.frameworks.torch.adapter']"


def test_something_that_is_not_a_model_is_named_in_the_feedback():
    with pytest.raises(CheckFailed) as failed:
        expect_same_outputs(None, "a summary string", np.ones((1, 2)), training=False)
    assert failed.value.diagnosis == "not_a_model"
    assert "found a str" in failed.value.message


def test_a_recorded_graph_is_read_without_any_adapter():
    """A student kit's recorded reference holds no framework model, only its graph."""
    graph = LayerGraph((GraphNode(LayerSpec("Dense", (("units", 2),), "d", ()), None, (None, 4), 1),), (0,), ())

    class Recorded:
        _grader_layer_graph = (object(), graph)

    assert adapter_for(Recorded()) is None
    assert layer_graph(Recorded()) is graph


class Abacus:
    """A third framework's model: a chain of named steps, each a scale factor."""

    def __init__(self, *scales: float):
        self.scales = list(scales)

    def __call__(self, x):
        for s in self.scales:
            x = x * s
        return x


def _abacus_graph(model: Abacus, cap: int) -> LayerGraph:
    nodes = tuple(GraphNode(LayerSpec("Rescaling", (("scale", s),), f"step{i}", (i - 1,) if i else ()), None,
                            None, 0 if i else 1) for i, s in enumerate(model.scales))
    return LayerGraph(nodes, (len(nodes) - 1,), ())


def _abacus_outputs(model, inputs, training, who):
    return [np.asarray(model(np.asarray(inputs, dtype=np.float64)))]


def _abacus_same(reference, student, inputs, *, training, rtol, atol, what, merge_order):
    from grader.checks.models import compare_outputs
    compare_outputs(_abacus_outputs(reference, inputs, training, ""), _abacus_outputs(student, inputs, training, ""),
                    reference, student, training=training, rtol=rtol, atol=atol, what=what,
                    settings_hint=lambda: "compare each step's scale.")


@pytest.fixture
def abacus():
    register(Adapter("abacus", owns=lambda m: isinstance(m, Abacus), layer_graph=_abacus_graph,
                     expect_same_outputs=_abacus_same, outputs=_abacus_outputs))
    yield
    unregister("abacus")


def test_a_registered_framework_gets_the_same_checks_and_messages(abacus):
    expect_same_outputs(Abacus(2.0, 3.0), Abacus(2.0, 3.0), np.ones((2, 2)), training=False)
    expect_output_shape(Abacus(2.0), np.ones((5, 3)), (None, 3))
    with pytest.raises(CheckFailed) as failed:
        expect_same_outputs(Abacus(2.0, 3.0), Abacus(2.0, 4.0), np.ones((2, 2)), training=False)
    assert failed.value.diagnosis == "outputs_differ_inference"
    assert "differs from the reference's by up to 2" in failed.value.message
    with pytest.raises(CheckFailed) as failed:
        expect_architecture(Abacus(2.0, 3.0), Abacus(2.0), exercise="scale")
    assert "Rescaling" in failed.value.message + str(failed.value.table)


def test_copy_weights_is_refused_by_name_where_a_framework_has_none(abacus):
    from grader.checks.models import copy_weights
    with pytest.raises(TypeError, match="abacus adapter has no copy_weights"):
        copy_weights(Abacus(1.0), Abacus(1.0))
