"""`grader new NAME`: the folder it creates is a working assignment, proven through the
command line: created, then `grader validate-assignment` passes on it as it is (the
reference scores full marks, the template zero, the samples what they declare, and the
helpers shared through tests/conftest.py work on the real grading path)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from grader.authoring import scaffold
from grader.assignment.spec import load_assignment

REPO = Path(__file__).resolve().parent.parent


def grader(*argv: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    return subprocess.run([sys.executable, "-m", "grader", *argv], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=600)


def test_created_folder_holds_every_part_and_loads(tmp_path):
    root = scaffold.create("week1", tmp_path)
    for part in ("assignment.toml", "reference.py", "README.md", "tests/conftest.py",
                 "tests/test_week1_normalize_rows.py", "tests/test_week1_small_model.py", "source/week1.py",
                 "release/week1.ipynb", "samples/solved.ipynb", "samples/no_batchnorm.ipynb"):
        assert (root / part).is_file(), part
    a = load_assignment(root)
    assert (a.name, a.exercises, a.total_points) == ("week1", ("normalize_rows", "small_model"), 8)
    assert a.secret.startswith("week1-")
    assert load_assignment(scaffold.create("week2", tmp_path)).secret != a.secret  # each its own secret
    release = (root / "release" / "week1.ipynb").read_text()
    assert "raise NotImplementedError()" in release and "GlobalAveragePooling2D()(x)" not in release


def test_bad_names_and_occupied_folders_are_usage_errors(tmp_path, capsys):
    # The command line's own entry point, in this process: five interpreter start-ups fewer
    # (`python -m grader` itself is run by the other tests here).
    from grader.cli import main
    for bad in ("9lives", "my-hw", "a b", ""):
        code = main(["new", bad, "--dir", str(tmp_path)])
        stderr = capsys.readouterr().err
        assert code == 2 and "cannot name an assignment" in stderr, (bad, stderr)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    code = main(["new", "taken", "--dir", str(tmp_path)])
    assert code == 2 and "already exists and is not empty" in capsys.readouterr().err
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"


def test_default_place_is_assignments_when_run_from_a_repository_top(tmp_path):
    (tmp_path / "assignments").mkdir()
    done = grader("new", "hw", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "assignments" / "hw" / "assignment.toml").is_file()
    assert "grader validate-assignment assignments/hw" in done.stdout


@pytest.mark.slow
def test_new_assignment_passes_validate_assignment_as_created(tmp_path):
    done = grader("new", "intro_cnn", "--dir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    root = tmp_path / "intro_cnn"
    done = grader("validate-assignment", str(root))
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "✘" not in out and "–" not in out, out
    assert "✔ the reference solution (source/intro_cnn.py) scores full marks: 8 / 8" in out
    assert "✔ the untouched template (release/intro_cnn.ipynb) scores zero: 0 / 8" in out
    assert "✔ release/intro_cnn.ipynb is the template made from source/intro_cnn.py" in out
    assert "✔ the points add up to total_points = 8: 8 over 4 tests, 2 hidden" in out
    assert "✔ the samples score what they declare: 2 of 2" in out
    assert out.rstrip().endswith("checks passed: intro_cnn is ready to release.")


def test_framework_torch_creates_a_pytorch_assignment(tmp_path):
    from grader.cli import main
    assert main(["new", "week1_torch", "--framework", "torch", "--dir", str(tmp_path)]) == 0
    root = tmp_path / "week1_torch"
    a = load_assignment(root)
    assert (a.framework, a.exercises, a.total_points) == ("torch", ("normalize_rows", "SmallModel"), 8)
    assert (root / "tests" / "test_week1_torch_smallmodel.py").is_file()
    reference = (root / "reference.py").read_text()
    assert "class SmallModel(nn.Module)" in reference and "tensorflow" not in reference
    tests = (root / "tests" / "test_week1_torch_smallmodel.py").read_text()
    assert 'submission.model("SmallModel", expected="a torch nn.Module")' in tests
    release = (root / "release" / "week1_torch.ipynb").read_text()
    assert "class SmallModel(nn.Module)" in release and "raise NotImplementedError()" in release
    assert "nn.BatchNorm2d(4)\\n" not in release  # the solution stays in the master
    assert "tensorflow" not in release
    with pytest.raises(scaffold.ScaffoldError, match="--framework must be one of keras, torch, not 'jax'"):
        scaffold.create("week2", tmp_path, framework="jax")
    assert not (tmp_path / "week2").exists()


@pytest.mark.slow
def test_new_torch_assignment_passes_validate_assignment_as_created(tmp_path):
    """The PyTorch scaffold graded for real: a torch sandbox worker, the student's nn.Module
    rebuilt and compared, the sample without BatchNorm2d losing exactly the model's points."""
    done = grader("new", "intro_torch", "--framework", "torch", "--dir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    root = tmp_path / "intro_torch"
    done = grader("validate-assignment", str(root))
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "✘" not in out and "–" not in out, out
    assert "✔ the reference solution (source/intro_torch.py) scores full marks: 8 / 8" in out
    assert "✔ the untouched template (release/intro_torch.ipynb) scores zero: 0 / 8" in out
    assert "✔ the samples score what they declare: 2 of 2" in out
    assert out.rstrip().endswith("checks passed: intro_torch is ready to release.")
