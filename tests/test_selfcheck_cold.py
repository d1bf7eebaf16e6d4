"""A cold `grader check`: its forked grading process is held to the assignment's budget like
any other (a notebook that stalls the analysis is reported, named, and nothing is left
running), and the preparation it does while its sandbox worker starts leaves the process
as any graded submission would: matplotlib untouched and importable, Keras' names reset."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from conftest import notebook
from generated_class import processes_with_marker

ROOT = Path(__file__).resolve().parent.parent

# A one-test assignment whose test stands for an analysis that never ends.
STALLING_TEST = """
import time
from grader.testing import exercise, points

pytestmark = exercise("standardize")


@points(1)
def test_standardize_is_there(submission):
    time.sleep(3600)
"""


@pytest.mark.slow
def test_grader_check_over_budget_is_stopped_named_and_leaves_nothing_running(tmp_path):
    assignment = tmp_path / "stalling"
    (assignment / "tests").mkdir(parents=True)
    (assignment / "tests" / "test_stall.py").write_text(STALLING_TEST)
    (assignment / "reference.py").write_text("def standardize(X_train, X_test):\n    return X_train, X_test\n")
    (assignment / "assignment.toml").write_text('name = "stalling"\nexercises = ["standardize"]\n'
                                                'reference = "reference.py"\ngrading_timeout = 5\n')
    stalls = notebook(tmp_path / "stalls.ipynb", "def standardize(X_train, X_test):\n    return X_train, X_test\n")
    marker = uuid.uuid4().hex
    env = {**os.environ, "GRADER_COLD_CHECK_TEST": marker, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-m", "grader", "check", str(stalls), "-a", str(assignment),
                           "--format", "json"], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert proc.returncode == 1, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["score"] == 0 and len(result["errors"]) == 1
    assert str(stalls) in result["errors"][0] and "longer than the budget of 5 s" in result["errors"][0]
    assert processes_with_marker(marker) == []  # the forked grading process was stopped and reaped


@pytest.mark.slow
def test_preparing_a_grading_process_changes_nothing_a_grade_could_see():
    script = """
import json, sys
from grader.run.warm import prepare
done = prepare("3", plotting=False)
hidden_during = "matplotlib" not in sys.modules
import keras
name = keras.layers.Dense(1).name          # Keras' generated names start again, as after a submission
import matplotlib.pyplot                   # and matplotlib imports as usual afterwards
print(json.dumps({"skipped": done.skipped, "steps": sorted(done.seconds), "hidden": hidden_during,
                  "name": name, "pyplot": matplotlib.pyplot.__name__}))
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["skipped"] == []
    assert report["steps"] == ["grading modules", "keras", "notebook reader", "tensorflow"]
    assert report["hidden"] is True
    assert report["name"] == "dense"
    assert report["pyplot"] == "matplotlib.pyplot"


@pytest.mark.slow
def test_a_bubblewrapped_worker_keeps_its_font_list_for_the_next_one(tmp_path, monkeypatch):
    """matplotlib's font list, built in a worker's empty private /tmp, is kept in the user's
    cache and handed to the next worker, which then does not list the fonts again."""
    from grader.frameworks.sandbox_side import sandbox_side
    from grader.sandbox.client import Worker, _font_list_file

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    first = Worker(framework=sandbox_side())
    if first.level != "full":
        pytest.skip("needs bubblewrap (the other levels share the host's /tmp, where matplotlib keeps it)")
    with first.start():
        assert first.info["font_list"] == "built" and "fontlist" not in first.info
    kept = json.loads(_font_list_file().read_text())
    assert _font_list_file().is_relative_to(tmp_path) and kept["name"].startswith("fontlist-v")
    assert json.loads(kept["text"])["_version"] in kept["name"]
    with Worker(framework=sandbox_side()).start() as second:
        assert second.info["font_list"] == "seeded"
        # The list travels through a file descriptor: `ps` shows a command line, not 44 KB of fonts.
        cmdline = Path(f"/proc/{second.proc.pid}/cmdline").read_bytes()
        assert b"GRADER_FONTLIST=" not in cmdline and len(cmdline) < len(kept["text"])


def test_a_kept_font_list_that_is_not_ours_is_not_handed_on(tmp_path, monkeypatch):
    from grader.sandbox.client import _font_list_file, _keep_font_list, _kept_font_list

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert _kept_font_list() == {}  # nothing kept yet
    _keep_font_list({"name": "fontlist-v3.json", "text": "{}"})
    assert _kept_font_list() == {"GRADER_FONTLIST_NAME": "fontlist-v3.json", "GRADER_FONTLIST": "{}"}
    for bad in ({"name": "../../etc/passwd", "text": "{}"}, {"name": "fontlist-v3.json", "text": "x" * 200_000},
                {"name": "fontlist-v3.json"}, "not a dict"):
        _font_list_file().unlink(missing_ok=True)
        _keep_font_list(bad)
        assert not _font_list_file().exists()
    _font_list_file().write_text("{truncated")
    assert _kept_font_list() == {}
    _font_list_file().write_text(json.dumps({"name": "/etc/shadow", "text": "{}"}))
    assert _kept_font_list() == {}
