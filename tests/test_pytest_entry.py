"""`pytest --notebook SUBMISSION.ipynb assignments/NAME/tests`: the instructor's (and CI's)
way in. Its exit status follows the tests, and the grader's feedback is printed at the end."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "assignments" / "conv_bn" / "samples"
TESTS = REPO / "assignments" / "conv_bn" / "tests"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Both samples graded at once (two cores); each run starts its own sandbox worker."""
    out = tmp_path_factory.mktemp("pytest_entry")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    procs = {}
    for sample in ("correct", "relu_before_bn"):
        cmd = [sys.executable, "-m", "pytest", "--notebook", str(SAMPLES / f"{sample}.ipynb"), str(TESTS),
               "-p", "no:cacheprovider", "--color=no", "--grader-json", str(out / f"{sample}.json")]
        procs[sample] = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, text=True)
    return {name: (p.communicate(timeout=300)[0], p.returncode, out / f"{name}.json") for name, p in procs.items()}


@pytest.mark.slow
def test_a_correct_submission_passes_and_prints_the_feedback(runs):
    out, code, _ = runs["correct"]
    assert code == 0, out
    defined = sum(len(re.findall(r"^def test_", f.read_text(), re.M)) for f in TESTS.glob("test_*.py"))
    assert f"{defined} passed" in out  # every test of the assignment ran, and passed
    feedback = out.split("grader feedback", 1)[1]
    assert "conv_bn · correct.ipynb · 23 / 23 points" in feedback
    assert "All tests passed." in feedback


@pytest.mark.slow
def test_a_wrong_submission_fails_and_the_feedback_says_why(runs):
    out, code, json_path = runs["relu_before_bn"]
    assert code == 1, out
    assert "FAILED" in out and "test_happy_model.py::test_layer_order" in out
    feedback = out.split("grader feedback", 1)[1]
    assert "conv_bn · relu_before_bn.ipynb · 16 / 23 points" in feedback
    assert "ReLU comes before BatchNormalization" in feedback
    assert "(not run: fix `layer order` first)" in feedback
    result = json.loads(json_path.read_text())
    assert (result["score"], result["max_score"]) == (16.0, 23.0)
