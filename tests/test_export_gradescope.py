"""`grader export gradescope`: the zip carries everything Gradescope needs, and its
run_autograder, run in a folder laid out like Gradescope's, writes a well-formed results.json
for a correct, a wrong, a corrupt, a missing and an ambiguous submission."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from grader.export import register
from wheelhouse import wheelhouse

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "assignments" / "conv_bn" / "samples"
VENV_BIN = Path(sys.executable).parent
TEST_FIELDS = {"score": float, "max_score": float, "status": str, "name": str, "number": str, "output": str,
               "output_format": str, "tags": list, "visibility": str}


def export(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="grader")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["export", *argv])
    return args.handler(args)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gradescope") / "autograder.zip"
    assert export("gradescope", "conv_bn", "--out", str(out)) == 0
    return out


def unpack(bundle: Path, root: Path, submission: dict[str, bytes]) -> Path:
    """/autograder as Gradescope prepares it: source/ (the zip, modes kept as unzip does),
    run_autograder copied to the top, submission/ holding what the student uploaded."""
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(root / "source")
        for info in zf.infolist():
            os.chmod(root / "source" / info.filename, (info.external_attr >> 16) & 0o777)
    shutil.copy2(root / "source" / "run_autograder", root / "run_autograder")
    (root / "submission").mkdir()
    for name, data in submission.items():
        (root / "submission" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "submission" / name).write_bytes(data)
    return root


def start(root: Path) -> subprocess.Popen:
    # The venv's python first on PATH stands in for the set-up's virtual environment.
    env = dict(os.environ, GRADER_AUTOGRADER_ROOT=str(root), TF_CPP_MIN_LOG_LEVEL="3",
               PATH=os.pathsep.join([str(VENV_BIN), os.environ.get("PATH", "")]))
    env.pop("PYTHONPATH", None)
    return subprocess.Popen([str(root / "run_autograder")], cwd="/", env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def finish(root: Path, proc: subprocess.Popen) -> tuple[dict, str]:
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, out
    return json.loads((root / "results" / "results.json").read_text()), out


def well_formed(results: dict) -> None:
    assert isinstance(results["score"], float) and isinstance(results["execution_time"], int)
    assert isinstance(results["output"], str) and results["output_format"] == "md"
    assert results["visibility"] == "visible" and results["stdout_visibility"] == "hidden"
    for test in results["tests"]:
        assert set(TEST_FIELDS) <= set(test), test
        for key, kind in TEST_FIELDS.items():
            assert isinstance(test[key], kind), (key, test)
        assert test["status"] in ("passed", "failed")
        assert test["visibility"] in ("hidden", "after_due_date", "after_published", "visible")
        assert test["output_format"] in ("text", "html", "simple_format", "md", "ansi")


# ---------------------------------------------------------------- the bundle itself

def test_the_zip_holds_the_grader_the_assignment_and_its_reference_only(bundle):
    with zipfile.ZipFile(bundle) as zf:
        names = set(zf.namelist())
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in zf.infolist()}
    assert {"setup.sh", "run_autograder", "requirements.txt", "grader/__init__.py", "grader/run/plugin.py",
            "grader/sandbox/worker.py", "grader/export/gradescope.py", "assignments/conv_bn/assignment.toml",
            "assignments/conv_bn/faces.py", "assignments/conv_bn/tests/test_happy_model.py",
            "reference/conv_bn.py"} <= names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    # No copy of the solutions beyond the reference, nothing student-facing.
    assert not [n for n in names if n.startswith(("assignments/conv_bn/source", "assignments/conv_bn/samples",
                                                  "assignments/conv_bn/release"))]
    assert modes["setup.sh"] == modes["run_autograder"] == 0o755 and modes["requirements.txt"] == 0o644


def tensorflow_version() -> str:
    """tensorflow-cpu's version, or (the instructor's set-up holds only the full package) the
    installed tensorflow's: one release, either distribution."""
    try:
        return metadata.version("tensorflow-cpu")
    except metadata.PackageNotFoundError:
        return metadata.version("tensorflow")


def pins_of(text: str) -> dict[str, str]:
    lines = [l for l in text.splitlines() if l and not l.startswith(("#", "-"))]  # comments, pip options
    return {name.lower().replace("_", "-"): version for name, version in (line.split("==") for line in lines)}


def test_requirements_are_pinned_to_the_versions_installed_here(bundle):
    with zipfile.ZipFile(bundle) as zf:
        text = zf.read("requirements.txt").decode()
    pins = pins_of(text)
    assert pins["tensorflow-cpu"] == tensorflow_version()
    for dist in ("numpy", "nbformat", "pytest", "keras", "protobuf", "pyseccomp"):
        assert pins[dist] == metadata.version(dist), dist
    assert not [n for n in pins if n in ("nbclient", "ipykernel", "grader")]  # dev extras, ourselves
    # One TensorFlow: a Keras 3 assignment needs neither the full package nor tf-keras.
    assert "tensorflow" not in pins and "tf-keras" not in pins, sorted(pins)
    assert "torch" not in pins and "--extra-index-url" not in text  # torch is the torch extra's alone


def test_a_keras_2_bundle_pins_the_full_tensorflow_and_tf_keras_only(tmp_path):
    out = tmp_path / "keras2.zip"
    assert export("gradescope", "dls_c4w1a2", "--out", str(out)) == 0
    with zipfile.ZipFile(out) as zf:
        pins = pins_of(zf.read("requirements.txt").decode())
    assert pins["tensorflow"] == metadata.version("tensorflow") and pins["tf-keras"] == metadata.version("tf-keras")
    assert "tensorflow-cpu" not in pins  # tf-keras requires `tensorflow`: a second one would overwrite it


def test_the_scripts_install_bubblewrap_and_the_pins_and_parse(bundle, tmp_path):
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(tmp_path)
    setup = (tmp_path / "setup.sh").read_text()
    assert "apt-get install" in setup and "bubblewrap" in setup
    assert "pip install --quiet --no-cache-dir -r requirements.txt" in setup
    assert f"PY=python{sys.version_info.major}.{sys.version_info.minor}" in setup
    run = (tmp_path / "run_autograder").read_text()
    assert "-m grader.export.gradescope --assignment \"$SOURCE/assignments/conv_bn\"" in run
    for script in ("setup.sh", "run_autograder"):
        subprocess.run(["bash", "-n", str(tmp_path / script)], check=True)


def run_setup_sh(root: Path, tmp_path: Path) -> tuple[dict, Path]:
    """setup.sh run for real in the Gradescope-like tree `root`; returns the environment that
    run_autograder then runs in, and the wheel folder (both tests remove it afterwards).

    apt-get is the one stand-in: it would change this machine's own packages, so a recorder
    takes its place and the caller checks what was asked (tmp_path/apt.log). No network: the
    package index setup.sh's pip sees is a folder of wheels repacked from this environment's
    own installed distributions (tests/wheelhouse.py), which the pins were taken from, with
    PIP_NO_INDEX so that pip finds those files and only those (an index the requirements
    name, PyTorch's CPU index for a torch bundle, is ignored under it). PIP_NO_COMPILE spares
    byte-compiling TensorFlow's or torch's thousands of modules, which grading does not need."""
    pins = [line for line in (root / "source" / "requirements.txt").read_text().splitlines()
            if not line.startswith("-")]  # pip options (an index) are not pins to repack
    wheels = wheelhouse(pins, tmp_path / "wheels")
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    (stubs / "apt-get").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "apt.log"}\n')
    (stubs / "apt-get").chmod(0o755)
    path = [d for d in os.environ.get("PATH", "").split(os.pathsep) if Path(d).resolve() != VENV_BIN.resolve()]
    env = dict(os.environ, GRADER_AUTOGRADER_ROOT=str(root), TF_CPP_MIN_LOG_LEVEL="3",
               PATH=os.pathsep.join([str(stubs), *path]),
               PIP_FIND_LINKS=str(wheels), PIP_NO_INDEX="1", PIP_NO_COMPILE="1")
    for key in ("PYTHONPATH", "VIRTUAL_ENV"):
        env.pop(key, None)
    done = subprocess.run(["bash", str(root / "source" / "setup.sh")], cwd="/", env=env, capture_output=True,
                          text=True, timeout=1800)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert "grader dependencies ready" in done.stdout
    asked = (tmp_path / "apt.log").read_text()
    assert "install" in asked and "bubblewrap" in asked and "libseccomp2" in asked, asked
    assert (root / "venv" / "bin" / "python").exists()
    return env, wheels


def installed_names(venv_python: Path, env: dict) -> set[str]:
    listed = subprocess.run([str(venv_python), "-m", "pip", "list", "--format", "json"], capture_output=True,
                            text=True, env=env, check=True).stdout
    return {d["name"].lower().replace("_", "-") for d in json.loads(listed)}


@pytest.mark.slow
def test_setup_sh_installs_an_environment_that_grades(bundle, tmp_path):
    """setup.sh, run for real in a Gradescope-like tree: its venv is created and pip installs
    the pinned requirements; then run_autograder grades with that venv."""
    root = unpack(bundle, tmp_path / "ag", {"conv_bn.ipynb": (SAMPLES / "correct.ipynb").read_bytes()})
    wheels = tmp_path / "wheels"
    try:
        env, wheels = run_setup_sh(root, tmp_path)
        venv_python = root / "venv" / "bin" / "python"
        # The pins, and nothing of this checkout: the bundle's grader is the one that grades.
        versions = subprocess.run([str(venv_python), "-c", "import importlib.metadata as m, json; print(json.dumps("
                                   "{d: m.version(d) for d in ('tensorflow-cpu', 'numpy', 'keras', 'nbformat')}))"],
                                  capture_output=True, text=True, env=env, check=True).stdout
        assert json.loads(versions) == {"tensorflow-cpu": tensorflow_version(),
                                        **{d: metadata.version(d) for d in ("numpy", "keras", "nbformat")}}
        names = installed_names(venv_python, env)
        assert "tensorflow-cpu" in names and not names & {"tensorflow", "tf-keras"}, sorted(names)  # one TensorFlow
        proc = subprocess.Popen([str(root / "run_autograder")], cwd="/", env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        results, out = finish(root, proc)
        well_formed(results)
        assert results["score"] == 23.0 and all(t["status"] == "passed" for t in results["tests"]), out[-2000:]
    finally:
        shutil.rmtree(root / "venv", ignore_errors=True)  # about 1.5 GB
        shutil.rmtree(wheels, ignore_errors=True)


def test_bad_targets_are_refused(tmp_path, capsys):
    assert export("gradescope", "conv_bn", "--out", str(tmp_path / "autograder.tar")) == 1
    assert "must be a .zip file" in capsys.readouterr().err
    assert export("gradescope", "no_such_assignment", "--out", str(tmp_path / "a.zip")) == 2
    assert not list(tmp_path.iterdir())


def test_help_says_what_the_bundle_holds(capsys):
    for argv in (["export", "--help"], ["export", "gradescope", "--help"]):
        parser = argparse.ArgumentParser(prog="grader")
        register(parser.add_subparsers(dest="command"))
        with pytest.raises(SystemExit):
            parser.parse_args(argv)
    text = capsys.readouterr().out
    for phrase in ("gradescope", "coursera", "pinned", "setup.sh", "run_autograder",
                   "/autograder/results/results.json", "grader export gradescope conv_bn --out autograder.zip"):
        assert phrase in text


# ---------------------------------------------------------------- run_autograder

def test_a_python_that_cannot_start_still_leaves_a_results_file(bundle, tmp_path):
    root = unpack(bundle, tmp_path / "ag", {"conv_bn.ipynb": (SAMPLES / "correct.ipynb").read_bytes()})
    broken = tmp_path / "bin"
    broken.mkdir()
    (broken / "python3").write_text("#!/bin/sh\necho 'ModuleNotFoundError: No module named numpy' >&2\nexit 3\n")
    (broken / "python3").chmod(0o755)
    env = dict(os.environ, GRADER_AUTOGRADER_ROOT=str(root), PATH=f"{broken}{os.pathsep}/usr/bin:/bin")
    proc = subprocess.run([str(root / "run_autograder")], env=env, capture_output=True, text=True)
    assert proc.returncode == 3 and "No module named numpy" in proc.stderr
    results = json.loads((root / "results" / "results.json").read_text())
    assert results["score"] == 0.0 and results["tests"] == []
    assert "failed before it could grade your notebook (exit status 3)" in results["output"]


@pytest.mark.slow
def test_run_autograder_grades_correct_and_wrong_submissions(bundle, tmp_path):
    roots = {name: unpack(bundle, tmp_path / name, {f"{name}.ipynb": (SAMPLES / f"{name}.ipynb").read_bytes()})
             for name in ("correct", "relu_before_bn")}
    procs = {name: start(root) for name, root in roots.items()}  # both at once: two cores
    (correct, out), (wrong, _) = (finish(roots[n], procs[n]) for n in ("correct", "relu_before_bn"))

    # The bundle's own copy of the grader graded, not the one installed in this venv.
    assert f"from {(roots['correct'] / 'source' / 'grader').resolve()}" in out
    for results in (correct, wrong):
        well_formed(results)
        assert len(results["tests"]) == 9 and results["extra_data"]["hidden_tests_run"] is True
        hidden = [t for t in results["tests"] if t["visibility"] == "hidden"]
        assert sorted(t["name"] for t in hidden) == ["batchnorm_forward · other ranks and eps",
                                                     "convolutional_model · output for another input shape"]
    assert correct["score"] == 23.0 and all(t["status"] == "passed" for t in correct["tests"])
    assert wrong["score"] == 16.0
    failed = {t["name"]: t for t in wrong["tests"] if t["status"] == "failed"}
    assert set(failed) == {"happyModel · layer order", "happyModel · output on random inputs"}
    assert "ReLU comes before BatchNormalization" in failed["happyModel · layer order"]["output"]
    assert failed["happyModel · layer order"]["tags"] == ["happyModel"]
    assert "Hidden tests also count toward your final grade" in wrong["output"]


def test_unusable_submissions_score_zero_with_one_clear_failed_test(bundle, tmp_path):
    cases = {
        "corrupt": ({"conv_bn.ipynb": b'{"cells": [{"cell_type": "code", "sour'}, "ends in the middle of the JSON"),
        "none": ({"answers.py": b"print(1)\n"}, "no Jupyter notebook (.ipynb) was found in your submission "
                                                "(answers.py)"),
        "several": ({"a.ipynb": b"{}", "work/b.ipynb": b"{}"}, "holds 2 notebooks (a.ipynb, work/b.ipynb)"),
    }
    roots = {name: unpack(bundle, tmp_path / name, files) for name, (files, _) in cases.items()}
    procs = {name: start(root) for name, root in roots.items()}
    for name, (_, says) in cases.items():
        results, out = finish(roots[name], procs[name])
        well_formed(results)
        assert results["score"] == 0.0, name
        (test,) = results["tests"]
        assert (test["status"], test["score"], test["max_score"]) == ("failed", 0.0, 23.0)
        assert test["name"] == "could not be graded" and test["visibility"] == "visible"
        assert says in test["output"].replace("\\", ""), (name, test["output"])
        assert str(tmp_path) not in json.dumps(results)  # files named as the student knows them


# ---------------------------------------------------------------- a PyTorch assignment

TORCH_SAMPLES = REPO / "assignments" / "conv_bn_torch" / "samples"
TENSORFLOW_DISTS = {"tensorflow", "tensorflow-cpu", "tf-keras", "keras", "tensorboard"}


@pytest.fixture(scope="module")
def torch_bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gradescope-torch") / "autograder.zip"
    assert export("gradescope", "conv_bn_torch", "--out", str(out)) == 0
    return out


def test_a_torch_bundle_pins_torch_s_cpu_build_from_its_cpu_index_and_no_tensorflow(torch_bundle, tmp_path):
    with zipfile.ZipFile(torch_bundle) as zf:
        requirements = zf.read("requirements.txt").decode()
        setup = zf.read("setup.sh").decode()
        names = set(zf.namelist())
    pins = pins_of(requirements)
    release = metadata.version("torch").split("+")[0]
    assert pins["torch"] == f"{release}+cpu"  # the CPU build: no CUDA libraries on the platform
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in requirements.splitlines()
    for dist in ("numpy", "nbformat", "pytest", "sympy", "networkx", "pyseccomp"):
        assert pins[dist] == metadata.version(dist), dist
    assert not set(pins) & TENSORFLOW_DISTS, sorted(pins)  # grading torch never imports TensorFlow
    assert not [n for n in pins if n.startswith("nvidia-") or n == "triton"], sorted(pins)
    # The set-up's last check imports what this bundle grades with, and says where torch comes from.
    assert "import torch, nbformat, pytest" in setup and "import tensorflow" not in setup
    assert "https://download.pytorch.org/whl/cpu" in setup
    assert {"assignments/conv_bn_torch/assignment.toml", "assignments/conv_bn_torch/tests/test_torch_happy_model.py",
            "reference/conv_bn_torch.py", "assignments/conv_bn/faces.py"} <= names
    assert not [n for n in names if n.startswith(("assignments/conv_bn_torch/samples",
                                                  "assignments/conv_bn_torch/source"))]
    with zipfile.ZipFile(torch_bundle) as zf:
        zf.extractall(tmp_path)
    subprocess.run(["bash", "-n", str(tmp_path / "setup.sh")], check=True)


@pytest.mark.slow
def test_a_torch_bundle_s_setup_sh_installs_torch_without_tensorflow_and_grades(torch_bundle, tmp_path):
    """The torch bundle's setup.sh, run for real (see run_setup_sh): the venv it makes holds
    torch's CPU build and no TensorFlow at all, and run_autograder grades conv_bn_torch's
    samples in it with PyTorch's names in the feedback. The venv has no TensorFlow to fall
    back on, so this also proves that no part of grading a torch assignment imports it."""
    roots = {name: unpack(torch_bundle, tmp_path / name, {f"{name}.ipynb": (TORCH_SAMPLES / f"{name}.ipynb").read_bytes()})
             for name in ("correct", "relu_before_bn")}
    wheels = tmp_path / "wheels"
    venv = roots["correct"] / "venv"
    try:
        env, wheels = run_setup_sh(roots["correct"], tmp_path)
        names = installed_names(venv / "bin" / "python", env)
        assert "torch" in names and not names & TENSORFLOW_DISTS, sorted(names)
        version = subprocess.run([str(venv / "bin" / "python"), "-c", "import torch; print(torch.__version__)"],
                                 capture_output=True, text=True, env=env, check=True).stdout.strip()
        assert version == metadata.version("torch") and version.endswith("+cpu")
        (roots["relu_before_bn"] / "venv").symlink_to(venv)  # one image, two submissions
        procs = {name: subprocess.Popen([str(root / "run_autograder")], cwd="/",
                                        env=dict(env, GRADER_AUTOGRADER_ROOT=str(root)), stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
                 for name, root in roots.items()}
        (correct, out), (wrong, wrong_out) = (finish(roots[n], procs[n]) for n in ("correct", "relu_before_bn"))
        for results in (correct, wrong):
            well_formed(results)
            assert results["extra_data"]["hidden_tests_run"] is True
        assert correct["score"] == 23.0 and all(t["status"] == "passed" for t in correct["tests"]), out[-2000:]
        assert wrong["score"] == 16.0, wrong_out[-2000:]
        failed = {t["name"]: t for t in wrong["tests"] if t["status"] == "failed"}
        assert "happy_model · layer order" in failed, sorted(failed)
        assert "BatchNorm2d" in failed["happy_model · layer order"]["output"]
        assert "BatchNormalization" not in json.dumps(wrong)  # PyTorch's names, not Keras'
    finally:
        shutil.rmtree(venv, ignore_errors=True)
        shutil.rmtree(wheels, ignore_errors=True)
