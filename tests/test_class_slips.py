"""Grading a class through ordinary slips: one student's odd file, an instructor's roster or
manifest mistake, hand-ins copied with `cp`. Each costs that file a line, never the run,
another student's grade, or a silent penalty.

One class is copied with the real `cp` (every modification time becomes the copy's) and
graded twice by the real command line, under a copy of conv_bn with a due date in the past
and a late policy:

* alice (correct), listed as s001, with a manifest time on time, and a file where her
  feedback folder goes (her feedback cannot be written);
* s001.ipynb (mixed): not in the roster, named like alice's id;
* aaron (correct), whose written answer holds a lone surrogate (valid JSON, saved by Jupyter);
* caf\\xe9.ipynb (relu_before_bn): a file name that is not UTF-8, as a Windows archive leaves;
* dana/hw3.ipynb (correct) and dana/scratch.ipynb (the template): one manifest time for the
  folder, so a tie that the first run refuses and the second breaks with --pick.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from conftest import REPO, SAMPLES
from grader.classroom.gradebook import Gradebook
from grader.classroom.handin import HandIn, PickRule, counted, looks_copied, parse_pick, time_lines
from grader.classroom.manifest import parse_submission_time
from grader.classroom.roster import RosterError, read_roster
from grader.cli import main
from grader.assignment.late import parse_time
from test_late_work import _assignment

CAFE = os.fsdecode(b"caf\xe9")  # the name Python gives bytes that are not UTF-8
ALICE_TIME = "2026-12-04T20:00:00+01:00"


def _grade(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader", "grade", *args], capture_output=True, text=True,
                          timeout=900, cwd=REPO, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


def _grades(results: Path) -> dict[str, dict]:
    with open(results / "grades.csv", newline="", encoding="utf-8") as f:
        return {r["student_id"]: r for r in csv.DictReader(f)}


def _surrogate_answer(source: Path, target: Path) -> None:
    """The correct notebook with its first written answer holding "\\ud800", as JSON allows."""
    nb = json.loads(source.read_text(encoding="utf-8"))
    cell = next(c for c in nb["cells"] if "written:why_bn_after_conv" in c.get("metadata", {}).get("tags", []))
    cell["source"] = "BatchNormalization standardizes what the next layer gets \ud800 per channel."
    target.write_text(json.dumps(nb), encoding="ascii")  # ensure_ascii: the surrogate as the escape \ud800


@pytest.fixture(scope="module")
def slips(tmp_path_factory):
    root = tmp_path_factory.mktemp("slips")
    assignment = _assignment(root / "late_bn")
    src = root / "handed_in"
    (src / "dana").mkdir(parents=True)
    shutil.copy(SAMPLES / "correct.ipynb", src / "alice.ipynb")
    shutil.copy(SAMPLES / "mixed.ipynb", src / "s001.ipynb")
    _surrogate_answer(SAMPLES / "correct.ipynb", src / "aaron.ipynb")
    shutil.copy(SAMPLES / "relu_before_bn.ipynb", src / f"{CAFE}.ipynb")
    shutil.copy(SAMPLES / "correct.ipynb", src / "dana" / "hw3.ipynb")
    shutil.copy(SAMPLES / "template.ipynb", src / "dana" / "scratch.ipynb")
    subs = root / "submissions"
    subprocess.run(["cp", "-r", str(src), str(subs)], check=True)  # every time is now the copy's
    (root / "roster.csv").write_text("file_or_folder,student_id,name\nalice,s001,Alice\naaron,s002,Aaron\n"
                                     "dana,s004,Dana\n")
    (root / "times1.csv").write_text(f"file_or_folder,submitted_at\nalice,{ALICE_TIME}\n"
                                     "dana,2026-12-04T21:00:00+01:00\n")
    (root / "times2.csv").write_text("file_or_folder,submitted_at\ndana,2026-12-04T21:00:00+01:00\n")
    results = root / "results"
    (results / "feedback").mkdir(parents=True)
    (results / "feedback" / "s001").write_text("a file where alice's feedback folder goes")  # cannot be written
    common = [str(subs), "-a", str(assignment), "--out", str(results), "--roster", str(root / "roster.csv"),
              "-j", "1"]
    first = _grade(*common, "--manifest", str(root / "times1.csv"))
    first_grades = _grades(results)
    first_json = json.loads((results / "grades.json").read_text())
    second = _grade(*common, "--manifest", str(root / "times2.csv"), "--times", "mtime",
                    "--pick", "name:hw3*.ipynb")
    return {"root": root, "results": results, "first": first, "first_grades": first_grades,
            "first_json": first_json, "second": second}


@pytest.mark.slow
def test_odd_files_cost_their_own_line_and_every_other_student_is_graded(slips):
    first = slips["first"]
    assert "Traceback" not in first.stderr, first.stderr[-3000:]
    assert first.returncode == 1  # s001.ipynb and dana's tie are not graded
    grades = slips["first_grades"]
    assert grades["s001"]["status"] == "graded" and float(grades["s001"]["total"]) == 23  # alice
    cafe = grades["caf\\xe9"]  # graded under its escaped name
    assert cafe["status"] == "graded" and cafe["submission"] == "caf\\xe9.ipynb" and float(cafe["total"]) == 16
    assert "caf\\xe9.ipynb" in first.stderr  # its progress line, shown escaped
    # alice's feedback cannot be written (a file is in its folder's place): her line, and her grade stands
    assert "alice.ipynb: its student's feedback could not be written (FileExistsError" in first.stderr
    alice = next(s for s in slips["first_json"]["students"] if s["student_id"] == "s001")
    assert "FileExistsError" in alice["feedback_problem"] and alice["total"] == 23
    aaron = grades["s002"]  # stored with the surrogate escaped, or refused on its own line
    assert aaron["status"] == "graded" or ("aaron.ipynb" in aaron["reason"] and "aaron.ipynb" in first.stderr)


@pytest.mark.slow
def test_an_unlisted_file_named_like_a_listed_students_id_never_takes_their_place(slips):
    err = slips["first"].stderr
    assert "s001.ipynb: not in the roster, and its name is the student id of alice (s001)" in err
    grades = slips["first_grades"]
    assert grades["s001"]["submission"] == "alice.ipynb" and grades["s001"]["name"] == "Alice"
    with Gradebook(slips["results"], create=False) as book:
        assert book.row("s001.ipynb") is None  # never graded, so never merged into alice's grade


@pytest.mark.slow
def test_a_tie_is_refused_naming_both_files_until_the_instructor_picks(slips):
    err = slips["first"].stderr
    assert ("dana: dana/hw3.ipynb and dana/scratch.ipynb were handed in at the same time "
            "(2026-12-04T20:00:00+00:00): which one counts is never guessed from their names") in err
    assert "--pick newest or --pick 'name:GLOB'" in err
    dana = slips["first_grades"]["s004"]
    assert dana["status"] == "not graded" and dana["total"] == ""
    assert "dana/hw3.ipynb and dana/scratch.ipynb" in dana["reason"]
    second = slips["second"]
    assert "Traceback" not in second.stderr, second.stderr[-3000:]
    dana = _grades(slips["results"])["s004"]
    assert (dana["status"], dana["submission"], float(dana["total"])) == ("graded", "dana/hw3.ipynb", 23)


@pytest.mark.slow
def test_copied_modification_times_cost_no_penalty_unless_asked_for_and_then_are_flagged(slips):
    err = slips["first"].stderr
    # aaron, caf\xe9 and s001 have no manifest time: no penalty, said once.
    assert err.count("no late penalty is applied to them") == 1
    assert "look like the time of a copy" not in err
    grades = slips["first_grades"]
    assert float(grades["caf\\xe9"]["late_penalty"]) == 0 and float(grades["s001"]["late_penalty"]) == 0
    second = slips["second"].stderr
    assert "their file's modification time counts (--times mtime)" in second
    assert "look like the time of a copy (cp, git clone, unzip)" in second
    assert float(_grades(slips["results"])["caf\\xe9"]["late_penalty"]) > 0  # the instructor asked for it


@pytest.mark.slow
def test_a_later_manifest_that_leaves_a_notebook_out_says_which_time_it_keeps(slips):
    assert ("no time in this manifest for 1 notebook: the time an earlier manifest gave it is kept: alice.ipynb"
            in slips["second"].stderr)
    document = json.loads((slips["results"] / "grades.json").read_text())
    alice = next(s for s in document["students"] if s["student_id"] == "s001")
    assert alice["late"]["submitted"] == ALICE_TIME and alice["late"]["penalty"] == 0
    with Gradebook(slips["results"], create=False) as book:
        assert book.gradings_per_submission()["alice.ipynb"] == 1  # kept, not graded again


def test_a_roster_with_one_id_twice_is_refused_naming_both_rows(tmp_path, capsys):
    roster = tmp_path / "roster.csv"
    roster.write_text("file_or_folder,student_id,name\nalice,s001,Alice\nbob,s001,Bob\n")
    subs = tmp_path / "subs"
    subs.mkdir()
    shutil.copy(SAMPLES / "correct.ipynb", subs / "alice.ipynb")
    assert main(["grade", str(subs), "-a", "conv_bn", "--out", str(tmp_path / "results"),
                 "--roster", str(roster)]) == 2
    err = capsys.readouterr().err
    assert (f"roster {roster}, line 3: student id 's001' (bob, Bob) is already on line 2 (alice, Alice)") in err
    assert not (tmp_path / "results").exists()  # refused before anything was written
    roster.write_text("file_or_folder,student_id\nalice,s001\ns001,\n")  # an id left empty is the key itself
    with pytest.raises(RosterError, match="line 3: student id 's001'"):
        read_roster(roster)


@pytest.mark.parametrize("text, message", [
    ("20261205", "'20261205' is a date without a time (ISO 8601 for 2026-12-05)"),
    ("2026W496", "'2026W496' is a date without a time (ISO 8601 for 2026-12-05)"),
    ("2026-W49-6", "(ISO 8601 for 2026-12-05)"),
    ("2026-12-05", "'2026-12-05' is a date without a time; write e.g. 2026-12-05T14:05:00+01:00"),
    ("2099-12-05T10:00:00Z", "'2099-12-05T10:00:00Z' is in the future"),
])
def test_manifest_times_that_would_be_a_guess_are_refused(text, message):
    with pytest.raises(ValueError) as caught:
        parse_submission_time(text, now=datetime(2026, 12, 20, tzinfo=timezone.utc))
    assert message in str(caught.value)


def test_compact_iso_forms_are_what_iso_8601_says():
    now = datetime(2026, 12, 20, tzinfo=timezone.utc)
    assert parse_submission_time("20261204T2358Z", now=now) == "2026-12-04T23:58:00+00:00"
    assert parse_submission_time("2026W495T10:00+01:00", now=now) == "2026-12-04T10:00:00+01:00"
    # A deadline written as a date alone is that day's end, in every spelling.
    assert parse_time("20261205") == parse_time("2026W496") == parse_time("2026-12-05")
    assert parse_time("2026W496").hour == 23


def test_a_manifest_time_in_the_future_is_a_usage_error_naming_the_line(tmp_path, capsys):
    manifest = tmp_path / "times.csv"
    manifest.write_text("file_or_folder,submitted_at\nalice,2026-12-04T10:00Z\nbob,2099-01-01T10:00Z\n")
    subs = tmp_path / "subs"
    subs.mkdir()
    shutil.copy(SAMPLES / "correct.ipynb", subs / "alice.ipynb")
    assert main(["grade", str(subs), "-a", "conv_bn", "--out", str(tmp_path / "r"), "--manifest",
                 str(manifest)]) == 2
    assert "line 3: submitted_at: '2099-01-01T10:00Z' is in the future" in capsys.readouterr().err


def test_pick_rules_are_spelled_one_way_and_need_a_gradebook(tmp_path, capsys):
    assert parse_pick("newest") == PickRule("newest") and str(parse_pick("name:hw3*.ipynb")) == "name:hw3*.ipynb"
    with pytest.raises(ValueError, match="write newest .* or name:GLOB"):
        parse_pick("largest")
    assert main(["grade", str(SAMPLES), "-a", "conv_bn", "--out", str(tmp_path / "r"), "--pick", "first"]) == 2
    assert "--pick 'first' is not a rule" in capsys.readouterr().err
    assert main(["grade", str(SAMPLES), "-a", "conv_bn", "--times", "mtime"]) == 2
    assert "--pick and --times need --out" in capsys.readouterr().err


def _row(submission: str, *, handed_in: float, mtime: float = 0.0, status: str = "graded"):
    from grader.classroom.gradebook import Row
    return Row(submission=submission, student_key="dana", path=submission, sha256="s", fingerprint="f",
               status=status, score=1.0, max_score=1.0, reason="", execution_time=0.0, wall_time=0.0,
               isolation="", host="", process_order=1, mtime=mtime or handed_in, graded_at="", run_id=1)


def test_the_notebook_that_counts_is_the_last_handed_in_and_a_tie_is_never_decided_by_name():
    hw3, scratch = _row("dana/hw3.ipynb", handed_in=100.0), _row("dana/scratch.ipynb", handed_in=100.0)
    tie = counted([hw3, scratch])
    assert tie.status == "ungraded" and "dana/hw3.ipynb and dana/scratch.ipynb" in tie.reason
    assert counted([hw3, scratch], "name:hw3*") is hw3
    assert counted([hw3, _row("dana/scratch.ipynb", handed_in=100.0)], "name:*.ipynb").status == "ungraded"
    newer = _row("dana/scratch.ipynb", handed_in=100.0)
    newer.mtime = 101.0
    hw3.mtime = 100.0
    assert counted([hw3, newer], "newest") is newer
    assert counted([_row("dana/v1.ipynb", handed_in=50.0), hw3]) is hw3  # times differ: the last counts


def test_modification_times_within_seconds_of_each_other_look_like_a_copy():
    assert "look like the time of a copy" in looks_copied([1000.0, 1001.5, 1003.0])
    assert looks_copied([1000.0, 1001.0]) == ""            # two files say little
    assert looks_copied([1000.0, 5000.0, 9000.0]) == ""     # handed in over hours
    lines = time_lines([HandIn("a.ipynb", 1.0, "none"), HandIn("b.ipynb", 2.0, "none")], due=True,
                       use_mtimes=False, manifest=False)
    assert len(lines) == 1 and "no hand-in times given (--manifest): no late penalty is applied" in lines[0]
    assert time_lines([HandIn("a.ipynb", 1.0, "none")], due=False, use_mtimes=False, manifest=False) == []


def test_without_a_gradebook_too_a_file_named_like_a_listed_id_is_not_reported_as_that_student(tmp_path, capsys):
    subs = tmp_path / "subs"
    subs.mkdir()
    shutil.copy(SAMPLES / "mixed.ipynb", subs / "s001.ipynb")
    roster = tmp_path / "roster.csv"
    roster.write_text("file_or_folder,student_id,name\nalice,s001,Alice\n")
    assert main(["grade", str(subs), "-a", "conv_bn", "--roster", str(roster), "--format", "json"]) == 1
    captured = capsys.readouterr()
    assert "s001.ipynb: not in the roster, and its name is the student id of alice (s001)" in captured.err
    (line,) = captured.out.splitlines()
    assert json.loads(line)["errors"] and json.loads(line)["score"] == 0
