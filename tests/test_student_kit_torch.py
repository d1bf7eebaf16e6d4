"""The student side of a PyTorch assignment: conv_bn_torch's kit, check() in a real Jupyter
kernel, `grader check` on a saved notebook, and the leak scan's PyTorch forms.

The kit holds the reference's modules as data only (layer graph, state arrays, outputs):
nothing in it computes, and nothing in it rebuilds into the reference. A torch kit's checks
start a torch worker and never import TensorFlow."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
from kernel_cells import cell_html, cell_report

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
GRADER = str(Path(sys.executable).with_name("grader"))

HAPPY_MODEL = '''\
def happy_model():
    return nn.Sequential(
        nn.ZeroPad2d(3),
        nn.Conv2d(3, 32, kernel_size=7, bias=False),
        nn.{second},
        nn.{third},
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 32 * 32, 1),
        nn.Sigmoid(),
    )'''
RIGHT = HAPPY_MODEL.format(second="BatchNorm2d(32)", third="ReLU()")
RELU_FIRST = HAPPY_MODEL.format(second="ReLU()", third="BatchNorm2d(32)")
IMPORTS = "import numpy as np\nimport torch\nfrom torch import nn"
# Importing TensorFlow anywhere in a torch check fails it: this stands first on the path.
NO_TENSORFLOW = "raise ImportError('a PyTorch self-check imported TensorFlow')\n"


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    """conv_bn_torch's kit, recorded on the master (the samples are compared by the CLI's
    export, which `test_kit_export_compares_every_sample` leaves to a slow run)."""
    from grader.assignment.spec import load_assignment
    from grader.kit.export import build_kit

    out = tmp_path_factory.mktemp("kit") / "conv_bn_torch_kit"
    return build_kit(load_assignment("conv_bn_torch"), out, samples=False)


def _student_notebook(folder: Path, happy_model: str, name: str = "student.ipynb") -> Path:
    path = folder / name
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(IMPORTS),
        nbformat.v4.new_code_cell(happy_model, metadata={"tags": ["happy_model"]}),
    ])
    nbformat.write(nb, path)
    return path


def _no_tensorflow_path(folder: Path) -> str:
    stub = folder / "no_tensorflow"
    stub.mkdir(exist_ok=True)
    (stub / "tensorflow.py").write_text(NO_TENSORFLOW, encoding="utf-8")
    return str(stub)


# ---------------------------------------------------------------- the kit itself

def test_kit_records_modules_as_data_that_computes_nothing(kit):
    from grader.assignment.spec import load_assignment
    from grader.kit.export import leaks
    from grader.kit.leak_forms import rebuildable_models
    from grader.kit.models import NotRecordedOutput
    from grader.kit.replay import Replay
    from grader.kit.torch_models import TorchRecordedModel

    spec = load_assignment(kit.spec_dir)
    assert spec.framework == "torch"  # the kit's worker preloads torch, its children get the torch probe
    assert any("test_other_image_size_and_classes" in t for t in kit.dropped)  # hidden: not shipped
    shipped = {p.suffix for p in kit.root.rglob("*") if p.is_file()}
    assert not shipped & {".pt", ".pth", ".pkl", ".pickle", ".ckpt"}
    assert rebuildable_models(kit.root) == []
    readme = (kit.root / "README.md").read_text(encoding="utf-8")
    assert '[torch,student]"' in readme and "TensorFlow" not in readme  # what a torch kit installs
    assert leaks(kit.root, load_assignment("conv_bn_torch"), []) == []

    replay = Replay.open(kit.spec_dir / "answers" / "answers.json")
    recorded = replay.happy_model()
    assert isinstance(recorded, TorchRecordedModel)
    import torch
    assert not isinstance(recorded, torch.nn.Module)
    assert any(node.spec.kind == "BatchNormalization" for node in recorded.graph.nodes)
    # Weights are there to be copied into the student's module; outputs only for the batches recorded.
    conv = next(n.layer for n in recorded.graph.nodes if n.spec.kind.startswith("Conv"))
    assert tuple(conv.state_dict()["weight"].shape) == (32, 3, 7, 7)
    with pytest.raises(NotRecordedOutput):
        recorded(np.zeros((1, 3, 64, 64), np.float32))
    # The class exercise is answered like a function, by a recording too.
    assert isinstance(replay.ConvolutionalModel(), TorchRecordedModel)


def test_kit_grades_a_mistake_like_the_full_grader(kit, tmp_path):
    """The kit's recorded reference and the full grader's live one give the same feedback."""
    from grader.assignment.spec import load_assignment
    from grader.run.grading import grade_submission
    from grader.kit.export import comparable
    from grader.frameworks.sandbox_side import sandbox_side
    from grader.sandbox.client import Worker

    full_spec = load_assignment("conv_bn_torch")
    kit_spec = load_assignment(kit.spec_dir)
    sample = ROOT / "assignments" / "conv_bn_torch" / "samples" / "relu_before_bn.ipynb"
    with Worker(framework=sandbox_side("torch")) as worker:
        mine = grade_submission(sample, kit_spec, worker, include_hidden=False)
        full = grade_submission(sample, full_spec, worker, include_hidden=False)
    assert not mine.errors
    assert comparable(mine) == comparable(full)
    layer = [t for t in mine.tests if t.exercise == "happy_model" and t.status.value == "failed"]
    assert layer and "BatchNorm2d" in layer[0].message and "ReLU" in layer[0].message


# ---------------------------------------------------------------- the leak scan's PyTorch forms

def test_leak_scan_finds_module_descriptions_saved_modules_and_module_builders(tmp_path):
    import torch
    from torch import nn

    from grader.frameworks.torch.child.describe import describe
    from grader.kit.leak_forms import answering_functions, kit_modules, rebuildable_models
    from grader.kit.torch_models import TorchLiveModel

    reference = nn.Sequential(nn.ZeroPad2d(3), nn.Conv2d(3, 32, 7, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
                              nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 32 * 32, 1), nn.Sigmoid())
    folder = tmp_path / "kit"
    (folder / "answers").mkdir(parents=True)
    arrays: list = []
    description = describe(reference, lambda a: arrays.append(a) or len(arrays) - 1)
    (folder / "answers" / "model.json").write_text(json.dumps({"recorded": description}), encoding="utf-8")
    torch.save(reference.state_dict(), folder / "weights.pt")
    found = rebuildable_models(folder)
    assert any("answers/model.json" in f and "PyTorch module description" in f for f in found), found
    assert any("weights.pt" in f and "saved model" in f for f in found), found

    (folder / "answers" / "model.json").unlink()
    (folder / "weights.pt").unlink()
    (folder / "helpers.py").write_text(
        "from torch import nn\n\n"
        "def make_model():\n    return nn.Sequential(" + ", ".join([
            "nn.ZeroPad2d(3)", "nn.Conv2d(3, 32, 7, bias=False)", "nn.BatchNorm2d(32)", "nn.ReLU()",
            "nn.MaxPool2d(2)", "nn.Flatten()", "nn.Linear(32 * 32 * 32, 1)", "nn.Sigmoid()"]) + ")\n\n"
        "def wrong_model():\n    return nn.Sequential(" + ", ".join([
            "nn.ZeroPad2d(3)", "nn.Conv2d(3, 32, 7, bias=False)", "nn.ReLU()", "nn.BatchNorm2d(32)",
            "nn.MaxPool2d(2)", "nn.Flatten()", "nn.Linear(32 * 32 * 32, 1)", "nn.Sigmoid()"]) + ")\n",
        encoding="utf-8")
    assert rebuildable_models(folder) == []  # plain code: the answering check is what finds it
    calls = [("happy_model", (), {}, TorchLiveModel(reference))]
    found = answering_functions(calls, kit_modules(folder))
    assert len(found) == 1 and "make_model" in found[0] and "reference.happy_model" in found[0], found


@pytest.mark.slow
def test_kit_export_refuses_a_support_file_that_builds_the_reference(tmp_path):
    """The whole export, on a copy of conv_bn_torch whose support file builds the reference
    model: nothing is written, and the refusal names the function."""
    from grader.assignment.spec import load_assignment
    from grader.kit.export import KitError, build_kit

    copy = tmp_path / "conv_bn_torch"
    shutil.copytree(ROOT / "assignments" / "conv_bn_torch", copy, ignore=shutil.ignore_patterns("samples"))
    reference = (ROOT / "reference" / "conv_bn_torch.py").read_text(encoding="utf-8")
    (copy / "reference.py").write_text(reference, encoding="utf-8")
    shutil.copyfile(ROOT / "assignments" / "conv_bn" / "faces.py", copy / "faces.py")
    (copy / "model_zoo.py").write_text(
        "from torch import nn\n\n\ndef smiling_classifier():\n    return nn.Sequential(nn.ZeroPad2d(3), "
        "nn.Conv2d(3, 32, kernel_size=7, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2), "
        "nn.Flatten(), nn.Linear(32 * 32 * 32, 1), nn.Sigmoid())\n", encoding="utf-8")
    toml = (copy / "assignment.toml").read_text(encoding="utf-8")
    toml = toml.replace('reference = "../../reference/conv_bn_torch.py"', 'reference = "reference.py"')
    toml = toml.replace('support = ["../conv_bn/faces.py"]', 'support = ["faces.py", "model_zoo.py"]')
    (copy / "assignment.toml").write_text(toml, encoding="utf-8")
    out = tmp_path / "kit"
    with pytest.raises(KitError) as refused:
        build_kit(load_assignment(copy), out, samples=False)
    assert "would leak" in str(refused.value) and "smiling_classifier" in str(refused.value)
    assert not out.exists() or not any(out.iterdir())


# ---------------------------------------------------------------- grader check on a saved notebook

def test_grader_check_on_a_saved_torch_notebook(kit, tmp_path):
    """`grader check` finds the kit beside the notebook, starts a torch worker and never
    imports TensorFlow; the feedback names PyTorch's layers."""
    folder = tmp_path / "kit"
    shutil.copytree(kit.root, folder)
    samples = ROOT / "assignments" / "conv_bn_torch" / "samples"
    shutil.copyfile(samples / "relu_before_bn.ipynb", folder / "mine.ipynb")
    env = {**os.environ, "PYTHONPATH": _no_tensorflow_path(tmp_path)}
    done = subprocess.run([GRADER, "check", "mine.ipynb"], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=900)
    out = " ".join((done.stdout + done.stderr).split())  # the renderer wraps long lines
    assert "imported TensorFlow" not in out and "imports TensorFlow" not in out, out
    assert "visible tests: 14 / 21 points" in out, out
    assert "nn.ReLU comes before nn.BatchNorm2d" in out, out
    assert "nn.Conv2d -> nn.BatchNorm2d -> nn.ReLU" in out, out
    assert "Hidden tests also count" in out, out

    shutil.copyfile(samples / "correct.ipynb", folder / "mine.ipynb")  # the fix, saved this time
    done = subprocess.run([GRADER, "check", "mine.ipynb"], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=900)
    out = done.stdout + done.stderr
    assert "visible tests: 21 / 21 points" in out, out


# ---------------------------------------------------------------- check() in a real Jupyter kernel

REPORT = ("import sys, json, grader.kit.selfcheck as sc\n"
          "print('REPORT', json.dumps({'workers': [list(k) for k in sc.worker_pids()], 'stats': sc.STATS, "
          "'tensorflow': 'tensorflow' in sys.modules}))")


@pytest.mark.slow
def test_check_in_a_kernel_teaches_then_passes_the_fix_run_without_saving(kit, tmp_path):
    from nbclient import NotebookClient

    folder = tmp_path / "kit"
    shutil.copytree(kit.root, folder)
    # The student works in the kit's notebook; the saved file keeps the mistake.
    path = _student_notebook(folder, RELU_FIRST, name=kit.notebook.name)
    check = 'from grader import check\ncheck("happy_model")'
    run = nbformat.read(path, as_version=4)
    run.cells += [
        nbformat.v4.new_code_cell(check),
        nbformat.v4.new_code_cell(REPORT),
        # The student reads the message, fixes the cell and runs it again, without saving:
        nbformat.v4.new_code_cell(RIGHT, metadata={"tags": ["happy_model"]}),
        nbformat.v4.new_code_cell(check),
        nbformat.v4.new_code_cell(REPORT),
    ]
    env = {k: v for k, v in os.environ.items() if k != "GRADER_SELF_CHECK"}
    env["PYTHONPATH"] = _no_tensorflow_path(tmp_path)
    NotebookClient(run, kernel_name="python3", timeout=900,
                   resources={"metadata": {"path": str(folder)}}).execute(env=env)

    first, second = cell_html(run.cells[2]), cell_html(run.cells[5])
    assert "nn.ReLU comes before nn.BatchNorm2d" in first and "nn.BatchNorm2d(32)" in first, first
    assert "visible tests: 0 / 7 points" in first, first
    assert "visible tests: 7 / 7 points" in second, second
    assert (f"checked the code you ran in this kernel; `happy_model` differs from the saved {kit.notebook.name}: "
            "save the notebook before you submit") in second, second
    before, after = cell_report(run.cells[3]), cell_report(run.cells[6])
    assert before["workers"] and all(key[-1] == "torch" for key in before["workers"]), before
    assert before["workers"] == after["workers"] and after["stats"]["workers_started"] == 1, after
    assert before["tensorflow"] is False and after["tensorflow"] is False
