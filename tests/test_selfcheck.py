"""A student's self-check: `check("happyModel")` inside a real Jupyter kernel shows HTML
feedback, plain Python prints text, both say hidden tests also count; `grader check
--min-score` fails below the bar."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from grader.render._common import HIDDEN_NOT_RUN
from grader.selfcheck import SelfCheckError, check

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "assignments" / "conv_bn" / "samples"
PYTHON = sys.executable

HAPPY_MODEL = '''\
def happyModel():
    return tf.keras.Sequential([
        tf.keras.Input(shape=(64, 64, 3)),
        tfl.ZeroPadding2D(padding=3),
        tfl.Conv2D(32, 7, strides=1),
        tfl.BatchNormalization(axis=3),
        tfl.ReLU(),
        tfl.MaxPooling2D(),
        tfl.Flatten(),
        tfl.Dense(1, activation="sigmoid"),
    ])'''


def _env(**extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "GRADER_SELF_CHECK"}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", **extra)
    return env


@pytest.mark.slow
def test_check_in_jupyter_shows_html_feedback_and_the_hidden_tests_sentence(tmp_path):
    from nbclient import NotebookClient

    path = tmp_path / "student.ipynb"
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import tensorflow as tf\nfrom tensorflow.keras import layers as tfl"),
        nbformat.v4.new_code_cell(HAPPY_MODEL, metadata={"tags": ["happyModel"]}),
        nbformat.v4.new_code_cell(f'from grader import check\ncheck("happyModel", notebook={str(path)!r}, '
                                  f'assignment="conv_bn")'),
    ])
    nbformat.write(nb, path)  # check() grades the saved file, as in real use
    NotebookClient(nb, kernel_name="python3", timeout=300,
                   resources={"metadata": {"path": str(tmp_path)}}).execute(env=_env())

    outputs = nb.cells[2].outputs
    assert not [o for o in outputs if o.output_type == "error"], outputs
    html = [o.data["text/html"] for o in outputs if o.output_type == "display_data" and "text/html" in o.data]
    assert len(html) == 1, outputs
    assert "visible tests: 7 / 7 points" in html[0]
    assert "happyModel · layer order" in html[0] and "happyModel · output on hidden inputs" in html[0]
    assert HIDDEN_NOT_RUN in html[0]
    assert "standardize" not in html[0]  # only the exercise asked for
    # check() returns nothing when it shows feedback, so no result repr buries the HTML.
    assert not [o for o in outputs if o.output_type == "execute_result"]


@pytest.mark.slow
def test_check_outside_jupyter_prints_text(capsys):
    assert check("happyModel", notebook=str(SAMPLES / "relu_before_bn.ipynb"), assignment="conv_bn") is None
    out = capsys.readouterr().out
    assert "conv_bn · relu_before_bn.ipynb · visible tests: 0 / 7 points" in out
    assert "ReLU comes before BatchNormalization" in out and "<div" not in out
    assert HIDDEN_NOT_RUN in out
    assert "checked the saved file relu_before_bn.ipynb" in out


def test_self_check_can_be_switched_off(monkeypatch, capsys):
    monkeypatch.setenv("GRADER_SELF_CHECK", "off")
    assert check("happyModel", notebook="does-not-matter.ipynb") is None
    out = capsys.readouterr().out
    assert out == "[grader] self-check of `happyModel` skipped (GRADER_SELF_CHECK=off)\n"


def test_an_unknown_exercise_is_named_before_any_grading():
    with pytest.raises(SelfCheckError, match="`happymodel` is not an exercise of conv_bn"):
        check("happymodel", notebook=str(SAMPLES / "correct.ipynb"), assignment="conv_bn")


@pytest.mark.slow
def test_grader_check_exits_non_zero_below_the_minimum_score():
    def start(sample: str) -> subprocess.Popen:
        return subprocess.Popen(
            [PYTHON, "-m", "grader", "check", str(SAMPLES / f"{sample}.ipynb"), "--assignment", "conv_bn",
             "--min-score", "22", "--color", "never"],
            cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    procs = {name: start(name) for name in ("correct", "relu_before_bn")}  # both at once: 2 cores
    done = {name: (p.communicate(timeout=300), p.returncode) for name, p in procs.items()}
    (out, err), code = done["correct"]
    assert code == 0, out + err
    assert "visible tests: 22 / 22 points" in out and HIDDEN_NOT_RUN in out
    (out, err), code = done["relu_before_bn"]
    assert code == 1, out + err
    assert "visible tests: 15 / 22 points" in out and "ReLU comes before BatchNormalization" in out
