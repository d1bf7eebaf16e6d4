"""The gradebook: what it stores, what makes a stored grade still hold, the roster, the
class files derived from it, and that a writer killed mid-transaction loses nothing
committed. No grading here: results are built by hand.
"""
from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from grader.classroom.batch import Graded
from grader.cli import main
from grader.classroom.gradebook import FAILED, GRADED, UNGRADED, Gradebook, GradebookError
from grader.classroom.outputs import FeedbackRefused, export_grades, feedback_dir
from grader.classroom.roster import Identities, RosterEntry, read_roster
from grader.results import Status, SubmissionResult, Visibility
from grader.results import TestResult as TR


class FakeAssignment:
    name = "conv_bn"
    title = "Conv and BN"
    root = Path("/nowhere/conv_bn")
    reference = Path("/nowhere/reference.py")
    exercises = ("standardize", "happyModel")
    total_points = None
    fingerprint = "f" * 16


def _result(key: str, scores=(2.0, 4.0), *, error: str = "", diagnosis: str = "") -> SubmissionResult:
    tests = [
        TR("values", "standardize", scores[0], 2.0, Status.PASSED if scores[0] == 2.0 else Status.FAILED,
           nodeid="test_standardize.py::test_values", diagnosis="" if scores[0] == 2.0 else "test_stats_leak"),
        TR("layer order", "happyModel", scores[1], 4.0, Status.PASSED if scores[1] == 4.0 else Status.FAILED,
           visibility=Visibility.HIDDEN, message="ReLU comes before BatchNormalization",
           nodeid="test_happy.py::test_layer_order", diagnosis=diagnosis),
    ]
    if error:
        return SubmissionResult(key, "conv_bn", errors=[f"{key}: {error}"])
    return SubmissionResult(key, "conv_bn", tests=tests, execution_time=0.5, isolation="full")


def _graded(key: str, result: SubmissionResult, *, sha: str = "aaa", transient: bool = False) -> Graded:
    code = {"standardize": {"source": "def standardize(a, b):\n    return a, b\n",
                            "normalized": "def standardize(v0, v1):\n    return (v0, v1)"}}
    return Graded(Path(key), result, sha256=sha, code=code, host="here:1", wall=0.6, transient=transient,
                  fingerprint=FakeAssignment.fingerprint, order=1)


@pytest.fixture
def book(tmp_path):
    b = Gradebook(tmp_path / "results")
    b.bind(FakeAssignment())
    yield b
    b.close()


def _record(book, key, result, *, student=None, sha="aaa", transient=False, mtime=1.0, run=None):
    run = run or book.start_run(fingerprint="f" * 16, command="test", backend="local", found=1, to_grade=1)
    return book.record(submission=key, student_key=student or Path(key).stem, graded=_graded(key, result, sha=sha,
                       transient=transient), run_id=run, mtime=mtime, fingerprint="f" * 16)


def test_it_is_sqlite_in_wal_mode(book):
    assert book.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in book.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"meta", "runs", "students", "submissions", "tests", "code", "gradings"} <= tables


def test_a_stored_grade_holds_while_content_and_assignment_are_unchanged(book):
    row = _record(book, "alice.ipynb", _result("alice.ipynb"))
    assert row.status == GRADED and row.score == 6.0
    assert book.is_current("alice.ipynb", "aaa", "f" * 16)
    assert not book.is_current("alice.ipynb", "bbb", "f" * 16)  # the notebook changed
    assert not book.is_current("alice.ipynb", "aaa", "0" * 16)  # the assignment changed
    assert not book.is_current("alice.ipynb", "", "f" * 16)  # unreadable now: look again
    assert not book.is_current("bob.ipynb", "aaa", "f" * 16)


def test_a_run_grades_what_is_new_or_changed_and_regrade_grades_all(book, tmp_path):
    from grader.classroom.batch import Task, file_sha256
    notebooks = {}
    for name in ("same", "changed", "new", "unlucky"):
        notebooks[name] = tmp_path / f"{name}.ipynb"
        notebooks[name].write_text(f'{{"v": "{name}"}}')
    for name in ("same", "changed", "unlucky"):
        result = _result(f"{name}.ipynb", error="the grading process died" if name == "unlucky" else "")
        _record(book, f"{name}.ipynb", result, sha=file_sha256(notebooks[name]), transient=name == "unlucky")
    notebooks["changed"].write_text('{"v": "edited"}')
    tasks = [Task(notebooks[n], f"{n}.ipynb", n) for n in ("same", "changed", "new", "unlucky")]
    todo, kept = book.split(tasks, "f" * 16)
    assert [t.key for t in todo] == ["changed.ipynb", "new.ipynb", "unlucky.ipynb"]
    assert [t.key for t in kept] == ["same.ipynb"]
    assert book.split(tasks, "0" * 16)[1] == []  # a new version of the assignment: everything again
    assert book.split(tasks, "f" * 16, regrade=True) == (tasks, [])


def test_the_submissions_fault_is_kept_but_the_graders_is_retried(book):
    ungraded = _record(book, "bad.ipynb", _result("bad.ipynb", error="is empty (0 bytes)"))
    failed = _record(book, "unlucky.ipynb", _result("unlucky.ipynb", error="the grading process died"),
                     transient=True)
    assert (ungraded.status, failed.status) == (UNGRADED, FAILED)
    assert ungraded.reason == "bad.ipynb: is empty (0 bytes)"
    assert book.is_current("bad.ipynb", "aaa", "f" * 16)
    assert not book.is_current("unlucky.ipynb", "aaa", "f" * 16)


def test_grading_again_replaces_the_row_and_appends_to_the_log(book):
    _record(book, "alice.ipynb", _result("alice.ipynb", (0.0, 0.0), diagnosis="relu_before_bn"))
    _record(book, "alice.ipynb", _result("alice.ipynb"), sha="bbb")
    assert [r.submission for r in book.rows()] == ["alice.ipynb"]
    assert book.row("alice.ipynb").score == 6.0
    assert len(list(book.tests())) == 2 and len(list(book.code())) == 1
    assert book.gradings_per_submission() == {"alice.ipynb": 2}
    restored = book.result("alice.ipynb")
    assert restored.score == 6.0 and restored.tests[1].visibility is Visibility.HIDDEN


def test_a_folder_belongs_to_one_assignment(book, tmp_path):
    class Other(FakeAssignment):
        name = "other"
    with pytest.raises(GradebookError, match="holds grades for the assignment 'conv_bn'"):
        Gradebook(tmp_path / "results").bind(Other())


def test_report_needs_an_existing_gradebook(tmp_path):
    with pytest.raises(GradebookError, match="holds no gradebook"):
        Gradebook(tmp_path / "empty", create=False)


# ---------------------------------------------------------------- roster and identity

def test_roster_columns_and_their_aliases(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("\ufeffFile_or_Folder,Student_ID,Name,email\nalice.ipynb,s001,Alice A,a@x\n"
                      "bob/,s002,Bob B,\n,ignored,,\ncarol,,Carol C,\n", encoding="utf-8")
    entries = read_roster(roster)
    assert entries == [RosterEntry("alice", "s001", "Alice A"), RosterEntry("bob", "s002", "Bob B"),
                       RosterEntry("carol", "carol", "Carol C")]
    ids = Identities(entries)
    assert ids.student_id("alice") == "s001" and ids.student_id("Alice") == "Alice"  # spelled exactly
    assert ids.student_id("dave") == "dave" and ids.name("bob") == "Bob B"


@pytest.mark.parametrize("text, message", [
    ("student_id,name\ns1,A\n", "needs a header with a file_or_folder column"),
    ("file,id\nalice,1\nalice.ipynb,2\n", "line 3: 'alice' appears twice"),
])
def test_a_bad_roster_is_a_usage_error(tmp_path, text, message):
    roster = tmp_path / "roster.csv"
    roster.write_text(text)
    with pytest.raises(GradebookError, match=message):
        read_roster(roster)


def test_one_row_per_student_latest_notebook_wins_and_absent_students_are_listed(book):
    book.set_roster([RosterEntry("alice", "s001", "Alice"), RosterEntry("zoe", "s099", "Zoe")])
    run = book.start_run(fingerprint="f" * 16, command="t", backend="local", found=3, to_grade=3)
    _record(book, "alice/draft.ipynb", _result("alice/draft.ipynb", (0.0, 0.0)), student="alice", mtime=1.0, run=run)
    _record(book, "alice/final.ipynb", _result("alice/final.ipynb"), student="alice", mtime=2.0, run=run)
    _record(book, "bob.ipynb", _result("bob.ipynb", error="is a PDF document"), run=run)
    grades = {g.student_id: g for g in book.students()}
    assert sorted(grades) == ["bob", "s001", "s099"]
    assert grades["s001"].row.submission == "alice/final.ipynb" and grades["s001"].submissions == 2
    assert grades["s001"].exercises == {"standardize": 2.0, "happyModel": 4.0}
    assert (grades["bob"].status, grades["bob"].reason) == ("not graded", "bob.ipynb: is a PDF document")
    assert (grades["s099"].status, grades["s099"].reason) == ("no submission", "no submission found")


def test_grades_csv_and_json_hold_the_same_class(book):
    book.set_roster([RosterEntry("alice", "s001", "Alice, A."), RosterEntry("zoe", "s099", "Zoe")])
    _record(book, "alice.ipynb", _result("alice.ipynb"))
    _record(book, "bob.ipynb", _result("bob.ipynb", (1.0, 0.0), diagnosis="relu_before_bn"))
    _record(book, "carl.ipynb", _result("carl.ipynb", error="ends in the middle of the JSON"))
    csv_path, json_path = export_grades(book)
    rows = list(csv.DictReader(csv_path.open()))
    assert list(rows[0]) == ["student_id", "name", "submission", "status", "standardize", "happyModel", "total",
                             "max_total", "reason"]
    by_id = {r["student_id"]: r for r in rows}
    assert by_id["s001"] == {"student_id": "s001", "name": "Alice, A.", "submission": "alice.ipynb",
                             "status": "graded", "standardize": "2", "happyModel": "4", "total": "6",
                             "max_total": "6", "reason": ""}
    assert (by_id["bob"]["standardize"], by_id["bob"]["happyModel"], by_id["bob"]["total"]) == ("1", "0", "1")
    assert by_id["carl"]["status"] == "not graded" and by_id["carl"]["total"] == ""
    assert "ends in the middle of the JSON" in by_id["carl"]["reason"]
    assert by_id["s099"]["status"] == "no submission"
    document = json.loads(json_path.read_text())
    assert document["exercises"] == [{"name": "standardize", "max_score": 2.0}, {"name": "happyModel", "max_score": 4.0}]
    students = {s["student_id"]: s for s in document["students"]}
    assert students.keys() == by_id.keys()
    assert students["bob"]["scores"] == {"standardize": 1.0, "happyModel": 0.0} and students["bob"]["total"] == 1.0
    assert students["carl"]["scores"] == {"standardize": None, "happyModel": None}
    # every student with a submission has feedback, the student's view of it
    for student in ("s001", "bob", "carl"):
        folder = feedback_dir(book.folder, student)
        assert {p.name for p in folder.iterdir()} == {"feedback.html", "feedback.md", "results.json"}
    gradescope = json.loads((feedback_dir(book.folder, "bob") / "results.json").read_text())
    assert gradescope["score"] == 1.0 and len(gradescope["tests"]) == 2
    md = (feedback_dir(book.folder, "bob") / "feedback.md").read_text()
    assert "ReLU comes before" not in md  # a hidden test's details stay hidden from the student


def test_feedback_folders_are_the_ids_themselves_or_refused(tmp_path):
    assert feedback_dir(tmp_path, "alice.smith") == tmp_path / "feedback" / "alice.smith"
    assert feedback_dir(tmp_path, "Zoë O'Neil") == tmp_path / "feedback" / "Zoë O'Neil"
    for bad, why in [("../../etc/passwd", "path separator"), ("a b/c", "path separator"), ("..", "folder itself"),
                     ("alice.", "ends with a dot"), ("alice ", "ends with a space"), (" alice", "begins"),
                     ("a\x00b", "NUL"), ("a\x1b]0;pwned\x07", "control characters"), (".hidden", "hidden"),
                     ("e\u0301", "NFC"), ("CON", "reserved"), ("x" * 200, "longer than"), ("a:b", "Windows")]:
        with pytest.raises(FeedbackRefused, match=why):
            feedback_dir(tmp_path, bad)


# ---------------------------------------------------------------- crash safety

KILLER = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from test_gradebook import FakeAssignment, _record, _result
    from grader.classroom.gradebook import Gradebook
    book = Gradebook(Path({folder!r}))
    book.bind(FakeAssignment())
    for i in range(5):
        _record(book, f"s{{i}}.ipynb", _result(f"s{{i}}.ipynb"))
    book.db.execute("BEGIN IMMEDIATE")
    book.db.execute("DELETE FROM tests")
    book.db.execute("INSERT INTO gradings (submission, sha256, fingerprint, run_id, status, score, graded_at) "
                    "VALUES ('half', '', '', 1, 'graded', 0, '')")
    os.kill(os.getpid(), signal.SIGKILL)
""")


def test_a_writer_killed_mid_transaction_loses_nothing_committed(tmp_path):
    folder = tmp_path / "results"
    script = KILLER.format(tests=str(Path(__file__).parent), folder=str(folder))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    book = Gradebook(folder, create=False)
    assert book.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert [r.submission for r in book.rows()] == [f"s{i}.ipynb" for i in range(5)]
    assert len(list(book.tests())) == 10
    assert sum(book.gradings_per_submission().values()) == 5
    book.close()


# ---------------------------------------------------------------- CLI usage errors (exit 2)

def test_cli_usage_errors(tmp_path, capsys):
    nb = tmp_path / "a.ipynb"
    nb.write_text("{}")
    assert main(["grade", str(nb), "-a", "conv_bn", "--regrade"]) == 2
    assert "--regrade needs --out" in capsys.readouterr().err
    (tmp_path / "roster.csv").write_text("nothing,useful\n")
    assert main(["grade", str(nb), "-a", "conv_bn", "--roster", str(tmp_path / "roster.csv")]) == 2
    assert "file_or_folder" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "nothing here")]) == 2
    assert "holds no gradebook" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["grade", str(nb), "-a", "conv_bn", "--format", "yaml"])
    assert exc.value.code == 2
