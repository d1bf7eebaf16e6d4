"""Top-level models and optimizers graded without the training around them.

Real notebooks (nbformat), real workers (torch and Keras), real modules: the cell that
builds `model` and `optimizer` also trains, and a training call that never returns would
stall the grade if it ran. `submission.variable(...)` must build the value from the
statements it needs (and the constants they read, as of that cell) and nothing else.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from grader.assignment.spec import load_assignment
from grader.checks import CheckFailed
from grader.checks.optimizer import OptimizerValue, expect_optimizer
from grader.notebook import extract_program
from grader.notebook.toplevel import select_value
from grader.run.submission import Submission

from conftest import notebook

TORCH_CELLS = (
    "import torch\nimport torch.nn as nn\nimport torch.optim as optim\nimport torch.nn.functional as F",
    "class Flatten(nn.Module):\n    def forward(self, x):\n        return x.view(x.shape[0], -1)",
    # a training helper that would never return: running it stalls the grade
    "def train_part34(model, optimizer, epochs=1):\n    while True:\n        pass",
    "learning_rate = 3e-3\nmodel = nn.Sequential(Flatten(), nn.Linear(3 * 32 * 32, 10))\n"
    "optimizer = optim.Adam(model.parameters(), lr=learning_rate)\ntrain_part34(model, optimizer)",
    "channel_1 = 8\nchannel_2 = 4\nlearning_rate = 1e-2\n\nmodel = None\noptimizer = None\n"
    "# TODO: Rewrite the 2-layer ConvNet with bias from Part III with the Sequential API.\n"
    "model = nn.Sequential(\n    nn.Conv2d(3, channel_1, 5, padding=2), nn.ReLU(),\n"
    "    nn.Conv2d(channel_1, channel_2, 3, padding=1), nn.ReLU(),\n"
    "    Flatten(), nn.Linear(channel_2 * 32 * 32, 10))\n"
    "optimizer = optim.SGD(model.parameters(), lr=learning_rate, momentum=0.9, nesterov=True)\n"
    "train_part34(model, optimizer)",
    # later cells rebind both names and the learning rate: none of that is the graded value
    "learning_rate = 1e-3\nmodel = None\noptimizer = None\nbest = train_part34(model, optimizer, epochs=10)",
)
MARKER = "Rewrite the 2-layer ConvNet with bias from Part III with the Sequential API"

KERAS_CELLS = (
    "import numpy as np\nimport tensorflow as tf\nfrom tensorflow.keras import layers\n"
    "from tensorflow.keras.models import Sequential",
    "def load_dataset():\n    while True:\n        pass",
    "X_train, Y_train = load_dataset()",
    "units = 6\nmodel = Sequential([tf.keras.Input((8,)), layers.Dense(units, activation='relu')])\n"
    "model.add(layers.Dense(1, activation='sigmoid'))\n"
    "model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate=0.005), loss='binary_crossentropy')\n"
    "history = model.fit(X_train, Y_train, epochs=40)\nmodel.evaluate(X_train, Y_train)",
    "shape = X_train.shape[1:]\nbig = Sequential([tf.keras.Input(shape), layers.Dense(2)])",
)


def _nb(*cells: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])


def test_the_slice_holds_what_builds_the_value_and_no_training():
    chosen = select_value(_nb(*TORCH_CELLS), "optimizer", marker=MARKER)
    sources = [c.source for c in chosen.chunks]
    assert not chosen.problem
    assert chosen.cell == 4 and chosen.source.startswith("optimizer = optim.SGD")
    assert sources[:3] == ["channel_1 = 8", "channel_2 = 4", "learning_rate = 1e-2"]  # as of that cell, in order
    assert any(s.startswith("model = nn.Sequential(") and "channel_2 * 32 * 32" in s for s in sources)
    assert {"channel_1 = 8", "channel_2 = 4"} <= set(sources)
    assert not any("train_part34" in s or s.endswith("= None") for s in sources)
    assert all(c.cell == 4 for c in chosen.chunks)


def test_without_a_marker_the_last_binding_counts_and_a_placeholder_is_what_it_is():
    chosen = select_value(_nb(*TORCH_CELLS), "model")
    assert chosen.cell == 5 and chosen.source == "model = None"


def test_keras_slice_keeps_in_place_changes_and_drops_fit():
    chosen = select_value(_nb(*KERAS_CELLS), "model")
    sources = [c.source for c in chosen.chunks]
    assert sources == ["units = 6", KERAS_CELLS[3].split("\n")[1], "model.add(layers.Dense(1, activation='sigmoid'))",
                       KERAS_CELLS[3].split("\n")[3]]


def test_a_value_built_from_loaded_data_is_explained_not_run():
    chosen = select_value(_nb(*KERAS_CELLS), "big")
    assert chosen.notes[0].startswith("`X_train` comes from the cell starting `X_train, Y_train = load_dataset()`, "
                                      "line 1 (`X_train, Y_train = load_dataset()`), which calls `load_dataset(...)`")


def test_a_value_only_in_a_loop_is_explained():
    chosen = select_value(_nb("import torch", "for i in range(3):\n    model = i"), "model")
    assert chosen.problem.startswith("`model` is only assigned inside a `for` loop (the cell starting "
                                     "`for i in range(3):`, line 1)")


def test_the_walk_is_linear_in_the_notebook():
    """A chain of 3,000 assignments, each reading the one before: every statement is
    visited once (a quadratic walk would take minutes here)."""
    cells = ["x0 = 1"] + [f"x{i} = x{i - 1} + 1\ntrain(x{i})" for i in range(1, 3000)]
    chosen = select_value(_nb(*cells), "x2999")
    assert len(chosen.chunks) == 3000 and chosen.chunks[0].source == "x0 = 1"


def test_the_default_selection_is_unchanged():
    program = extract_program(_nb(*TORCH_CELLS), ["Flatten"])
    assert not any(c.source.startswith(("model = nn", "optimizer = optim")) for c in program.chunks)


@pytest.fixture(scope="module")
def torch_assignment(tmp_path_factory):
    root = tmp_path_factory.mktemp("toplevel_torch")
    (root / "tests").mkdir()
    (root / "reference.py").write_text("")
    (root / "assignment.toml").write_text('name = "toplevel_torch"\nexercises = ["Flatten"]\n'
                                          'reference = "reference.py"\nframework = "torch"\ncall_timeout = 20\n')
    return load_assignment(root)


@pytest.fixture(scope="module")
def torch_submission(tmp_path_factory, torch_assignment, torch_worker):
    path = notebook(Path(tmp_path_factory.mktemp("nb")) / "s.ipynb", *TORCH_CELLS)
    submission = Submission(path, torch_assignment, torch_worker).open()
    yield submission
    submission.close()


@pytest.mark.slow
def test_torch_model_and_optimizer_cross_as_data(torch_submission):
    import torch
    model = torch_submission.variable("model", marker=MARKER, expected="a torch nn.Module")
    kinds = [type(m).__name__ for m in model.modules()]
    assert kinds.count("Conv2d") == 2 and kinds.count("Linear") == 1
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    optimizer = torch_submission.variable("optimizer", marker=MARKER)
    assert isinstance(optimizer, OptimizerValue) and optimizer.class_name == "SGD"
    assert optimizer.get("lr") == pytest.approx(1e-2)
    expect_optimizer(optimizer, cls="SGD", momentum=0.9, nesterov=True,
                     parameters=[tuple(p.shape) for p in model.parameters()])
    assert optimizer.owners[0] == "model.0.weight"
    assert torch_submission.variable("channel_2", marker=MARKER) == 4
    # one child built every value of that cell
    assert len(torch_submission.__dict__["_toplevel_values"].channels) == 1
    with pytest.raises(CheckFailed, match="nesterov=False"):
        expect_optimizer(optimizer, nesterov=False)


@pytest.mark.slow
def test_torch_value_errors_name_the_cell(torch_submission):
    with pytest.raises(CheckFailed, match="still None"):
        expect_optimizer(torch_submission.variable("optimizer"))  # the last binding: a placeholder
    with pytest.raises(CheckFailed, match="no cell says"):
        torch_submission.variable("model", marker="a line nobody wrote")


@pytest.fixture(scope="module")
def keras_assignment(tmp_path_factory):
    root = tmp_path_factory.mktemp("toplevel_keras")
    (root / "tests").mkdir()
    (root / "reference.py").write_text("")
    (root / "assignment.toml").write_text('name = "toplevel_keras"\nexercises = ["load_dataset"]\n'
                                          'reference = "reference.py"\ncall_timeout = 20\n')
    return load_assignment(root)


@pytest.mark.slow
def test_keras_model_compiled_not_fitted(tmp_path, keras_assignment, worker):
    path = notebook(tmp_path / "k.ipynb", *KERAS_CELLS)
    submission = Submission(path, keras_assignment, worker).open()
    try:
        model = submission.variable("model", expected="a tf.keras model")
        assert [type(layer).__name__ for layer in model.layers] == ["Dense", "Dense"]
        assert model.layers[0].units == 6
        optimizer = submission.variable("model.optimizer")
        expect_optimizer(optimizer, cls="Adam", learning_rate=0.005)
        assert submission.variable("model.loss") == "binary_crossentropy"
        with pytest.raises(CheckFailed, match="load_dataset"):
            submission.variable("big")
    finally:
        submission.close()


def test_one_cell_is_one_slice_but_each_value_owns_its_statements():
    cells = ("import torch.nn as nn", "units = 3\nlayer = nn.Linear(units, 2)\nmoved = layer.to(device)\nfit(layer)")
    unit = select_value(_nb(*cells), "units", marker="units = 3")
    layer = select_value(_nb(*cells), "layer", marker="units = 3")
    assert [c.source for c in unit.chunks] == [c.source for c in layer.chunks] == \
        ["units = 3", "layer = nn.Linear(units, 2)", "moved = layer.to(device)"]
    assert [c.source for c in unit.own] == ["units = 3"]  # `device` failing is not `units`' failure
    assert [c.source for c in layer.own] == ["units = 3", "layer = nn.Linear(units, 2)"]
