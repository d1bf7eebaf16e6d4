"""`grader export coursera`: the build context carries a Dockerfile with the pinned
dependencies, the grader and the assignment; its entry point, run without Docker on a
folder laid out like Coursera's /shared, writes feedback.json for the part in `partId`."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from grader.assignment.spec import load_assignment
from grader.export import BundleError, register
from grader.export.coursera import parts_of

REPO = Path(__file__).resolve().parent.parent
CONV_BN = REPO / "assignments" / "conv_bn"
SAMPLES = CONV_BN / "samples"
PARTS = '\n[coursera.parts]\nNrmlz = ["standardize", "batchnorm_forward"]\nMdls1 = ["happyModel", "convolutional_model"]\n'


def export(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="grader")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["export", *argv])
    return args.handler(args)


def conv_bn_with(tmp: Path, extra_spec: str) -> Path:
    """conv_bn outside the repository, its reference given by absolute path (so the export
    has to bring it inside the build context and rewrite the spec)."""
    root = tmp / "conv_bn"
    shutil.copytree(CONV_BN / "tests", root / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(CONV_BN / "faces.py", root)
    spec = (CONV_BN / "assignment.toml").read_text()
    spec = spec.replace('reference = "../../reference/conv_bn.py"', f'reference = "{REPO / "reference" / "conv_bn.py"}"')
    (root / "assignment.toml").write_text(spec + extra_spec)
    return root


@pytest.fixture(scope="module")
def context(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("coursera")
    out = tmp / "grader_context"
    assert export("coursera", str(conv_bn_with(tmp, PARTS)), "--out", str(out)) == 0
    return out


def start(context: Path, shared: Path, files: dict[str, bytes], part: str | None) -> subprocess.Popen:
    """The image's ENTRYPOINT, run directly: PYTHONPATH and the working folder as the Dockerfile sets them."""
    (shared / "submission").mkdir(parents=True)
    for name, data in files.items():
        (shared / "submission" / name).write_bytes(data)
    env = dict(os.environ, PYTHONPATH=str(context), GRADER_SHARED_DIR=str(shared), TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("partId", None)
    if part is not None:
        env["partId"] = part
    return subprocess.Popen([sys.executable, "-m", "grader.export.coursera", "--assignment",
                             str(context / "assignments" / "conv_bn")], cwd=context, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def feedback(shared: Path, proc: subprocess.Popen) -> dict:
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, out
    data = json.loads((shared / "feedback.json").read_text())
    assert set(data) == {"fractionalScore", "feedback"}, data
    assert isinstance(data["fractionalScore"], float) and 0.0 <= data["fractionalScore"] <= 1.0
    assert isinstance(data["feedback"], str)
    return data


# ---------------------------------------------------------------- the build context

def test_the_context_has_a_dockerfile_the_pins_and_the_grading_files(context):
    dockerfile = (context / "Dockerfile").read_text()
    assert f"FROM python:{sys.version_info.major}.{sys.version_info.minor}-slim" in dockerfile
    assert "apt-get install -y --no-install-recommends bubblewrap" in dockerfile
    assert "pip install --no-cache-dir -r /grader/requirements.txt" in dockerfile
    assert 'ENTRYPOINT ["python", "-m", "grader.export.coursera", "--assignment", ' \
           '"/grader/assignments/conv_bn"]' in dockerfile
    pins = {name.lower().replace("_", "-"): version for name, version in (
        l.split("==") for l in (context / "requirements.txt").read_text().splitlines() if l and not l.startswith("#"))}
    try:
        tensorflow = metadata.version("tensorflow-cpu")
    except metadata.PackageNotFoundError:  # the instructor's set-up: the full package, same release
        tensorflow = metadata.version("tensorflow")
    assert pins["tensorflow-cpu"] == tensorflow and pins["numpy"] == metadata.version("numpy")
    assert "tensorflow" not in pins and "tf-keras" not in pins  # one TensorFlow in the image
    for path in ("grader/export/coursera.py", "assignments/conv_bn/tests/test_standardize.py",
                 "assignments/conv_bn/faces.py", "assignments/conv_bn/reference/conv_bn.py"):
        assert (context / path).is_file(), path
    assert not list(context.rglob("__pycache__"))
    # The reference lay outside the assignment: it now sits inside, and the spec says so.
    bundled = load_assignment(context / "assignments" / "conv_bn")
    assert bundled.reference == (context / "assignments" / "conv_bn" / "reference" / "conv_bn.py").resolve()
    assert parts_of(bundled) == {"Nrmlz": ["standardize", "batchnorm_forward"],
                                 "Mdls1": ["happyModel", "convolutional_model"]}
    readme = (context / "README.md").read_text()
    assert "coursera_autograder upload" in readme and "Mdls1: happyModel, convolutional_model" in readme


def test_a_part_naming_an_unknown_exercise_is_refused(tmp_path, capsys):
    root = conv_bn_with(tmp_path, '\n[coursera.parts]\nAbCdE = ["happymodel"]\n')
    with pytest.raises(BundleError, match="part 'AbCdE' names 'happymodel'"):
        parts_of(load_assignment(root))
    assert export("coursera", str(root), "--out", str(tmp_path / "out")) == 1
    assert "part 'AbCdE' names 'happymodel'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


def test_a_non_empty_output_folder_is_refused(tmp_path, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("from another export")
    assert export("coursera", "conv_bn", "--out", str(tmp_path / "out")) == 1
    assert "choose an empty or new folder" in capsys.readouterr().err


def test_help_shows_the_parts_table(capsys):
    parser = argparse.ArgumentParser(prog="grader")
    register(parser.add_subparsers(dest="command"))
    with pytest.raises(SystemExit):
        parser.parse_args(["export", "coursera", "--help"])
    text = capsys.readouterr().out
    for phrase in ("Dockerfile", "/shared/submission/", "partId", "/shared/feedback.json", "[coursera.parts]"):
        assert phrase in text


# ---------------------------------------------------------------- the entry point

@pytest.mark.slow
def test_each_part_is_graded_on_its_own_exercises(context, tmp_path):
    runs = {"Nrmlz": ("correct", tmp_path / "a"), "Mdls1": ("relu_before_bn", tmp_path / "b")}
    procs = {part: start(context, shared, {"submitted.ipynb": (SAMPLES / f"{sample}.ipynb").read_bytes()}, part)
             for part, (sample, shared) in runs.items()}
    normalize = feedback(tmp_path / "a", procs["Nrmlz"])
    models = feedback(tmp_path / "b", procs["Mdls1"])

    assert normalize["fractionalScore"] == 1.0
    assert "standardize · values on new data" in normalize["feedback"]
    assert "happyModel" not in normalize["feedback"]  # another part's exercise
    # Its hidden test counts (the score is 9 / 9) but is not shown in detail.
    assert "batchnorm_forward · other ranks and eps" in normalize["feedback"]
    assert "Hidden tests also count toward your final grade" in normalize["feedback"]

    assert models["fractionalScore"] == 0.5  # convolutional_model 7 of 7, happyModel 0 of 7
    assert "ReLU comes before BatchNormalization" in models["feedback"]
    assert "standardize" not in models["feedback"]


def test_unusable_submissions_and_unknown_parts_get_zero_and_an_explanation(context, tmp_path):
    cases = {
        "corrupt": ({"submitted.ipynb": b'{"nbformat": 4, "cells": ['}, "Mdls1", "ends in the middle of the JSON"),
        "empty": ({}, "Mdls1", "no Jupyter notebook (.ipynb) was found in your submission (no files at all)"),
        "part": ({"submitted.ipynb": (SAMPLES / "correct.ipynb").read_bytes()}, "XXXXX",
                 "This grader does not know part 'XXXXX' (known parts: Mdls1, Nrmlz)"),
    }
    procs = {name: start(context, tmp_path / name, files, part) for name, (files, part, _) in cases.items()}
    for name, (_, _, says) in cases.items():
        data = feedback(tmp_path / name, procs[name])
        assert data["fractionalScore"] == 0.0, name
        assert says in data["feedback"], (name, data["feedback"])


# ---------------------------------------------------------------- a PyTorch assignment

TORCH_SAMPLES = REPO / "assignments" / "conv_bn_torch" / "samples"


@pytest.fixture(scope="module")
def torch_context(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("coursera-torch") / "grader_context"
    assert export("coursera", "conv_bn_torch", "--out", str(out)) == 0
    return out


def test_a_torch_context_installs_torch_s_cpu_build_and_no_tensorflow(torch_context):
    requirements = (torch_context / "requirements.txt").read_text()
    pins = {name.lower().replace("_", "-"): version for name, version in (
        l.split("==") for l in requirements.splitlines() if l and not l.startswith(("#", "-")))}
    assert pins["torch"] == metadata.version("torch").split("+")[0] + "+cpu"
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in requirements.splitlines()
    assert not set(pins) & {"tensorflow", "tensorflow-cpu", "tf-keras", "keras"}, sorted(pins)
    dockerfile = (torch_context / "Dockerfile").read_text()
    assert "https://download.pytorch.org/whl/cpu" in dockerfile  # why pip reads a second index
    assert "pip install --no-cache-dir -r /grader/requirements.txt" in dockerfile
    assert '"/grader/assignments/conv_bn_torch"]' in dockerfile
    for path in ("assignments/conv_bn_torch/tests/test_torch_happy_model.py", "reference/conv_bn_torch.py",
                 "assignments/conv_bn/faces.py"):
        assert (torch_context / path).is_file(), path
    assert "No [coursera] parts table: each part id must be an exercise's name." in \
        (torch_context / "README.md").read_text()


@pytest.mark.slow
def test_a_torch_part_is_graded_without_importing_tensorflow(torch_context, tmp_path):
    """The image's entry point on conv_bn_torch, part by exercise name (no parts table). The
    image holds no TensorFlow; here a `tensorflow` that fails on import stands first on the
    path (the grading process's, and so the sandbox worker's, which inherits it), so any
    import of it on the way would turn into a grader failure instead of a grade."""
    blocked = tmp_path / "no_tensorflow"
    for name in ("tensorflow", "tf_keras", "keras"):
        (blocked / name).mkdir(parents=True)
        (blocked / name / "__init__.py").write_text(f"raise ImportError('{name} is not in a torch image')\n")
    runs = {"happy_model": ("relu_before_bn", tmp_path / "a"), "standardize": ("channels_last_axes", tmp_path / "b")}
    procs = {}
    for part, (sample, shared) in runs.items():
        (shared / "submission").mkdir(parents=True)
        (shared / "submission" / "submitted.ipynb").write_bytes((TORCH_SAMPLES / f"{sample}.ipynb").read_bytes())
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(blocked), str(torch_context)]),
                   GRADER_SHARED_DIR=str(shared), partId=part)
        procs[part] = subprocess.Popen([sys.executable, "-m", "grader.export.coursera", "--assignment",
                                        str(torch_context / "assignments" / "conv_bn_torch")], cwd=torch_context,
                                       env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    happy = feedback(tmp_path / "a", procs["happy_model"])
    standardize = feedback(tmp_path / "b", procs["standardize"])
    assert happy["fractionalScore"] == 0.0, happy["feedback"]  # layer order 0 / 4, outputs not run 0 / 3
    assert "BatchNorm2d" in happy["feedback"] and "BatchNormalization" not in happy["feedback"]
    assert "not a problem with your notebook" not in happy["feedback"]  # graded, not a grader failure
    assert "standardize" not in happy["feedback"]  # another part's exercise
    assert standardize["fractionalScore"] < 1.0 and "happy_model" not in standardize["feedback"]
    assert "axis" in standardize["feedback"], standardize["feedback"]
