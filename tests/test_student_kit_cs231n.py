"""cs231n_pytorch's student kit: course-layout notebooks (no tags, models built at the top
level of a training cell), reference functions that take and return tensors, and an
nn.Module class exercise.

The kit records the reference's answers for the visible tests' fixed inputs: tensors as
arrays read back as tensors, modules as layer graph and state arrays. Graded with the kit,
the samples get the full grader's visible results; the leak scan finds nothing that
computes the reference's scores or builds its modules. The Jupyter kernel path of a torch
kit is covered by tests/test_student_kit_torch.py (same kit machinery, same worker).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "assignments" / "cs231n_pytorch" / "samples"
GRADER = str(Path(sys.executable).with_name("grader"))
VISIBLE_POINTS = 14  # scores 2, layers 3, initialization 3, Sequential model 3, optimizer 3
# Importing TensorFlow anywhere in a torch check fails it: this stands first on the path.
NO_TENSORFLOW = "raise ImportError('a PyTorch self-check imported TensorFlow')\n"


@pytest.fixture(scope="module")
def assignment():
    from grader.assignment.spec import load_assignment
    return load_assignment("cs231n_pytorch")


@pytest.fixture(scope="module")
def kit(tmp_path_factory, assignment):
    """Recorded on the master alone: every visible test calls the reference on inputs fixed
    in its code, so what the samples would have asked is recorded too."""
    from grader.kit.export import build_kit

    out = tmp_path_factory.mktemp("kit") / "cs231n_kit"
    return build_kit(assignment, out, samples=False)


@pytest.fixture(scope="module")
def graded(kit, assignment, torch_worker):
    """Each sample graded by the kit and by the full grader (visible tests only), once."""
    from grader.run.grading import grade_submission
    from grader.assignment.spec import load_assignment

    kit_spec = load_assignment(kit.spec_dir)
    done: dict[str, tuple] = {}

    def grade(name: str):
        if name not in done:
            sample = SAMPLES / f"{name}.ipynb"
            done[name] = (grade_submission(sample, kit_spec, torch_worker, include_hidden=False),
                          grade_submission(sample, assignment, torch_worker, include_hidden=False))
        return done[name]
    return grade


def _module(path: Path):
    """A file's module under a name of its own: `conftest` is taken by this suite's."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"_cs231n_kit_{path.parent.name}_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _failed(result) -> dict[str, str]:
    return {t.nodeid.split("::")[-1]: t.diagnosis for t in result.tests if t.score < t.max_score}


# ---------------------------------------------------------------- the kit itself

def test_kit_ships_visible_tests_and_recordings_only(kit, assignment, tmp_path):
    from grader.kit import safety
    from grader.kit.export import leaks
    from grader.kit.leak_forms import rebuildable_models
    from grader.assignment.spec import load_assignment

    spec = load_assignment(kit.spec_dir)
    assert spec.framework == "torch"
    shipped = {t.split("/")[-1] for t in kit.tests}
    assert shipped == {"test_cs231n_three_layer_convnet.py::test_scores", "test_cs231n_convnet_module.py::test_layers",
                       "test_cs231n_convnet_module.py::test_initialization",
                       "test_cs231n_sequential.py::test_sequential_model",
                       "test_cs231n_sequential.py::test_optimizer"}, shipped
    dropped = {t.split("/")[-1] for t in kit.dropped}
    assert dropped == {"test_cs231n_three_layer_convnet.py::test_scores_other_sizes",
                       "test_cs231n_convnet_module.py::test_scores",
                       "test_cs231n_sequential.py::test_sequential_scores"}, dropped
    files = {p.suffix for p in kit.root.rglob("*") if p.is_file()}
    assert not files & {".pt", ".pth", ".pkl", ".pickle", ".ckpt"}, files
    assert not (kit.root / "reference").exists()
    assert rebuildable_models(kit.root) == []
    hidden = [t for t in safety.collect(assignment) if not t.visible]
    assert leaks(kit.root, assignment, hidden) == []  # the hidden module test_scores shares a visible one's name
    copy = tmp_path / "kit"
    shutil.copytree(kit.root, copy)
    (copy / "notes.py").write_text("# see test_sequential_scores\n", encoding="utf-8")
    assert leaks(copy, assignment, hidden) == ["notes.py names hidden test `test_sequential_scores`"]
    tests_text = "".join(p.read_text(encoding="utf-8") for p in (kit.spec_dir / "tests").glob("*.py"))
    assert "test_scores_other_sizes" not in tests_text and "hidden_rng.integers(4, 9" not in tests_text


def test_recorded_tensor_answers_come_back_as_tensors_and_nothing_else_is_answered(kit):
    import torch

    from grader.kit.replay import NotRecorded, Replay

    random_params = _module(kit.spec_dir / "tests" / "conftest.py").random_params  # the kit's own copy
    rng = np.random.default_rng(231)  # test_scores' inputs, drawn as the test draws them
    params = random_params(int(rng.integers(2**31)), 3, 6, 9, 32, 32, 10)
    x = rng.normal(0.0, 1.0, size=(4, 3, 32, 32)).astype(np.float32)
    replay = Replay.open(kit.spec_dir / "answers" / "answers.json")
    scores = replay.three_layer_convnet(torch.from_numpy(x), [torch.from_numpy(p) for p in params])
    assert isinstance(scores, torch.Tensor) and tuple(scores.shape) == (4, 10)
    mistakes = replay.three_layer_convnet_mistakes(torch.from_numpy(x), [torch.from_numpy(p) for p in params])
    assert set(mistakes) == {"no_relu_1", "no_relu_2", "relu_after_fc", "no_biases"}
    assert all(isinstance(v, torch.Tensor) for v in mistakes.values())
    assert not torch.allclose(mistakes["relu_after_fc"], scores)  # the recorded answers differ as they should
    # Other inputs cannot be answered without the solution: the call is named, shapes and all.
    with pytest.raises(NotRecorded, match=r"three_layer_convnet\(a float32 tensor of shape \(2, 3, 32, 32\)"):
        replay.three_layer_convnet(torch.zeros(2, 3, 32, 32), [torch.from_numpy(p) for p in params])


def test_no_function_in_the_kit_computes_the_reference_scores_or_builds_its_modules(kit):
    """The leak scan's answering check, on the recorded tensor answers too: a conftest helper
    that computed three_layer_convnet would be named (the control below proves it can be)."""
    import torch

    from grader.kit.leak_forms import answering_functions, kit_modules

    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(2, 3, 8, 8)).astype(np.float32))
    w = [torch.from_numpy(rng.normal(size=s).astype(np.float32)) for s in [(4, 3, 5, 5), (4,), (5, 4, 3, 3), (5,),
                                                                              (5 * 64, 6), (6,)]]
    reference = _module(ROOT / "reference" / "cs231n_pytorch.py")
    calls = [("three_layer_convnet", (x, w), {}, reference.three_layer_convnet(x, w))]
    assert answering_functions(calls, kit_modules(kit.root)) == []
    found = answering_functions(calls, [reference])  # the control: the reference module answers
    assert any("three_layer_convnet" in f for f in found), found


# ---------------------------------------------------------------- grading with the kit

def test_the_correct_sample_gets_full_visible_marks_from_the_kit(graded):
    from grader.kit.export import comparable

    mine, full = graded("correct")
    assert not mine.errors, mine.errors
    assert comparable(mine) == comparable(full)
    visible = [t for t in mine.tests if t.visibility.value == "visible"]
    assert sum(t.score for t in visible) == sum(t.max_score for t in visible) == VISIBLE_POINTS, \
        [(t.name, t.message) for t in visible if t.score < t.max_score]


@pytest.mark.parametrize("sample, test, diagnosis", [
    ("relu_after_fc", "test_scores", "relu_after_fc"),
    ("linear_no_transpose", "test_scores", "linear_without_transpose"),
    ("module_relu_missing", "test_layers", "relu_missing"),
    ("sequential_hardcoded_channels", "test_sequential_model", "wrong_linear_input"),
])
def test_a_mistake_gets_its_diagnosis_from_the_kit_as_from_the_full_grader(graded, sample, test, diagnosis):
    from grader.kit.export import comparable

    mine, full = graded(sample)
    assert not mine.errors, mine.errors
    assert comparable(mine) == comparable(full)
    assert _failed(mine).get(test) == diagnosis, _failed(mine)


@pytest.mark.slow
def test_grader_check_on_a_saved_course_notebook(kit, tmp_path):
    """`grader check` beside the kit, as a student runs it: a torch worker, no TensorFlow,
    the mistake named, then the fix saved and full visible marks."""
    folder = tmp_path / "kit"
    shutil.copytree(kit.root, folder)
    stub = tmp_path / "no_tensorflow"
    stub.mkdir()
    (stub / "tensorflow.py").write_text(NO_TENSORFLOW, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(stub)}
    shutil.copyfile(SAMPLES / "relu_after_fc.ipynb", folder / "mine.ipynb")
    done = subprocess.run([GRADER, "check", "mine.ipynb"], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=900)
    out = " ".join((done.stdout + done.stderr).split())
    assert "imported TensorFlow" not in out, out
    assert f"visible tests: {VISIBLE_POINTS - 2} / {VISIBLE_POINTS} points" in out, out
    assert "scores go through a ReLU" in out, out

    shutil.copyfile(SAMPLES / "correct.ipynb", folder / "mine.ipynb")
    done = subprocess.run([GRADER, "check", "mine.ipynb"], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=900)
    out = " ".join((done.stdout + done.stderr).split())
    assert f"visible tests: {VISIBLE_POINTS} / {VISIBLE_POINTS} points" in out, out
