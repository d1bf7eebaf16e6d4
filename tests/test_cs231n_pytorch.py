"""cs231n_pytorch on course-layout notebooks: no tags, no grader metadata, CIFAR-10 loaded
through torchvision (absent here) in cells that never run, and training cells that would
fail or run for long. Each notebook holds one mistake per exercise, so one grading
checks three messages; a real torch worker grades them end to end.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import nbformat
import pytest

from grader.assignment.spec import load_assignment
from grader.run.grading import grade_submission

ROOT = Path(__file__).resolve().parents[1] / "assignments" / "cs231n_pytorch"


def _build():
    spec = importlib.util.spec_from_file_location("cs231n_pytorch_build", ROOT / "build.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


BUILD = _build()
SAMPLES = {s.name: s for s in BUILD.SAMPLES}


def _course_notebook(*mistakes: str, edits=()):
    _, nb = BUILD.solved()
    for name in mistakes:
        nb = SAMPLES[name].make(nb)
    for edit in edits:
        nb = edit(nb)
    nb = BUILD.course_notebook(nb)
    # Real notebooks have the student's Sequential model in a cell of its own below the
    # template's TODO, and a Part V model of their own after it.
    nb.cells[-1].source = ("model = nn.Sequential(Flatten(), nn.Linear(3 * 32 * 32, 100), nn.ReLU(), "
                           "nn.Linear(100, 10))\noptimizer = optim.Adam(model.parameters(), lr=1e-3)\n"
                           "train_part34(model, optimizer, epochs=10)")
    return nb


@pytest.fixture(scope="module")
def assignment():
    return load_assignment("cs231n_pytorch")


@pytest.fixture(scope="module")
def graded(tmp_path_factory, assignment, torch_worker):
    folder = tmp_path_factory.mktemp("cs231n")
    done: dict[tuple, object] = {}

    def grade(*mistakes: str):
        if mistakes not in done:
            path = folder / (("_".join(mistakes) or "correct") + ".ipynb")
            nbformat.write(_course_notebook(*mistakes), path)
            done[mistakes] = grade_submission(path, assignment, torch_worker)
        return done[mistakes]
    return grade


def _diagnoses(result) -> dict[str, str]:
    return {t.name: t.diagnosis for t in result.tests if t.score < t.max_score}


def test_course_notebook_without_tags_gets_full_marks(graded):
    result = graded()
    assert (result.score, result.max_score) == (20, 20), [(t.name, t.message) for t in result.tests if t.score < t.max_score]
    assert any("torchvision" in note for note in result.notes)  # for the instructor only
    assert not any("torchvision" in t.message for t in result.tests)


@pytest.mark.slow
def test_one_mistake_per_exercise_each_named(graded):
    result = graded("linear_no_transpose", "kaiming_partial", "no_nesterov")
    found = _diagnoses(result)
    assert found == {"scores on the notebook's shapes": "linear_without_transpose",
                     "scores with other batch, image, channel and class sizes": "linear_without_transpose",
                     "Kaiming-normal weights and zero biases": "kaiming_partial",
                     "SGD with Nesterov momentum 0.9 over the model's parameters": "wrong_hyperparameter:nesterov"}
    messages = {t.name: t.message + " " + t.hint for t in result.tests}
    assert "nn.Linear" in messages["Kaiming-normal weights and zero biases"]
    assert "nesterov=True" in messages["SGD with Nesterov momentum 0.9 over the model's parameters"]
    assert result.score == 20 - 5 - 3 - 3


@pytest.mark.slow
def test_other_mistakes_each_named(graded):
    result = graded("params_not_used", "hardcoded_classes", "sequential_hardcoded_channels")
    found = _diagnoses(result)
    assert found["scores on the notebook's shapes"] == "params_not_used"
    assert found["layers for other channel counts and num_classes"] == "hardcoded_classes"
    assert found["the nn.Sequential model"] == "wrong_linear_input"
    skipped = [t for t in result.tests if t.name == "Kaiming-normal weights and zero biases"]
    assert skipped and skipped[0].score == 0  # depends on the layers
    assert "optimizer" not in " ".join(found)  # the optimizer is right and keeps its points


@pytest.mark.slow
def test_the_sequential_model_is_checked_with_the_notebooks_channel_counts(tmp_path, assignment, torch_worker):
    """The cell above the TODO gives channel_1 = 32, channel_2 = 16; the tests compare the
    model with the reference at those values (fixed in the tests' code, so a student kit can
    record it). A consistent model with channel_2 = 12 is told to keep the given values."""
    path = tmp_path / "channels.ipynb"
    nbformat.write(_course_notebook(edits=[BUILD._edit("sequential_convnet", "channel_2 = 16", "channel_2 = 12")]),
                   path)
    result = grade_submission(path, assignment, torch_worker)
    failed = [t for t in result.tests if t.score < t.max_score]
    assert [(t.name, t.diagnosis) for t in failed] == [("the nn.Sequential model", "channels_changed"),
                                                        ("the model's scores, with the reference's weights", "")]
    assert "channel_2 = 12" in failed[0].message and "channel_2 = 16" in failed[0].message
    assert result.score == 20 - 3 - 1
