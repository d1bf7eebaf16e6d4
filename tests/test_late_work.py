"""Late work: the spec's due date and [late] policy, each student's extension from the
roster, and each submission's time (a manifest's, or the file's modification time when
the instructor asks for it with --times mtime), applied to real graded notebooks; the penalty shows in grades.csv, grades.json and the
student's feedback. Then the policy itself, as pure functions.

Three sample notebooks are graded once, under a copy of conv_bn with a due date; later
runs change only what is not graded (roster, manifest, policy), so nothing is regraded.
"""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import REPO, SAMPLES
from grader.classroom.final import LATE_NAME, Decisions, final_grade
from grader.classroom.gradebook import Gradebook
from grader.classroom.manifest import ManifestError, parse_submission_time, read_manifest
from grader.cli import main
from grader.assignment.late import LatePolicy, late_problems, lateness, parse_time, policy_from_dict, policy_from_spec
from grader.results import Status, SubmissionResult, TestResult

DUE = "2026-12-04T23:59:00+01:00"
DUE_UTC = datetime(2026, 12, 4, 22, 59, tzinfo=timezone.utc)
LATE = "\n[late]\nper_day = 10\ncap = 30\ngrace_minutes = {grace}\n"


def _assignment(folder: Path, grace: int = 15) -> Path:
    """A copy of conv_bn with a due date and a late policy (its reference found where it is)."""
    shutil.copytree(REPO / "assignments" / "conv_bn", folder,
                    ignore=shutil.ignore_patterns("samples", "source", "release", "__pycache__"))
    spec = (folder / "assignment.toml").read_text()
    reference = (REPO / "reference" / "conv_bn.py").as_posix()
    spec, n = re.subn(r'(?m)^reference = .*$', f'reference = "{reference}"\ndue = "{DUE}"', spec)
    assert n == 1  # `due` sits among the top-level keys, before any [table]
    (folder / "assignment.toml").write_text(spec + LATE.format(grace=grace))
    return folder


def _stamp(path: Path, when: datetime) -> None:
    os.utime(path, (when.timestamp(), when.timestamp()))


@pytest.fixture(scope="module")
def late_class(tmp_path_factory):
    """alice (correct, 23) 10 minutes late: inside the 15-minute grace. bob (mixed, 12) 2 days
    and 5 hours late, with a 2-day extension: 1 day begun, 10%. carol (relu_before_bn, 16),
    whose own due date is Dec 5 (a date alone: that day's end, on the course's clock),
    hands in on Dec 14: 9 days begun, 90%, capped at 30%. The files' modification times
    are the hand-in times here, as the run is told with --times mtime."""
    root = tmp_path_factory.mktemp("late")
    assignment = _assignment(root / "late_bn")
    subs = root / "submissions"
    subs.mkdir()
    for student, sample, late_by in (("alice", "correct", timedelta(minutes=10)),
                                     ("bob", "mixed", timedelta(days=2, hours=5)),
                                     ("carol", "relu_before_bn", None)):
        shutil.copy(SAMPLES / f"{sample}.ipynb", subs / f"{student}.ipynb")
        _stamp(subs / f"{student}.ipynb", DUE_UTC + late_by if late_by else
               datetime(2026, 12, 14, 12, 0, tzinfo=timezone.utc))
    roster = root / "roster.csv"
    roster.write_text("file_or_folder,student_id,name,extension\nalice,s1,Alice,\nbob,s2,Bob,2\n"
                      "carol,s3,Carol,2026-12-05\n")
    results = root / "results"
    assert main(["grade", str(subs), "-a", str(assignment), "--out", str(results), "--roster", str(roster),
                 "-j", "1", "--times", "mtime"]) == 0
    return root


def _grades(results: Path) -> dict[str, dict]:
    with open(results / "grades.csv", newline="", encoding="utf-8") as f:
        return {r["student_id"]: r for r in csv.DictReader(f)}


def _rerun(root: Path, results: Path, *extra: str, assignment: Path | None = None) -> int:
    return main(["grade", str(root / "submissions"), "-a", str(assignment or root / "late_bn"), "--out",
                 str(results), "--roster", str(root / "roster.csv"), *extra])


# ---------------------------------------------------------------- real notebooks

def test_penalties_in_grades_csv_per_day_grace_cap_and_both_kinds_of_extension(late_class):
    grades = _grades(late_class / "results")
    assert "late_penalty" in next(iter(grades.values()))
    assert [float(grades[s]["late_penalty"]) for s in ("s1", "s2", "s3")] == [0.0, 1.2, 4.8]
    assert [float(grades[s]["total"]) for s in ("s1", "s2", "s3")] == [23.0, 10.8, 11.2]


def test_grades_json_says_when_each_was_due_and_handed_in(late_class):
    document = json.loads((late_class / "results" / "grades.json").read_text())
    assert document["late_policy"] == {"due": "2026-12-04T23:59:00+01:00", "per_day": 10.0, "cap": 30.0,
                                       "grace_minutes": 15.0}
    late = {s["student_id"]: s["late"] for s in document["students"]}
    assert (late["s1"]["days_late"], late["s1"]["percent"], late["s1"]["penalty"]) == (0, 0.0, 0.0)
    assert late["s1"]["submitted"] == "2026-12-04T23:09:00+00:00"  # the file's modification time
    assert late["s2"]["due"] == "2026-12-06T23:59:00+01:00"       # two days' extension
    assert (late["s2"]["days_late"], late["s2"]["percent"], late["s2"]["penalty"]) == (1, 10.0, 1.2)
    assert late["s3"]["due"] == "2026-12-05T23:59:59+01:00"       # their own date, the course's clock
    assert (late["s3"]["days_late"], late["s3"]["percent"], late["s3"]["penalty"]) == (9, 30.0, 4.8)


def test_the_student_reads_the_penalty_and_why_in_their_feedback(late_class):
    feedback = late_class / "results" / "feedback"
    md = (feedback / "s2" / "feedback.md").read_text()
    assert LATE_NAME in md
    assert ("Submitted 2026-12-07 04:59 UTC+01:00, 1 day after the deadline (2026-12-06 23:59 UTC+01:00): "
            "10% of the points earned are deducted.") in md.replace("\\", "")
    assert "days after the deadline" in (feedback / "s3" / "feedback.html").read_text()
    gradescope = json.loads((feedback / "s2" / "results.json").read_text())
    assert gradescope["score"] == pytest.approx(10.8)
    entry = next(t for t in gradescope["tests"] if t["name"] == LATE_NAME)
    assert entry["score"] == pytest.approx(-1.2) and "10% of the points earned" in entry["output"]
    assert LATE_NAME not in (feedback / "s1" / "feedback.md").read_text()  # within the grace: nothing to say


def test_a_manifest_time_replaces_the_files_and_stays_without_regrading(late_class, tmp_path, capsys):
    results = tmp_path / "results"
    shutil.copytree(late_class / "results", results)
    manifest = tmp_path / "times.csv"
    manifest.write_text("file_or_folder,submitted_at\nbob,2026-12-04T20:00:00+01:00\n"
                        "dave,2026-12-04T20:00:00Z\n"
                        "carol.ipynb,2026-12-06 10:00\n")   # no offset: UTC, 1 day after her own date
    assert _rerun(late_class, results, "--manifest", str(manifest)) == 0
    err = capsys.readouterr().err
    assert ("no time in the manifest for 1 notebook (no late penalty is applied to them: a file's modification "
            "time is not trusted") in err and err.rstrip().count("alice.ipynb") >= 1
    assert "in the manifest but not among the submissions: dave" in err
    grades = _grades(results)
    assert float(grades["s2"]["late_penalty"]) == 0 and float(grades["s2"]["total"]) == 12
    assert float(grades["s3"]["late_penalty"]) == 1.6 and float(grades["s3"]["total"]) == 14.4
    with Gradebook(results, create=False) as book:
        assert set(book.gradings_per_submission().values()) == {1}  # nothing was graded again
        assert book.row("bob.ipynb").submitted_at == "2026-12-04T20:00:00+01:00"
    assert _rerun(late_class, results) == 0  # the next run without the manifest keeps its times
    assert float(_grades(results)["s3"]["total"]) == 14.4
    assert LATE_NAME not in (results / "feedback" / "s2" / "feedback.md").read_text()  # on time now


def test_changing_the_policy_regrades_nothing_and_moves_the_penalties(late_class, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(late_class / "results", results)
    stricter = _assignment(tmp_path / "late_bn", grace=5)  # alice's 10 minutes are now a day begun
    assert _rerun(late_class, results, "--times", "mtime", assignment=stricter) == 0
    grades = _grades(results)
    assert float(grades["s1"]["late_penalty"]) == 2.3 and float(grades["s1"]["total"]) == 20.7
    assert float(grades["s2"]["total"]) == 10.8
    with Gradebook(results, create=False) as book:
        assert set(book.gradings_per_submission().values()) == {1}


@pytest.mark.parametrize("text, message", [
    ("student,when\nbob,2026-12-04T20:00\n", "needs a header with a file_or_folder (or submission) column"),
    ("file_or_folder,submitted_at\nbob,yesterday\n", "line 2: submitted_at: 'yesterday' is not a date and time"),
    ("file_or_folder,submitted_at\nbob,2026-12-04T20:00\n\nbob,2026-12-05T20:00\n",
     "line 4: 'bob' already has a time on line 2"),
    ("file_or_folder,submitted_at\nbob,2026-12-04\n", "line 2: submitted_at: '2026-12-04' is a date without a time"),
    ("file_or_folder,submitted_at\nbob,\n", "line 2: submitted_at: the time is empty"),
    ("file_or_folder,submitted_at\n,2026-12-04T20:00\n", "line 2: names no submission"),
])
def test_a_bad_manifest_is_a_usage_error_naming_the_line(late_class, tmp_path, capsys, text, message):
    manifest = tmp_path / "times.csv"
    manifest.write_text(text)
    assert _rerun(late_class, tmp_path / "results", "--manifest", str(manifest)) == 2
    err = capsys.readouterr().err
    assert message in err and str(manifest) in err
    assert not (tmp_path / "results").exists()  # refused before anything was written


def test_a_manifest_needs_a_gradebook(late_class, tmp_path, capsys):
    manifest = tmp_path / "times.csv"
    manifest.write_text("file_or_folder,submitted_at\nbob,2026-12-04T20:00Z\n")
    assert main(["grade", str(late_class / "submissions"), "-a", "conv_bn", "--manifest", str(manifest)]) == 2
    assert "--manifest needs --out" in capsys.readouterr().err


# ---------------------------------------------------------------- the policy, pure

POLICY = LatePolicy(due=parse_time(DUE), per_day=10, cap=30, grace_minutes=15)


def test_times_without_an_offset_are_utc_and_a_date_alone_is_the_days_end():
    assert parse_time("2026-12-04T23:59:00+01:00") == DUE_UTC
    assert parse_time("2026-12-04T22:59") == DUE_UTC and parse_time("2026-12-04T22:59Z") == DUE_UTC
    assert parse_time("2026-12-04") == datetime(2026, 12, 4, 23, 59, 59, tzinfo=timezone.utc)
    plus_one = timezone(timedelta(hours=1))
    assert parse_time("2026-12-04", zone=plus_one) == datetime(2026, 12, 4, 23, 59, 59, tzinfo=plus_one)
    with pytest.raises(ValueError, match="not a date and time such as 2026-12-04T23:59:00"):
        parse_time("Dec 4")
    assert parse_submission_time("2026-12-04 20:00") == "2026-12-04T20:00:00+00:00"


@pytest.mark.parametrize("after, days, percent", [
    (timedelta(0), 0, 0.0),                                # at the deadline: on time
    (timedelta(minutes=15), 0, 0.0),                       # the last second of the grace
    (timedelta(minutes=15, seconds=1), 1, 10.0),           # past the grace: a day begun, from the deadline
    (timedelta(hours=24), 1, 10.0),
    (timedelta(hours=24, seconds=1), 2, 20.0),
    (timedelta(days=3), 3, 30.0),
    (timedelta(days=9), 9, 30.0),                          # capped
    (-timedelta(days=1), 0, 0.0),                          # early
])
def test_days_begun_after_the_deadline_with_grace_and_cap(after, days, percent):
    late = lateness(POLICY, DUE_UTC + after)
    assert (late.days_late, late.percent, late.late) == (days, percent, days > 0)


def test_the_same_instant_in_another_time_zone_is_the_same_lateness():
    tokyo = timezone(timedelta(hours=9))
    a = lateness(POLICY, datetime(2026, 12, 5, 8, 0, tzinfo=tokyo))  # 23:00 UTC: 1 minute late, in grace
    b = lateness(POLICY, datetime(2026, 12, 4, 23, 0, tzinfo=timezone.utc))
    assert a.days_late == b.days_late == 0
    late = lateness(POLICY, datetime(2026, 12, 5, 20, 0, tzinfo=tokyo))  # 11:00 UTC
    assert late.describe() == ("Submitted 2026-12-05 12:00 UTC+01:00, 1 day after the deadline "
                               "(2026-12-04 23:59 UTC+01:00): 10% of the points earned are deducted.")


def test_extensions_in_days_or_as_a_date_on_the_courses_clock():
    submitted = DUE_UTC + timedelta(days=1, hours=11)
    assert lateness(POLICY, submitted, extension_days=1.5).days_late == 0
    assert lateness(POLICY, submitted, extension_days=1).days_late == 1
    assert POLICY.due_for(own_due="2026-12-05").isoformat() == "2026-12-05T23:59:59+01:00"
    assert POLICY.due_for(own_due="2026-12-05T12:00Z").isoformat() == "2026-12-05T12:00:00+00:00"
    assert POLICY.due_for(extension_days=3, own_due="2026-12-05").day == 5  # their own date wins
    assert lateness(POLICY, submitted, own_due="2026-12-05").days_late == 1  # 09:59 UTC on the 6th


def test_a_due_date_without_a_policy_marks_late_work_without_deducting():
    policy = policy_from_spec("2026-12-04", None)
    late = lateness(policy, datetime(2026, 12, 6, tzinfo=timezone.utc))
    assert late.late and late.percent == 0 and late.penalty(20) == 0
    assert late.describe().endswith("2 days after the deadline (2026-12-04 23:59 UTC): no points are deducted "
                                    "for it.")
    result = SubmissionResult("a.ipynb", "x", tests=[TestResult("t", "ex", 4.0, 4.0, Status.PASSED, nodeid="t")])
    final = final_grade(result, Decisions(policy=policy, submitted=late.submitted))
    entry = next(t for t in final.result.tests if t.name == LATE_NAME)
    assert entry.score == 0.0 and str(entry.score) == "0.0" and final.total == 4.0


def test_the_penalty_is_a_share_of_what_was_earned():
    result = SubmissionResult("a.ipynb", "x", tests=[TestResult("t", "ex", 12.0, 23.0, Status.FAILED, nodeid="t")])
    final = final_grade(result, Decisions(policy=POLICY, submitted=DUE_UTC + timedelta(hours=30)))
    assert final.penalty == 2.4 and final.total == 9.6 and final.max_total == 23.0
    assert result.score == 12.0  # the autograded result itself is left alone


def test_the_policy_survives_the_gradebook_and_bad_specs_say_what_to_write():
    assert policy_from_dict(POLICY.to_dict()) == POLICY and policy_from_dict(None) is None
    assert late_problems(DUE, {"per_day": 10, "cap": 120}) == ["[late] `cap` is a percentage: at most 100, not 120"]
    assert late_problems(None, {"per_day": 10}) == ["[late] needs a `due` date to count from"]
    assert "unknown key `grace`" in late_problems(DUE, {"grace": 5})[0]
    assert "must be a number of at least 0" in late_problems(DUE, {"per_day": -1})[0]
    assert late_problems("soon", None)[0].startswith("`due`: 'soon' is not a date and time")


def test_the_manifests_time_decides_which_notebook_is_handed_in_last():
    from grader.classroom.gradebook import Row
    common = dict(student_key="alice", path="p", sha256="s", fingerprint="f", status="graded", score=1.0,
                  max_score=1.0, reason="", execution_time=0.0, wall_time=0.0, isolation="", host="",
                  process_order=1, graded_at="", run_id=1)
    downloaded = DUE_UTC.timestamp() + 86400 * 30  # every file's time is the download's
    first = Row(submission="alice/v1.ipynb", mtime=downloaded + 1, submitted_at="2026-12-05T10:00:00+00:00", **common)
    second = Row(submission="alice/v2.ipynb", mtime=downloaded, submitted_at="2026-12-06T10:00:00+00:00", **common)
    assert max((first, second), key=lambda r: r.handed_in) is second
    assert Row(submission="x", mtime=5.0, **common).handed_in == 5.0
