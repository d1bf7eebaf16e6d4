"""`grader export grades`: the course's gradebook for an LMS, from real results folders.

Two assignments are graded once for the module: conv_bn (alice correct, bob mixed, with the
roster's ids) and a copy named week2 with a late policy (alice's relu_before_bn, a day
late, graded without a roster; bob hands in nothing). An override on bob's conv_bn and
alice's late penalty must reach the export; carol is in the roster and handed in nothing.
"""
from __future__ import annotations

import csv
import io
import os
import re
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import REPO, SAMPLES
from grader.classroom.gradebook import Gradebook
from grader.classroom.overrides import record_override
from grader.cli import main
from grader.export.grades import (AssignmentGrades, Cell, CanvasTemplate, Student, canvas_csv, grade_table,
                                  merge, ExportError)

BN_MATCHES = "batchnorm_forward · matches Keras BatchNormalization(training=True)"  # mixed: 0 of 3
WEEK2_TITLE = "Week 2 retake"
EVIL = "=cmd|' /C calc'!A0"


def _week2(folder: Path) -> Path:
    shutil.copytree(REPO / "assignments" / "conv_bn", folder,
                    ignore=shutil.ignore_patterns("samples", "source", "release", "__pycache__"))
    spec = (folder / "assignment.toml").read_text()
    spec = re.sub(r'(?m)^name = .*$', 'name = "week2"', spec)
    spec = re.sub(r'(?m)^title = .*$', f'title = "{WEEK2_TITLE}"', spec)
    spec = re.sub(r'(?m)^reference = .*$', f'reference = "{(REPO / "reference" / "conv_bn.py").as_posix()}"\n'
                                          f'due = "2026-12-04T23:59:00Z"', spec)
    (folder / "assignment.toml").write_text(spec + "\n[late]\nper_day = 10\n")
    return folder


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    (root / "conv_bn_subs").mkdir()
    shutil.copy(SAMPLES / "correct.ipynb", root / "conv_bn_subs" / "alice.ipynb")
    shutil.copy(SAMPLES / "mixed.ipynb", root / "conv_bn_subs" / "bob.ipynb")
    (root / "grading_roster.csv").write_text("file_or_folder,student_id,name\nalice,s1,Alice\nbob,s2,Bob\n")
    assert main(["grade", str(root / "conv_bn_subs"), "-a", "conv_bn", "--out", str(root / "conv_bn"),
                 "--roster", str(root / "grading_roster.csv"), "-j", "1"]) == 0
    record_override(root / "conv_bn", "s2", BN_MATCHES, 1.5, "right idea, one slip", "prof")

    (root / "week2_subs").mkdir()
    late = root / "week2_subs" / "alice.ipynb"
    shutil.copy(SAMPLES / "relu_before_bn.ipynb", late)
    when = datetime(2026, 12, 5, 10, 0, tzinfo=timezone.utc).timestamp()  # 11 hours late: 10%
    os.utime(late, (when, when))
    assert main(["grade", str(root / "week2_subs"), "-a", str(_week2(root / "week2_spec")), "--out",
                 str(root / "week2"), "-j", "1", "--times", "mtime"]) == 0  # no roster: alice is "alice" here;
    # --times mtime: her file's modification time (set above) is her hand-in time
    (root / "roster.csv").write_text(
        "file_or_folder,student_id,name,email\n"
        "alice,s1,Alice,alice@uni.edu\n"
        f"bob,s2,\"{EVIL}\",bob@uni.edu\n"
        "carol,s3,Carol,\n")
    return root


def _read(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))


def _export(course: Path, tmp_path: Path, *args: str, folders=("conv_bn", "week2")) -> tuple[int, Path]:
    out = tmp_path / "export.csv"
    code = main(["export", "grades", *(str(course / f) for f in folders), "--out", str(out), *args])
    return code, out


def _written_points(course: Path) -> float:
    with Gradebook(course / "conv_bn", create=False) as book:
        return sum(q.points for q in book.questions())


# ---------------------------------------------------------------- csv

def test_one_row_per_roster_student_one_column_per_assignment_final_totals(course, tmp_path, capsys):
    code, out = _export(course, tmp_path, "--format", "csv", "--roster", str(course / "roster.csv"))
    assert code == 0
    rows = _read(out)
    assert rows[0] == ["student_id", "name", "conv_bn", "week2"]
    by_id = {r[0]: r for r in rows[1:]}
    assert list(by_id) == ["s1", "s2", "s3"]                   # the roster's order
    assert by_id["s1"][2:] == ["23", "14.4"]                   # week2: 16 less the 10% late penalty
    assert by_id["s2"][2:] == ["13.5", ""]                     # 12 + the override; nothing handed in
    assert by_id["s3"][2:] == ["", ""]                         # empty, not 0: no grade yet
    assert by_id["s2"][1] == "'" + EVIL                        # a formula stays text
    captured = capsys.readouterr()
    assert f"wrote {out}: 3 students, conv_bn (of {23 + _written_points(course):g}), week2 (of" in captured.out


def test_the_totals_are_those_of_grades_csv(course, tmp_path):
    code, out = _export(course, tmp_path, "--format", "csv", folders=("conv_bn",))
    assert code == 0
    with open(course / "conv_bn" / "grades.csv", newline="") as f:
        expected = {r["student_id"]: r["total"] for r in csv.DictReader(f)}
    assert {r[0]: r[2] for r in _read(out)[1:]} == expected


def test_missing_as_zero_and_no_roster(course, tmp_path):
    code, out = _export(course, tmp_path, "--format", "csv", "--roster", str(course / "roster.csv"),
                        "--missing-as-zero")
    assert code == 0
    by_id = {r[0]: r for r in _read(out)[1:]}
    assert by_id["s2"][3] == "0" and by_id["s3"][2:] == ["0", "0"]
    code, out = _export(course, tmp_path, "--format", "csv")  # no roster: whoever the folders know
    assert code == 0
    assert [r[0] for r in _read(out)[1:]] == ["alice", "s1", "s2"]  # week2 knows alice only by her file


def test_warnings_name_what_needs_a_person_before_upload(course, tmp_path, capsys):
    assert _export(course, tmp_path, "--format", "csv")[0] == 0
    err = capsys.readouterr().err
    if _written_points(course):
        assert re.search(r"conv_bn: \d+ written answers not scored yet, counted as 0: score them first "
                         r"\(`grader review .*conv_bn`\)", err)
    roster = tmp_path / "partial.csv"
    roster.write_text("student_id,name\ns2,Bob\n")
    assert _export(course, tmp_path, "--format", "csv", "--roster", str(roster))[0] == 0
    err = capsys.readouterr().err
    assert "graded but not in the roster" in err and "alice, s1" in err  # exported anyway, and said


# ---------------------------------------------------------------- canvas

def test_canvas_layout_with_points_possible_and_a_known_column(course, tmp_path, capsys):
    code, out = _export(course, tmp_path, "--format", "canvas", "--roster", str(course / "roster.csv"),
                        "--canvas-column", "conv_bn=Conv and BN (81234)")
    assert code == 0
    rows = _read(out)
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Conv and BN (81234)", WEEK2_TITLE]
    assert rows[1][0] == "    Points Possible" and rows[1][5] == f"{23 + _written_points(course):g}"
    assert rows[2] == ["Alice", "", "s1", "", "", "23", "14.4"]
    assert rows[3][:3] == ["'" + EVIL, "", "s2"] and rows[4] == ["Carol", "", "s3", "", "", "", ""]
    err = capsys.readouterr().err
    assert "Canvas has no column for week2" in err and "creates a new assignment 'Week 2 retake'" in err
    code, out = _export(course, tmp_path, "--format", "canvas", "--roster", str(course / "roster.csv"),
                        "--canvas-id", "sis_login_id")
    assert code == 0 and _read(out)[2][:4] == ["Alice", "", "", "s1"]


def test_canvas_template_gives_identities_and_headers(course, tmp_path, capsys):
    template = tmp_path / "canvas_export.csv"
    template.write_text(
        "Student,ID,SIS User ID,SIS Login ID,Section,Conv and BN (81234),Week 2 retake (81300),Current Score\n"
        "    Points Possible,,,,,28,28,(read only)\n"
        "\"Ames, Alice\",1001,s1,aames,DL-01,,,\n"
        "\"Bell, Bob\",1002,s2,bbell,DL-02,,,\n"
        "\"Student, Test\",1999,,,DL-01,,,\n")
    code, out = _export(course, tmp_path, "--format", "canvas", "--roster", str(course / "roster.csv"),
                        "--template", str(template), "--canvas-column", "conv_bn=81234")  # week2: by its title
    assert code == 0
    rows = _read(out)
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Conv and BN (81234)",
                       "Week 2 retake (81300)"]
    assert rows[2] == ["Ames, Alice", "1001", "s1", "aames", "DL-01", "23", "14.4"]
    assert rows[3] == ["Bell, Bob", "1002", "s2", "bbell", "DL-02", "13.5", ""]
    assert len(rows) == 4
    assert "s3 is not in the Canvas template: left out" in capsys.readouterr().err


# ---------------------------------------------------------------- moodle

def test_moodle_layout_identifies_users_by_a_roster_column(course, tmp_path, capsys):
    code, out = _export(course, tmp_path, "--format", "moodle", "--roster", str(course / "roster.csv"),
                        "--moodle-id", "email")
    assert code == 0
    rows = _read(out)
    with Gradebook(course / "conv_bn", create=False) as book:
        title = book.meta("title")
    assert rows[0] == ["email", "name", title, WEEK2_TITLE]
    assert rows[1] == ["alice@uni.edu", "Alice", "23", "14.4"]
    assert rows[2] == ["bob@uni.edu", "'" + EVIL, "13.5", ""]
    assert len(rows) == 3
    assert "s3 has no email in the roster: left out" in capsys.readouterr().err
    code, out = _export(course, tmp_path, "--format", "moodle", "--roster", str(course / "roster.csv"))
    assert code == 0 and [r[0] for r in _read(out)] == ["student_id", "s1", "s2", "s3"]


# ---------------------------------------------------------------- refused, with the fix

@pytest.mark.parametrize("args, message", [
    (["--format", "moodle", "--moodle-id", "email"], "--moodle-id email is read from the roster: give --roster"),
    (["--format", "moodle", "--moodle-id", "phone", "--roster", "{roster}"], "has no 'phone' column"),
    (["--format", "canvas", "--canvas-column", "conv_bn"], "--canvas-column takes NAME=HEADER"),
    (["--format", "canvas", "--canvas-column", "week9=X (1)"], "names 'week9', which none of the results"),
    (["--format", "canvas", "--template", "{roster}"], "not a Canvas gradebook export"),
])
def test_what_cannot_be_exported_is_a_usage_error(course, tmp_path, capsys, args, message):
    args = [a.replace("{roster}", str(course / "roster.csv")) for a in args]
    code, out = _export(course, tmp_path, *args)
    assert code == 2 and message in capsys.readouterr().err
    assert not out.exists()


def test_a_folder_without_a_gradebook_or_a_student_graded_twice_is_refused(course, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert _export(course, tmp_path, "--format", "csv", folders=("conv_bn", str(tmp_path / "empty")))[0] == 2
    assert "holds no gradebook" in capsys.readouterr().err
    shutil.copytree(course / "conv_bn", tmp_path / "conv_bn_again")
    assert _export(course, tmp_path, "--format", "csv", folders=("conv_bn", str(tmp_path / "conv_bn_again")))[0] == 2
    assert "has a grade for conv_bn in both" in capsys.readouterr().err


# ---------------------------------------------------------------- pure parts

def _a(name, totals, **kw):
    return AssignmentGrades(Path(name), name, name.title(), 10.0, totals, {k: "" for k in totals}, {}, **kw)


def test_two_sections_of_one_assignment_merge_into_one_column():
    merged = merge([_a("hw1", {"a": 3.0}), _a("hw2", {"a": 4.0}), _a("hw1", {"b": 5.0})])
    assert [m.name for m in merged] == ["hw1", "hw2"] and merged[0].totals == {"a": 3.0, "b": 5.0}
    with pytest.raises(ExportError, match="has a grade for hw1 in both"):
        merge([_a("hw1", {"a": 3.0}), _a("hw1", {"a": 4.0})])


def test_template_cells_are_defused_too():
    template = CanvasTemplate(("Student", "ID", "SIS User ID", "Section"),
                              [{"Student": "@SUM(1)", "ID": "+1", "SIS User ID": "a", "Section": "-2+3"}], [])
    students = [Student("a")]
    assignments = [_a("hw1", {"a": 7.25})]
    written = canvas_csv(students, assignments, grade_table(students, assignments), columns={}, template=template)
    # Free text defused; Canvas's identifiers exactly as its own export had them.
    assert _read_text(written.text)[2] == ["'@SUM(1)", "+1", "a", "'-2+3", "7.25"]
    assert grade_table([Student("z")], assignments, missing_as_zero=True) == [[Cell(0.0, True)]]


def _read_text(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_numbers_are_plain_decimals_and_a_broken_roster_names_its_line(course, tmp_path, capsys):
    from grader.export.grades import _number
    assert [_number(x) for x in (23.0, 14.4, -0.0, 1234567.0, 1 / 3)] == ["23", "14.4", "0", "1234567", "0.3333"]
    roster = tmp_path / "roster.csv"
    roster.write_text("file_or_folder,student_id\nalice,s1\n\nalice,s9\n")
    assert _export(course, tmp_path, "--format", "csv", "--roster", str(roster))[0] == 2
    assert "line 4: 'alice' appears twice" in capsys.readouterr().err


IDS = ("-s001", "+4477", "@alice", "=s9")


@pytest.mark.parametrize("fmt", ["csv", "moodle", "canvas"])
def test_identifiers_keep_their_exact_value_and_only_free_text_is_defused(fmt, course, tmp_path, capsys):
    """An apostrophe in front of `-s001` makes that student unknown to the LMS's import: ids
    are written exactly (and named in a warning), names stay defused."""
    roster = tmp_path / "roster.csv"
    roster.write_text("file_or_folder,student_id,name,email\n"
                      + "".join(f"x{i},{sid},{EVIL},{sid}@uni.edu\n" for i, sid in enumerate(IDS)))
    args = ["--format", fmt, "--roster", str(roster)] + (["--moodle-id", "email"] if fmt == "moodle" else [])
    code, out = _export(course, tmp_path, *args, folders=("conv_bn",))
    assert code == 0
    rows = _read(out)
    captured = capsys.readouterr()
    # (s1 and s2, graded but not in this roster, follow as strangers)
    if fmt == "csv":
        assert [r[:2] for r in rows[1:5]] == [[sid, "'" + EVIL] for sid in IDS]
    elif fmt == "moodle":
        assert [r[:2] for r in rows[1:5]] == [[f"{sid}@uni.edu", "'" + EVIL] for sid in IDS]
    else:
        header = rows[0]
        sis, student = header.index("SIS User ID"), header.index("Student")
        assert [(r[student], r[sis]) for r in rows[2:6]] == [("'" + EVIL, sid) for sid in IDS]
    for sid in IDS if fmt != "moodle" else [i for i in IDS if i[0] in "-+@="]:
        shown = sid if fmt != "moodle" else f"{sid}@uni.edu"
        if shown[0] in "-+@=":
            assert f"{shown} starts with" in captured.err
