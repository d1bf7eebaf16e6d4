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
from grader.kit.selfcheck import SelfCheckError, check

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
    assert "happyModel · layer order" in html[0] and "happyModel · output on random inputs" in html[0]
    assert HIDDEN_NOT_RUN in html[0]
    assert "standardize" not in html[0]  # only the exercise asked for
    # check() returns nothing when it shows feedback, so no result repr buries the HTML.
    assert not [o for o in outputs if o.output_type == "execute_result"]


@pytest.mark.slow
def test_check_outside_jupyter_prints_text(capsys):
    from grader.kit.selfcheck import stop_workers
    stop_workers()  # this process's first check: it must say at once that the grader is starting
    assert check("happyModel", notebook=str(SAMPLES / "relu_before_bn.ipynb"), assignment="conv_bn") is None
    out = capsys.readouterr().out
    assert "conv_bn · relu_before_bn.ipynb · visible tests: 0 / 7 points" in out
    assert "ReLU comes before BatchNormalization" in out and "<div" not in out
    assert HIDDEN_NOT_RUN in out
    assert "checked the saved relu_before_bn.ipynb (outside a Jupyter kernel" in out
    assert out.startswith("[grader] starting the grader, about 5 s the first time")


def test_self_check_can_be_switched_off(monkeypatch, capsys):
    monkeypatch.setenv("GRADER_SELF_CHECK", "off")
    assert check("happyModel", notebook="does-not-matter.ipynb") is None
    out = capsys.readouterr().out
    assert out == "[grader] self-check of `happyModel` skipped (GRADER_SELF_CHECK=off)\n"


def test_a_misspelled_exercise_gets_did_you_mean_before_any_grading(capsys):
    with pytest.raises(SelfCheckError, match=r"`happymodel` is not an exercise of conv_bn: did you mean "
                                             r"check\('happyModel'\)\?"):
        check("happymodel", notebook=str(SAMPLES / "correct.ipynb"), assignment="conv_bn", show=False)
    # Shown (as in a notebook): one line saying what to do, no traceback, nothing returned.
    assert check("happymodel", notebook=str(SAMPLES / "correct.ipynb"), assignment="conv_bn") is None
    captured = capsys.readouterr()
    assert captured.err == ("[grader] `happymodel` is not an exercise of conv_bn: did you mean "
                            "check('happyModel')?\n")
    assert "starting the grader" not in captured.out  # refused before anything started
    assert check("nonsense", notebook=str(SAMPLES / "correct.ipynb"), assignment="conv_bn") is None
    assert "its exercises are standardize, batchnorm_forward, happyModel, convolutional_model" in capsys.readouterr().err


def test_a_notebook_away_from_its_kit_is_told_to_move_back_or_name_it(tmp_path, monkeypatch, capsys):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(HAPPY_MODEL)],
                                  metadata={"grader": {"assignment": "night_kit"}})
    nbformat.write(nb, tmp_path / "mine.ipynb")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GRADER_ASSIGNMENTS", raising=False)
    assert check("happyModel") is None
    err = capsys.readouterr().err
    assert err.startswith("[grader] this notebook is not next to its kit's selfcheck/ folder")
    assert "move it back into the kit folder, or give assignment='path/to/selfcheck/night_kit'" in err
    assert len(err.strip().splitlines()) == 1
    with pytest.raises(SelfCheckError, match="no such notebook"):
        check("happyModel", notebook="elsewhere.ipynb", show=False)


def test_which_code_was_checked_is_said_truly_and_only_for_the_exercise_checked():
    from grader.kit.selfcheck import AsRun, what_was_checked
    run = AsRun(None, from_kernel=["happyModel", "standardize"], unchanged=["batchnorm_forward"])
    said = what_was_checked(["happyModel"], "nb.ipynb", run, in_kernel=True)
    assert said == ("checked the code you ran in this kernel; `happyModel` differs from the saved nb.ipynb: "
                    "save the notebook before you submit")
    assert "standardize" not in said  # another exercise's unsaved edit is not this check's news
    said = what_was_checked(["batchnorm_forward"], "nb.ipynb", run, in_kernel=True)
    assert said == "checked the code you ran in this kernel (the same as the saved nb.ipynb)"
    # After a restart, or before the exercise's cell ran: the saved file, and why.
    said = what_was_checked(["convolutional_model"], "nb.ipynb", run, in_kernel=True)
    assert said.startswith("checked the saved nb.ipynb for `convolutional_model`: its cell has not run in this "
                           "kernel yet (or not since it restarted)")
    assert "kernel" not in what_was_checked(["happyModel"], "nb.ipynb", None, in_kernel=False).split("(")[0]


def test_grader_check_refuses_a_missing_notebook_before_starting_anything(tmp_path, capsys):
    from grader.cli import main
    (tmp_path / "conv_bn.ipynb").write_text("{}")
    assert main(["check", str(tmp_path / "conv_bm.ipynb")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"grader: {tmp_path / 'conv_bm.ipynb'}: no such notebook (here: conv_bn.ipynb)"


def test_grader_check_names_a_notebook_away_from_its_kit(tmp_path, capsys):
    from grader.cli import main
    nb = nbformat.v4.new_notebook(metadata={"grader": {"assignment": "night_kit"}})
    nbformat.write(nb, tmp_path / "mine.ipynb")
    assert main(["check", str(tmp_path / "mine.ipynb")]) == 2
    assert capsys.readouterr().err.strip() == (
        "grader: mine.ipynb is not next to its kit's selfcheck/ folder: move it back into the kit folder, "
        "or give --assignment path/to/selfcheck/night_kit")


def test_written_answers_say_empty_when_the_cell_is_there_and_not_found_when_it_is_not():
    from grader.cli import written_answer_lines
    from grader.assignment.written import Question
    questions = [Question(id="why", title="Why?", points=3, prompt="", rubric=()),
                 Question(id="how", title="How?", points=2, prompt="", rubric=()),
                 Question(id="what", title="What?", points=1, prompt="", rubric=())]
    lines = written_answer_lines(questions, {"why": {"text": "", "cell": 31}, "how": {"text": "Like so.", "cell": 33}})
    assert lines[1] == "  EMPTY: Why? (3 points): write your answer in the cell below the question"
    assert lines[2] == "  found: How? (2 points)"
    assert lines[3].startswith("  NOT FOUND: What? (1 points): write your answer in the cell tagged written:what")
    assert not any("cell 3" in line for line in lines)  # no cell numbers Jupyter does not show


@pytest.mark.slow
def test_grader_check_exits_non_zero_below_the_minimum_score():
    def start(sample: str) -> subprocess.Popen:
        return subprocess.Popen(
            [PYTHON, "-m", "grader", "check", str(SAMPLES / f"{sample}.ipynb"), "--assignment", "conv_bn",
             "--min-score", "21", "--color", "never"],
            cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    procs = {name: start(name) for name in ("correct", "relu_before_bn")}  # both at once: 2 cores
    done = {name: (p.communicate(timeout=300), p.returncode) for name, p in procs.items()}
    (out, err), code = done["correct"]
    assert code == 0, out + err
    assert "visible tests: 21 / 21 points" in out and HIDDEN_NOT_RUN in out
    (out, err), code = done["relu_before_bn"]
    assert code == 1, out + err
    assert "visible tests: 14 / 21 points" in out and "ReLU comes before BatchNormalization" in out
    assert "grader: 14 points is below --min-score 21: exit 1" in err
    assert err.startswith("grader: checking relu_before_bn.ipynb against conv_bn")


def test_a_check_that_runs_long_says_so_and_why(capsys):
    import time as _time

    from grader.kit.selfcheck import _notice_if_long
    said = ""
    with _notice_if_long("your code is still running (each call into it is stopped after 30 s)", after=0.0):
        for _ in range(200):  # wait for the notice's thread, however slow the machine
            said += capsys.readouterr().out
            if said:
                break
            _time.sleep(0.05)
    assert said == ("[grader] still checking after 0 s: your code is still running (each call into it is "
                    "stopped after 30 s); the result follows\n")
