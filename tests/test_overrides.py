"""`grader override`: a person changes one test's score, with the reason, on real graded
notebooks in a real gradebook; the history says who, when, what and why; an override
survives grading the same notebook again and stops applying (with the instructor told)
when the notebook changes.

Two sample notebooks are graded once for the module; tests that write copy the results.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import nbformat
import pytest

from conftest import SAMPLES
from grader.classroom.final import OVERRIDE_NOTE
from grader.classroom.gradebook import Gradebook
from grader.classroom.overrides import HistoryEntry, OverrideError, attention_lines, parse_points
from grader.classroom.outputs import ClassGrades
from grader.cli import main

LAYER_ORDER = "happyModel · layer order"          # relu_before_bn fails it: 0 of 4
BN_MATCHES = "batchnorm_forward · matches Keras BatchNormalization(training=True)"  # mixed fails it: 0 of 3


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """alice hands in a folder (relu_before_bn: 16 of 23), bob a notebook (mixed: 12), carol a
    folder (correct: 23)."""
    root = tmp_path_factory.mktemp("overrides")
    subs = root / "submissions"
    for folder in ("alice", "carol"):
        (subs / folder).mkdir(parents=True)
    shutil.copy(SAMPLES / "relu_before_bn.ipynb", subs / "alice" / "hw.ipynb")
    shutil.copy(SAMPLES / "mixed.ipynb", subs / "bob.ipynb")
    shutil.copy(SAMPLES / "correct.ipynb", subs / "carol" / "hw.ipynb")
    roster = root / "roster.csv"
    roster.write_text("file_or_folder,student_id,name\nalice,s001,Alice Ames\nbob,s002,Bob Bell\n"
                      "carol,s003,Carol Cruz\n")
    results = root / "results"
    assert main(["grade", str(subs), "-a", "conv_bn", "--out", str(results), "--roster", str(roster),
                 "-j", "1"]) == 0
    return root


@pytest.fixture
def results(graded, tmp_path):
    copy = tmp_path / "results"
    shutil.copytree(graded / "results", copy)
    return copy


def _grades(results: Path) -> dict[str, dict]:
    with open(results / "grades.csv", newline="", encoding="utf-8") as f:
        return {r["student_id"]: r for r in csv.DictReader(f)}


def _number(results: Path, submission: str, title: str) -> str:
    with Gradebook(results, create=False) as book:
        return next(t.number for t in book.result(submission).tests if t.title == title)


def _autograded_total(results: Path, student: str) -> float:
    with Gradebook(results, create=False) as book:
        sub = {"s001": "alice/hw.ipynb", "s002": "bob.ipynb", "s003": "carol/hw.ipynb"}[student]
        return book.row(sub).score


# ---------------------------------------------------------------- recording one

def test_an_override_changes_the_score_the_total_and_the_students_feedback(results, capsys):
    base = float(_grades(results)["s001"]["total"])
    number = _number(results, "alice/hw.ipynb", LAYER_ORDER)
    code = main(["override", str(results), "s001", number, "3", "--reason", "ReLU then BN is defensible here",
                 "--grader", "prof_k"])
    out = capsys.readouterr().out
    assert code == 0
    assert f"s001 (alice/hw.ipynb): {LAYER_ORDER} 0 -> 3 of 4" in out
    assert f"total {base:g} -> {base + 3:g} of" in out
    row = _grades(results)["s001"]
    assert float(row["total"]) == base + 3 and float(row["happyModel"]) == 3.0
    assert float(_grades(results)["s002"]["total"]) == _autograded_total(results, "s002")  # nobody else moved
    document = json.loads((results / "grades.json").read_text())
    assert next(s for s in document["students"] if s["student_id"] == "s001")["total"] == base + 3
    feedback = results / "feedback" / "s001"
    md = (feedback / "feedback.md").read_text()
    assert "Your instructor changed this score from 0 to 3 of 4" in md and "ReLU then BN is defensible" in md
    assert OVERRIDE_NOTE in md
    gradescope = json.loads((feedback / "results.json").read_text())
    test = next(t for t in gradescope["tests"] if "layer order" in t["name"])
    assert test["score"] == 3 and "ReLU then BN is defensible" in test["output"]
    assert "ReLU then BN is defensible" in (feedback / "feedback.html").read_text()


def test_a_test_named_by_title_or_nodeid_and_withdrawn_with_auto(results, capsys):
    base = float(_grades(results)["s002"]["total"])
    assert main(["override", str(results), "bob", BN_MATCHES, "1.5", "--reason", "partly right",
                 "--grader", "ta_1"]) == 0
    assert float(_grades(results)["s002"]["total"]) == base + 1.5
    nodeid = "test_batchnorm_forward.py::test_matches_keras_batchnorm_training"
    assert main(["override", str(results), "bob.ipynb", nodeid, "3", "--reason", "on reflection: all of it",
                 "--grader", "prof_k"]) == 0
    assert float(_grades(results)["s002"]["total"]) == base + 3
    capsys.readouterr()
    assert main(["override", str(results), "s002", BN_MATCHES, "auto", "--reason", "the autograder was right",
                 "--grader", "prof_k"]) == 0
    out = capsys.readouterr().out
    assert "withdrawn" in out and f"total {base + 3:g} -> {base:g}" in out
    assert float(_grades(results)["s002"]["total"]) == base
    assert OVERRIDE_NOTE not in (results / "feedback" / "s002" / "feedback.md").read_text()

    assert main(["override", str(results), "--history", "s002"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len([l for l in lines if "s002 (bob.ipynb)" in l]) == 3  # all three, oldest first
    assert "ta_1" in lines[0] and "set to 1.5 of 3" in lines[0] and "partly right" in lines[1]
    assert "replaced by a later decision" in lines[1] and "replaced by a later decision" in lines[3]
    assert "prof_k" in lines[4] and "withdrawn" in lines[4] and "the autograder was right" in lines[5]
    assert "replaced" not in lines[5]
    assert main(["override", str(results), "--history", "s001"]) == 0
    assert "no overrides recorded for s001" in capsys.readouterr().out


@pytest.mark.parametrize("what, message", [
    (["nobody", "1", "1"], "no student or submission 'nobody'"),
    (["s001", "99", "1"], "has no test '99'; give its number or title, one of: 1 standardize"),
    (["s001", LAYER_ORDER, "5"], "points must be between 0 and 4, not 5.0"),
    (["s001", LAYER_ORDER, "-1"], "points must be between 0 and 4"),
    (["s001", LAYER_ORDER, "three"], "POINTS must be a number (e.g. 3 or 2.5) or `auto`"),
    (["s001", LAYER_ORDER, "nan"], "POINTS must be a finite number"),
    (["s001", LAYER_ORDER], "give STUDENT TEST POINTS (got 2 of them)"),
])
def test_what_cannot_be_recorded_is_a_usage_error_that_says_what_to_give(results, capsys, what, message):
    before = (results / "grades.csv").read_text()
    assert main(["override", str(results), *what, "--reason", "r"]) == 2
    assert message in capsys.readouterr().err
    assert (results / "grades.csv").read_text() == before
    with Gradebook(results, create=False) as book:
        assert book.override_history() == []


def test_an_override_needs_a_reason_and_a_gradebook(results, tmp_path, capsys):
    assert main(["override", str(results), "s001", LAYER_ORDER, "3"]) == 2
    assert "an override needs --reason" in capsys.readouterr().err
    assert main(["override", str(results), "s001", LAYER_ORDER, "3", "--reason", "   "]) == 2
    assert main(["override", str(tmp_path / "nowhere"), "s001", "1", "1", "--reason", "r"]) == 2
    assert "holds no gradebook" in capsys.readouterr().err
    assert not (tmp_path / "nowhere").exists()
    assert main(["override", str(results), "s001", "--history", "s002"]) == 2
    assert main(["override", str(results), "s001", LAYER_ORDER, "3", "--reason", "r", "--grader", "a\x1b[2Jb"]) == 2


# ---------------------------------------------------------------- regrading

def test_an_override_survives_regrading_and_stops_applying_when_the_notebook_changes(graded, tmp_path, capsys):
    subs, results = tmp_path / "submissions", tmp_path / "results"
    shutil.copytree(graded / "submissions", subs)
    shutil.copytree(graded / "results", results)
    auto = {s: float(r["total"]) for s, r in _grades(results).items()}
    assert main(["override", str(results), "s001", LAYER_ORDER, "4", "--reason", "equivalent order"]) == 0
    assert main(["override", str(results), "s002", BN_MATCHES, "2", "--reason", "close enough"]) == 0
    assert main(["override", str(results), "s003", LAYER_ORDER, "1", "--reason", "copied from the solution"]) == 0

    # One regrading run: alice's notebook is as it was; bob edits his in place; carol hands
    # in a second notebook, later, which now gives her grade.
    nb = nbformat.read(subs / "bob.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell("I fixed the variance, I think."))
    nbformat.write(nb, subs / "bob.ipynb")
    shutil.copy(subs / "carol" / "hw.ipynb", subs / "carol" / "hw_v2.ipynb")
    later = os.stat(subs / "carol" / "hw.ipynb").st_mtime + 3600
    os.utime(subs / "carol" / "hw_v2.ipynb", (later, later))
    capsys.readouterr()
    assert main(["grade", str(subs), "-a", "conv_bn", "--out", str(results), "--roster", str(graded / "roster.csv"),
                 "--regrade", "-j", "1"]) == 0
    err = capsys.readouterr().err
    with Gradebook(results, create=False) as book:
        assert book.gradings_per_submission()["alice/hw.ipynb"] == 2  # graded again...
    grades = _grades(results)
    assert float(grades["s001"]["total"]) == auto["s001"] + 4     # ...and the decision holds
    assert "equivalent order" not in err
    assert ("s002: the override of " + BN_MATCHES + " (close enough) was made on an earlier version of the "
            "notebook and is not applied; look again") in err
    assert ("s003: an override (copied from the solution) was made on carol/hw.ipynb, but their grade now comes "
            "from carol/hw_v2.ipynb") in err
    assert f"decide again with `grader override {results} STUDENT TEST POINTS" in err
    assert float(grades["s002"]["total"]) == auto["s002"] and float(grades["s003"]["total"]) == auto["s003"]
    assert grades["s003"]["submission"] == "carol/hw_v2.ipynb"
    document = json.loads((results / "grades.json").read_text())
    assert any("close enough" in a for a in document["attention"])

    assert main(["override", str(results), "--history"]) == 0
    out = capsys.readouterr().out
    assert "close enough  [not applied: the notebook changed since]" in out
    # Deciding again on the new notebook applies at once and ends the warning.
    assert main(["override", str(results), "s002", BN_MATCHES, "1", "--reason", "new version: half right"]) == 0
    assert float(_grades(results)["s002"]["total"]) == auto["s002"] + 1
    with Gradebook(results, create=False) as book:
        from grader.classroom.outputs import export_grades
        stale = export_grades(book).stale
    assert not any(a.startswith("s002") for a in stale) and any(a.startswith("s003") for a in stale)


# ---------------------------------------------------------------- pure parts

def test_points_parse_as_numbers_or_auto():
    assert parse_points("3") == 3.0 and parse_points("2.5") == 2.5 and parse_points(" AUTO ") is None
    for bad in ("", "3 points", "inf", "1e999"):
        with pytest.raises(OverrideError):
            parse_points(bad)


def test_history_lines_show_student_text_escaped():
    entry = HistoryEntry("2026-12-05T10:00:00+0000", "prof", "eve\x1b[2J", "eve\x1b[2J.ipynb",
                         "happyModel · layer order", 3.0, 4.0, "see \u202eoverride", applies=False, latest=True)
    text = entry.describe()
    assert "\x1b" not in text and "\\x1b[2J" in text and "\\u202e" in text
    assert "set to 3 of 4" in text and "[not applied: the notebook changed since]" in text


def test_attention_lines_say_how_many_answers_wait_and_how_to_decide_again(tmp_path):
    grades = ClassGrades(tmp_path / "g.csv", tmp_path / "g.json", attention=(), stale=("s1: \x1b]0;x\x07 stale",),
                         pending_written=5, pending_students=3)
    lines = attention_lines(grades, "results")
    assert lines[0] == "grader: s1: \\x1b]0;x\\x07 stale"
    assert "grader override results STUDENT TEST POINTS" in lines[1]
    assert lines[2] == "grader: 5 written answers (3 students) wait for a score: `grader review results`"
    assert attention_lines(ClassGrades(tmp_path / "g.csv", tmp_path / "g.json", ()), "r") == []
