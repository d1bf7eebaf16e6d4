"""A grader installed without the assignment's framework says which extra to install, in
one line, from every front end: `grader check` and `grader grade` (Keras 3, Keras 2 and
PyTorch assignments), `check()` in a real Jupyter kernel, and a student kit's own
install line when the notebook is in a kit. Before, the student read "the sandbox worker
did not start" and the instructor "the grading process could not start
(ModuleNotFoundError: No module named 'tensorflow')".

For real: a fresh venv (not --system-site-packages) holding the grader's wheel with its
base dependencies and ipykernel, and neither TensorFlow nor torch, installed offline from
wheels repacked from this environment (the helpers tests/test_student_path.py uses)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from test_student_path import _pins, _requires_of, _student_env, _wheel
from wheelhouse import wheelhouse

REPO = Path(__file__).resolve().parent.parent
ASSIGNMENTS = REPO / "assignments"
SAMPLE = ASSIGNMENTS / "conv_bn" / "samples" / "correct.ipynb"
TORCH_SAMPLE = ASSIGNMENTS / "conv_bn_torch" / "samples" / "correct.ipynb"


@pytest.fixture(scope="module")
def bare(tmp_path_factory):
    """(python, env, tmp): a venv with the grader and no framework, and its environment."""
    tmp = tmp_path_factory.mktemp("no_framework")
    wheels = tmp / "wheels"
    wheel = _wheel(tmp, wheels)
    wheelhouse(_pins([*_requires_of(wheel), "ipykernel>=6"], set()), wheels)
    env = _student_env(tmp, wheels)
    subprocess.run(["python3", "-m", "venv", str(tmp / "venv")], env=env, check=True, capture_output=True)
    python = tmp / "venv" / "bin" / "python"
    done = subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheel), "ipykernel"], env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    probe = subprocess.run([str(python), "-c", "import importlib.util as u, json; print(json.dumps("
                            "[u.find_spec(m) is not None for m in ('tensorflow', 'keras', 'tf_keras', 'torch', "
                            "'grader', 'ipykernel')]))"], env=env, capture_output=True, text=True, check=True)
    assert json.loads(probe.stdout) == [False, False, False, False, True, True]  # the venv is really bare
    return python, env, tmp


def _grader(bare, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    python, env, tmp = bare
    return subprocess.run([str(python), "-m", "grader", *args], cwd=cwd or tmp, env=env, capture_output=True,
                          text=True, timeout=300)


def _one_line(done: subprocess.CompletedProcess, who: str, what: str, extra: str) -> str:
    """The whole answer: exit 2, nothing on stdout, one line on stderr naming the extra."""
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == "" and "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"grader: {who} needs {what}, which is not installed in this Python ("), lines
    assert f'pip install "grader[{extra}]"' in lines[0] and lines[0].endswith("then run the command again")
    return lines[0]


@pytest.mark.slow
def test_the_command_line_names_the_extra_for_each_framework(bare):
    _one_line(_grader(bare, "check", str(SAMPLE), "-a", str(ASSIGNMENTS / "conv_bn")),
              "conv_bn", "TensorFlow (Keras 3)", "keras")
    _one_line(_grader(bare, "grade", str(SAMPLE), "-a", str(ASSIGNMENTS / "conv_bn"), "--format", "json"),
              "conv_bn", "TensorFlow (Keras 3)", "keras")
    _one_line(_grader(bare, "grade", str(SAMPLE), "-a", str(ASSIGNMENTS / "dls_c4w1a2")),
              "dls_c4w1a2", "TensorFlow with tf_keras (Keras 2)", "keras2")
    _one_line(_grader(bare, "grade", str(TORCH_SAMPLE), "-a", str(ASSIGNMENTS / "conv_bn_torch")),
              "conv_bn_torch", "PyTorch", "torch")
    _one_line(_grader(bare, "check", str(TORCH_SAMPLE), "-a", str(ASSIGNMENTS / "conv_bn_torch")),
              "conv_bn_torch", "PyTorch", "torch")
    # Mistakes in calling it still come first: a missing notebook is named, not the framework.
    done = _grader(bare, "check", "nowhere.ipynb", "-a", str(ASSIGNMENTS / "conv_bn"))
    assert done.returncode == 2 and done.stderr.strip() == "grader: nowhere.ipynb: no such notebook"


@pytest.mark.slow
def test_the_adapter_import_says_the_same_when_reached(bare):
    """A path that imports TensorFlow without asking first (a grading process, the kit's
    export) fails with the same advice, as an ImportError the front ends already report."""
    python, env, _ = bare
    done = subprocess.run([str(python), "-c", "from grader.frameworks.keras.tensorflow_import import import_quietly\n"
                           "try:\n    import_quietly('2')\nexcept ImportError as exc:\n"
                           "    print(type(exc).__name__, '|', exc, '|', type(exc.__cause__).__name__)"],
                          env=env, capture_output=True, text=True, timeout=120)
    kind, message, cause = done.stdout.strip().split(" | ")
    assert (kind, cause) == ("FrameworkMissing", "ModuleNotFoundError"), done.stdout + done.stderr
    assert message.startswith("this assignment needs TensorFlow with tf_keras (Keras 2)")
    assert 'pip install "grader[keras2]"' in message


@pytest.mark.slow
def test_a_student_kit_without_tensorflow_is_told_its_readme_line(bare, tmp_path, monkeypatch):
    """In a kit, the advice is the README's own line (the grader came as a wheel file; a bare
    `grader[keras]` would be looked for on the package index), from `grader check` and from
    check() in a real kernel of the venv."""
    from nbclient import NotebookClient

    from grader.assignment.spec import load_assignment
    from grader.kit.export import build_kit

    python, env, tmp = bare
    kit = build_kit(load_assignment("conv_bn"), tmp_path / "kit", samples=False).root
    readme = (kit / "README.md").read_text()
    install = re.search(r'^(pip install "grader-[^"]+\[keras,student\]")', readme, re.M).group(1)

    done = _grader(bare, "check", "conv_bn.ipynb", cwd=kit)
    assert done.returncode == 2 and done.stdout == "", done.stdout + done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("grader: conv_bn needs TensorFlow (Keras 3), which is not installed"), line
    assert f"in the kit folder run {install} (the install line of its README.md)" in line, (line, install)

    subprocess.run([str(python), "-m", "ipykernel", "install", "--user", "--name", "bare"], env=env, check=True,
                   capture_output=True)
    monkeypatch.setenv("JUPYTER_DATA_DIR", env["JUPYTER_DATA_DIR"])  # where that line put the kernel
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import grader.kit.selfcheck\nprint(grader.kit.selfcheck.warm_up('conv_bn'))"),
        nbformat.v4.new_code_cell('from grader import check\ncheck("happyModel")'),
        nbformat.v4.new_code_cell(f'check("happy_model", notebook={str(TORCH_SAMPLE)!r}, '
                                  f'assignment={str(ASSIGNMENTS / "conv_bn_torch")!r})'),
    ])
    client = NotebookClient(nb, kernel_name="bare", timeout=300, allow_errors=False,
                            resources={"metadata": {"path": str(kit)}})
    with client.setup_kernel(env=env):
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
    warm = [o.text for o in nb.cells[0].outputs if o.output_type == "stream"]
    assert warm == ["False\n"], nb.cells[0].outputs  # no worker started that could not start, and silently
    said = []
    for cell in nb.cells[1:]:
        assert not [o for o in cell.outputs if o.output_type == "error"], cell.outputs
        streams = {o.name: o.text for o in cell.outputs if o.output_type == "stream"}
        assert set(streams) == {"stderr"}, cell.outputs  # nothing else: no "starting the grader"
        (line,) = streams["stderr"].strip().splitlines()
        assert line.endswith("then restart the kernel and check again") and "Traceback" not in line, line
        said.append(line)
    assert said[0].startswith("[grader] conv_bn needs TensorFlow (Keras 3), which is not installed"), said[0]
    assert f"in the kit folder run {install}" in said[0], said[0]
    assert said[1].startswith("[grader] conv_bn_torch needs PyTorch, which is not installed"), said[1]
    assert 'pip install "grader[torch]"' in said[1], said[1]
