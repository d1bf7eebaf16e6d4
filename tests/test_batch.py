"""Grading many submissions: parallel equals serial, a killed run loses nothing and a
rerun grades each submission exactly once, progress reads well, TensorFlow stays quiet.

The expensive tests grade a generated class (bench/submissions.py) against one serial
grading of it (tests/generated_class.py), which the cluster and report tests share.
"""
from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from generated_class import (CLASS_SIZE, GRADER, ROOT, copy_subset, gradebook_summary, processes_with_marker,
                             result_summary, serial_run)
from grader.classroom.batch import Options, Progress, find_notebooks, find_submissions, grade_many
from grader.results import SubmissionResult

TF_NOISE = ("oneDNN", "cuda drivers", "absl::InitializeLog", "cpu_feature_guard")


# ---------------------------------------------------------------- finding submissions

def test_student_identity_comes_from_the_file_or_the_folder(tmp_path):
    (tmp_path / "alice.ipynb").write_text("{}")
    (tmp_path / "bob").mkdir()
    (tmp_path / "bob" / "whatever name.ipynb").write_text("{}")
    (tmp_path / "carol" / "deep" / "er").mkdir(parents=True)
    (tmp_path / "carol" / "deep" / "er" / "hw.ipynb").write_text("{}")
    for junk in (".ipynb_checkpoints", "__MACOSX"):
        (tmp_path / "bob" / junk).mkdir()
        (tmp_path / "bob" / junk / "x.ipynb").write_text("{}")
    tasks = find_submissions([tmp_path])
    assert [(t.key, t.student) for t in tasks] == [
        ("alice.ipynb", "alice"), ("bob/whatever name.ipynb", "bob"), ("carol/deep/er/hw.ipynb", "carol")]
    # a file named directly is its own student; a missing one is kept to be reported
    single = find_submissions([tmp_path / "alice.ipynb", tmp_path / "gone.ipynb"])
    assert [(t.key, t.student) for t in single] == [("alice.ipynb", "alice"), ("gone.ipynb", "gone")]
    assert find_notebooks([tmp_path]) == [t.path for t in tasks]


def test_the_same_relative_name_under_two_folders_gets_distinct_keys(tmp_path):
    for section in ("a", "b"):
        (tmp_path / section).mkdir()
        (tmp_path / section / "alice.ipynb").write_text("{}")
    keys = [t.key for t in find_submissions([tmp_path / "a", tmp_path / "b"])]
    assert len(set(keys)) == 2 and keys[0] == "alice.ipynb"


# ---------------------------------------------------------------- progress

def _result(name: str, score: float = 1.0, error: bool = False) -> SubmissionResult:
    from grader.results import Status, TestResult
    return SubmissionResult(name, "a", tests=[TestResult("t", "e", score, 2.0, Status.PASSED)],
                            errors=[f"{name}: broken"] if error else [])


def test_progress_prints_plain_lines_when_not_a_terminal():
    out = io.StringIO()
    progress = Progress(3, out, tty=False)
    for r in (_result("a.ipynb"), _result("b.ipynb", error=True), _result("c.ipynb")):
        progress.update(r)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and "\r" not in out.getvalue()
    assert lines[0].startswith("graded 1/3 a.ipynb: 1/2 (") and "/min, ETA " in lines[0]
    assert "b.ipynb: not graded" in lines[1]
    assert lines[2].endswith("ETA 0s)")


def test_progress_redraws_one_bar_on_a_terminal():
    out = io.StringIO()
    progress = Progress(2, out, tty=True)
    progress.update(_result("a.ipynb"))
    progress.update(_result("b.ipynb", error=True))
    text = out.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n") and text.count("\n") == 1
    assert "2/2" in text and "/min" in text and "ETA" in text and "1 not graded" in text


# ---------------------------------------------------------------- the real thing

@pytest.mark.slow
def test_serial_cli_run_grades_everything_quietly():
    run = serial_run()
    assert len(run.json_lines) == CLASS_SIZE
    assert run.returncode == 1  # the class includes one truncated notebook
    broken = [k for k, d in run.json_lines.items() if d["errors"]]
    assert len(broken) == 1 and "ends in the middle of the JSON" in run.json_lines[broken[0]]["errors"][0]
    assert not any(noise in run.stderr for noise in TF_NOISE), run.stderr[-2000:]
    scores = {d["score"] for d in run.json_lines.values()}
    assert len(scores) >= 4  # the mistakes really cost points, differently


@pytest.mark.slow
def test_a_class_graded_in_parallel_equals_serial(capfd):
    run = serial_run()
    paths = [run.submissions / key for key in sorted(run.json_lines)]
    parallel = {Path(r.submission).relative_to(run.submissions).as_posix(): r.to_dict()
                for r in grade_many(paths, Options(assignment="conv_bn"), jobs=2)}
    assert sorted(parallel) == sorted(run.json_lines)
    for key, serial in run.json_lines.items():
        assert result_summary(parallel[key]) == result_summary(serial), key
    err = capfd.readouterr().err  # what the spawned grading processes wrote to the terminal
    assert not any(noise in err for noise in TF_NOISE), err[-2000:]


def _rows(gradebook: Path) -> int:
    if not gradebook.is_file():
        return 0
    try:
        db = sqlite3.connect(f"file:{gradebook}?mode=ro", uri=True, timeout=5)
        try:
            return db.execute("SELECT COUNT(*) FROM submissions").fetchone()[0]
        finally:
            db.close()
    except sqlite3.OperationalError:  # the schema is not there yet
        return 0


@pytest.mark.slow
def test_killed_midway_then_rerun_grades_each_submission_exactly_once(tmp_path):
    run = serial_run()
    submissions, results = tmp_path / "submissions", tmp_path / "results"
    keys = copy_subset(run, submissions, 12)
    command = [GRADER, "grade", str(submissions), "-a", "conv_bn", "--out", str(results), "--jobs", "2"]
    marker = f"GRADER_KILL_TEST={uuid.uuid4().hex}"
    env = {**os.environ, marker.split("=")[0]: marker.split("=")[1]}
    gradebook = results / "gradebook.sqlite"

    with open(tmp_path / "first.out", "w") as out, open(tmp_path / "first.err", "w") as err:
        first = subprocess.Popen(command, stdout=out, stderr=err, env=env, cwd=ROOT)
        deadline = time.monotonic() + 300
        while _rows(gradebook) < 3 and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert first.poll() is None, "the first run ended before it could be killed"
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    kept = _rows(gradebook)
    assert 3 <= kept < len(keys)

    # The grading processes and sandbox workers of the killed run do not linger.
    deadline = time.monotonic() + 30
    while processes_with_marker(marker) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert processes_with_marker(marker) == []

    second = subprocess.run(command + ["--format", "json"], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert second.returncode == 1, second.stderr[-3000:]  # one truncated notebook, graded "not graded"
    printed = [json.loads(line) for line in second.stdout.splitlines()]
    assert len(printed) == len(keys)  # stored and new results alike, one line each
    assert f"{len(keys) - kept} to grade, {kept} unchanged since the last run" in second.stderr

    db = sqlite3.connect(gradebook)
    gradings = dict(db.execute("SELECT submission, COUNT(*) FROM gradings GROUP BY submission"))
    assert gradings == {key: 1 for key in keys}
    per_run = dict(db.execute("SELECT run_id, COUNT(*) FROM gradings GROUP BY run_id"))
    runs = db.execute("SELECT id, to_grade, graded, outcome FROM runs ORDER BY id").fetchall()
    db.close()
    assert [r[0] for r in runs] == sorted(per_run) and per_run[runs[0][0]] == kept
    assert runs[1][1:] == (len(keys) - kept, len(keys) - kept, "finished")

    assert gradebook_summary(results) == gradebook_summary(run.results, set(keys))
    lines = (results / "grades.csv").read_text().splitlines()
    assert len(lines) == 1 + len(keys)
    assert len(list((results / "feedback").iterdir())) == len(keys)

    # A third run has nothing to do.
    third = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert "0 to grade" in third.stderr and f"{len(keys) - 1} graded, 1 could not be graded" in third.stdout
