"""Class grading holds with hostile names and files (issue 13): a submission that stalls
the grading process costs only itself, two names never share a feedback folder, links
are refused unread, names reach terminals and spreadsheets defused, and a class graded
for real fills the report's mistakes and similarity sections.

Grading runs in `grader` subprocesses or in the supervisor's own grading processes, so
this test process never imports TensorFlow.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from conftest import notebook
from generated_class import GRADER, ROOT, generate, processes_with_marker
from grader.classroom.names import csv_cell, printable
from grader.classroom.gradebook import Gradebook
from grader.classroom.outputs import FeedbackRefused, export_grades, feedback_for
from grader.classroom.roster import Identities, RosterEntry
from grader.results import Status, SubmissionResult, TestResult

MASTER = ROOT / "assignments" / "conv_bn" / "source" / "conv_bn.ipynb"
ESC = "\x1b"


# ---------------------------------------------------------------- a budget per submission

PROBE_TESTS = '''
import time
from grader.testing import exercise, points

pytestmark = exercise("standardize")


@points(1)
def test_standardize_is_there(submission):
    source = submission.source("standardize")
    if "SLOW_TO_ANALYSE" in source:
        time.sleep(3600)  # stands for an analysis that never ends (a walk that explodes)
    assert "return" in source
'''


def _probe_assignment(folder: Path, budget: float) -> Path:
    """A one-test assignment whose test stalls the grading process on a marked notebook:
    honest notebooks take a second, the marked one would take an hour."""
    (folder / "tests").mkdir(parents=True)
    (folder / "tests" / "test_probe.py").write_text(PROBE_TESTS)
    (folder / "reference.py").write_text("def standardize(X_train, X_test):\n    return X_train, X_test\n")
    (folder / "assignment.toml").write_text(f'name = "probe"\nexercises = ["standardize"]\n'
                                            f'reference = "reference.py"\ngrading_timeout = {budget}\n')
    return folder


def _probe_notebook(path: Path, slow: bool = False) -> Path:
    marker = "    marker = 'SLOW_TO_ANALYSE'\n" if slow else ""
    return notebook(path, f"def standardize(X_train, X_test):\n{marker}    return X_train, X_test\n")


def _run(args, env=None, timeout=600):
    return subprocess.run([GRADER, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)


@pytest.mark.slow
def test_a_submission_over_budget_is_stopped_and_the_ones_queued_behind_it_are_graded(tmp_path):
    """--jobs 1 without --out: the stalled grading process is killed, a fresh one grades
    the notebook queued behind it, and no process of the run is left behind."""
    # Ten times what an honest notebook takes, on a loaded machine; the stalled one costs the
    # whole budget, so a larger one would only make the test slower.
    assignment = _probe_assignment(tmp_path / "probe", budget=10)
    submissions = tmp_path / "submissions"
    submissions.mkdir()
    for name, slow in (("a_first", False), ("b_stalls", True), ("c_queued", False)):
        _probe_notebook(submissions / f"{name}.ipynb", slow)
    marker = f"GRADER_BUDGET_TEST={uuid.uuid4().hex}"
    env = {**os.environ, marker.split("=")[0]: marker.split("=")[1]}
    proc = _run(["grade", str(submissions), "-a", str(assignment), "--jobs", "1", "--format", "json"], env=env)
    lines = {Path(d["submission"]).name: d for d in map(json.loads, proc.stdout.splitlines())}
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert sorted(lines) == ["a_first.ipynb", "b_stalls.ipynb", "c_queued.ipynb"]
    stalled = lines["b_stalls.ipynb"]
    assert stalled["score"] == 0 and len(stalled["errors"]) == 1
    assert str(submissions / "b_stalls.ipynb") in stalled["errors"][0]
    assert "longer than the budget of 10 s" in stalled["errors"][0] and "grading_timeout" in stalled["errors"][0]
    for name in ("a_first.ipynb", "c_queued.ipynb"):
        assert not lines[name]["errors"] and lines[name]["score"] == 1.0, lines[name]
    assert processes_with_marker(marker) == []  # the killed process took its sandbox worker along


@pytest.mark.slow
def test_the_budget_comes_from_the_spec_and_is_recorded_in_the_gradebook(tmp_path):
    """A budget no grading can meet, with ordinary notebooks and two jobs: each is reported
    over budget (not lost, not retried forever) and the gradebook keeps it as not graded."""
    assignment = _probe_assignment(tmp_path / "probe", budget=0.01)
    submissions, results = tmp_path / "submissions", tmp_path / "results"
    submissions.mkdir()
    for name in ("alice", "bob"):
        _probe_notebook(submissions / f"{name}.ipynb")
    proc = _run(["grade", str(submissions), "-a", str(assignment), "--jobs", "2", "--out", str(results)])
    assert proc.returncode == 1, proc.stderr[-2000:]
    with Gradebook(results, create=False) as book:
        rows = {r.submission: r for r in book.rows()}
    assert sorted(rows) == ["alice.ipynb", "bob.ipynb"]
    for key, row in rows.items():
        assert (row.status, row.score) == ("ungraded", 0.0)
        assert key in row.reason and "longer than the budget of 0.01 s" in row.reason
    grades = {r["student_id"]: r for r in csv.DictReader((results / "grades.csv").open())}
    assert "budget of 0.01 s" in grades["alice"]["reason"]


@pytest.mark.slow
def test_the_budget_holds_on_a_dask_worker_too(tmp_path):
    """The cluster path: over the budget, the Dask worker's grading process is replaced and
    the next submission is graded (here: over budget again, by a fresh process)."""
    from grader.classroom.process import Options
    from grader.classroom.cluster import grade_on_cluster, local_cluster
    assignment = _probe_assignment(tmp_path / "probe", budget=0.01)
    paths = [_probe_notebook(tmp_path / f"{name}.ipynb") for name in ("alice", "bob")]
    with local_cluster(n_workers=1) as cluster:
        graded = list(grade_on_cluster(paths, Options(assignment=str(assignment)), cluster.scheduler_address,
                                       fingerprint="unused"))
    assert sorted(g.path.name for g in graded) == ["alice.ipynb", "bob.ipynb"]
    for g in graded:
        assert not g.transient and g.result.score == 0
        assert str(g.path) in g.result.errors[0] and "longer than the budget of 0.01 s" in g.result.errors[0]


def test_the_default_budget_is_generous_and_bounded():
    from grader.classroom.process import Options
    from grader.classroom.supervisor import budget_for

    class Spec:
        call_timeout = 60.0
        extra: dict = {}

    assert budget_for(Spec()) == 600.0  # ten calls' worth
    Spec.call_timeout = 5.0
    assert budget_for(Spec()) == 300.0
    Spec.extra = {"grading_timeout": 42}
    assert budget_for(Spec()) == 42.0
    assert budget_for(Spec(), Options(assignment="x", grading_timeout=7)) == 7.0


# ---------------------------------------------------------------- one name, one feedback folder

def _graded(key: str, score: float):
    from grader.classroom.process import Graded
    result = SubmissionResult(key, "conv_bn", tests=[TestResult("t", "standardize", score, 2.0,
                                                                Status.PASSED if score else Status.FAILED)])
    return Graded(path=Path(key), result=result, sha256="a" * 64, fingerprint="f" * 16)


def _record(book: Gradebook, key: str, student: str, score: float) -> None:
    run = book.start_run(fingerprint="f" * 16, command="t", backend="local", found=1, to_grade=1)
    book.record(submission=key, student_key=student, graded=_graded(key, score), run_id=run, mtime=1.0,
                fingerprint="f" * 16)


def test_names_that_fold_or_strip_together_never_share_a_feedback_folder(tmp_path):
    from grader.classroom.submissions import find_submissions
    submissions = tmp_path / "submissions"
    for name in ("alice.ipynb", "alice..ipynb", "ALICE.ipynb", "alice .ipynb"):
        (submissions / name).parent.mkdir(parents=True, exist_ok=True)
        (submissions / name).write_text("{}")
    (submissions / "alice.").mkdir()
    (submissions / "alice." / "hw.ipynb").write_text("{}")
    tasks = {t.key: t.student for t in find_submissions([submissions])}
    assert tasks == {"alice.ipynb": "alice", "alice..ipynb": "alice.", "ALICE.ipynb": "ALICE",
                     "alice .ipynb": "alice ", "alice./hw.ipynb": "alice."}

    with Gradebook(tmp_path / "results") as book:
        _record(book, "alice.ipynb", "alice", 2.0)
        assert feedback_for(book, "alice")[1] == book.folder / "feedback" / "alice"
        for key, student, why in (("alice..ipynb", "alice.", "ends with a dot"),
                                  ("alice .ipynb", "alice ", "ends with a space"),
                                  ("ALICE.ipynb", "ALICE", "case-insensitive")):
            _record(book, key, student, 0.0)
            with pytest.raises(FeedbackRefused, match=why):
                feedback_for(book, student)
        # Alice's own feedback is hers, untouched by the three look-alikes
        gradescope = json.loads((book.folder / "feedback" / "alice" / "results.json").read_text())
        assert gradescope["score"] == 2.0
        assert sorted(p.name for p in (book.folder / "feedback").iterdir()) == ["alice"]
        # the class files keep every student apart and say why three have no feedback
        export_grades(book)
        document = json.loads((book.folder / "grades.json").read_text())
        problems = {s["student_id"]: s.get("feedback_problem", "") for s in document["students"]}
        assert problems["alice"] == "" and all(problems[s] for s in ("alice.", "alice ", "ALICE"))
        assert len(list(csv.DictReader((book.folder / "grades.csv").open()))) == 4


def test_a_look_alike_file_does_not_count_as_a_roster_students_submission():
    ids = Identities([RosterEntry("alice", "s001", "Alice")])
    assert ids.student_id("alice") == "s001" and ids.student_id("alice.ipynb") == "s001"
    for look_alike in ("alice ", "alice.", " alice", "ALICE", "Alice"):
        assert ids.student_id(look_alike) == look_alike


# ---------------------------------------------------------------- links are refused unread

def test_links_and_special_files_are_listed_and_refused_and_nothing_outside_is_walked(tmp_path):
    from grader.classroom.submissions import file_sha256, find_submissions, refusal
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.ipynb").write_text("{}")
    submissions = tmp_path / "submissions"
    submissions.mkdir()
    (submissions / "alice.ipynb").write_text("{}")
    (submissions / "master.ipynb").symlink_to(MASTER)
    (submissions / "passwd.ipynb").symlink_to("/etc/passwd")
    (submissions / "carol").symlink_to(outside, target_is_directory=True)
    (submissions / "notes.txt").symlink_to("/etc/hostname")  # not a submission: ignored
    os.mkfifo(submissions / "fifo.ipynb")
    tasks = find_submissions([submissions])
    assert [t.key for t in tasks] == ["alice.ipynb", "carol", "fifo.ipynb", "master.ipynb", "passwd.ipynb"]
    assert all(outside not in t.path.parents for t in tasks)
    assert refusal(submissions / "alice.ipynb") == ""
    for key in ("carol", "master.ipynb", "passwd.ipynb"):
        assert "is a symbolic link" in refusal(submissions / key)
        assert file_sha256(submissions / key) == ""
    assert "not a regular file" in refusal(submissions / "fifo.ipynb")
    assert file_sha256(submissions / "fifo.ipynb") == ""  # returns at once instead of blocking on the FIFO


def test_a_link_sent_to_the_cluster_is_refused_before_it_is_read(tmp_path):
    from grader.classroom.cluster import _read_locally
    link = tmp_path / "master.ipynb"
    link.symlink_to(MASTER)
    refused = _read_locally(link, "conv_bn")
    assert not isinstance(refused, bytes) and not refused.transient
    assert "is a symbolic link" in refused.result.errors[0] and refused.result.score == 0


def test_grader_check_refuses_a_linked_notebook(tmp_path):
    link = tmp_path / "mine.ipynb"
    link.symlink_to(MASTER)
    proc = _run(["check", str(link), "-a", "conv_bn"], timeout=120)
    assert proc.returncode == 1
    shown = " ".join(proc.stdout.split())  # the text renderer wraps long lines
    assert f"{link}: is a symbolic link" in shown and "23/23" not in shown and "0 points (not graded)" in shown


# ---------------------------------------------------------------- terminals and spreadsheets

def test_names_are_escaped_for_terminals_and_defused_for_spreadsheets():
    assert printable(f"{ESC}]0;owned\x07bob{ESC}[2J\u202e") == "\\x1b]0;owned\\x07bob\\x1b[2J\\u202e"
    assert printable("Zoë O'Neil, line\nbreak", keep="\n") == "Zoë O'Neil, line\nbreak"
    for formula in ("=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1", " =1"):
        cell = csv_cell(formula)
        assert cell.startswith("'") and ESC not in cell and "\t" not in cell and "\r" not in cell
    assert csv_cell("alice") == "alice" and csv_cell("O'Neil") == "O'Neil"


def test_progress_lines_show_escape_sequences_escaped():
    import io
    from grader.classroom.batch import Progress
    out = io.StringIO()
    Progress(1, out, tty=False).update(SubmissionResult(f"/x/{ESC}[2J{ESC}]0;pwned\x07.ipynb", "a"))
    assert ESC not in out.getvalue() and "\x07" not in out.getvalue()
    assert "\\x1b[2J" in out.getvalue()


# ---------------------------------------------------------------- errors surface

def test_code_that_cannot_be_normalized_is_reported_not_swallowed(monkeypatch):
    from grader.classroom import codeshape

    def broken(source):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(codeshape, "normalize_source", broken)
    facts = codeshape.code_facts({"standardize": "def standardize(a, b):\n    return a\n", "happyModel": ""})
    assert facts.code["standardize"] == {"source": "def standardize(a, b):\n    return a\n", "normalized": ""}
    assert len(facts.problems) == 1 and "`standardize`" in facts.problems[0] and "RecursionError" in facts.problems[0]


@pytest.mark.slow
def test_a_real_class_with_hostile_names_is_graded_into_the_gradebook_and_the_report(tmp_path):
    """Real notebooks through the real sandbox and the CLI, into the gradebook and the class
    report; among them look-alike, formula and escape-sequence names and two links."""
    from grader.classroom.report import build_report, render_report
    submissions, results = tmp_path / "submissions", tmp_path / "results"
    made = {g.kind: g for g in generate(submissions, 9)}  # one of each kind, and a truncated file
    correct = made["correct"].path
    hostile = {"look-alike": f"{correct.stem}..ipynb", "case": f"{correct.stem.upper()}.ipynb",
               "formula": "=HYPERLINK(1).ipynb", "escape": f"{ESC}]0;owned\x07{ESC}[2Jzed.ipynb"}
    for name in hostile.values():
        shutil.copy(correct, submissions / name)
    (submissions / "master.ipynb").symlink_to(MASTER)
    (submissions / "passwd.ipynb").symlink_to("/etc/passwd")
    (tmp_path / "roster.csv").write_text(f"file_or_folder,student_id\n{correct.stem},s001\n")

    proc = _run(["grade", str(submissions), "-a", "conv_bn", "--jobs", "2", "--out", str(results),
                 "--roster", str(tmp_path / "roster.csv")], timeout=900)
    assert proc.returncode == 1, proc.stderr[-3000:]  # the truncated notebook and the links
    assert ESC not in proc.stderr and ESC not in proc.stdout and "\x07" not in proc.stderr
    assert "\\x1b]0;owned" in proc.stderr  # shown, escaped, in the progress and roster lines

    with Gradebook(results, create=False) as book:
        rows = {r.submission: r for r in book.rows()}
        report = build_report(book)
    assert len(rows) == 9 + 4 + 2
    for link in ("master.ipynb", "passwd.ipynb"):
        assert (rows[link].status, rows[link].score) == ("ungraded", 0.0)
        assert "is a symbolic link" in rows[link].reason
    assert rows[correct.name].score == 23.0 and rows[hostile["look-alike"]].score == 23.0

    # one feedback folder per id, the look-alikes refused (and said so), none overwritten
    feedback = sorted(p.name for p in (results / "feedback").iterdir())
    assert "s001" in feedback and f"{correct.stem}." not in feedback
    assert correct.stem not in feedback  # her stem maps to her id, s001
    assert correct.stem.upper() in feedback  # not hers: a student of its own, with a folder of its own
    strangers = next(line for line in proc.stderr.splitlines() if "not in the roster" in line)
    assert correct.stem.upper() in strangers and "\\x1b]0;owned" in strangers  # escaped, not acted on
    assert "no feedback folder for" in proc.stderr

    # grades.csv: no formula, no escape sequence
    text = (results / "grades.csv").read_text()
    assert ESC not in text and "\x07" not in text
    cells = [row[0] for row in csv.reader(text.splitlines())]
    assert "'=HYPERLINK(1)" in cells and not any(c.startswith(("=", "+", "-", "@")) for c in cells)

    # the report's common mistakes and similar code come from what was really graded
    diagnoses = {ex: {m.diagnosis for m in found} for ex, found in report.mistakes.items()}
    assert "relu_before_bn" in diagnoses["happyModel"]
    assert "test_stats_leak" in diagnoses["standardize"]
    assert "eps_outside_sqrt" in diagnoses["batchnorm_forward"]
    groups = [{sub for _, sub in group} for c in report.clusters.get("happyModel", []) for group in c.groups]
    copies = {hostile["look-alike"], hostile["formula"], hostile["escape"]}  # the same bytes, three students
    assert any(copies <= group and group & {correct.name, hostile["case"]} for group in groups), groups
    assert any(len(group) == 1 for group in groups)  # the varied, merely similar ones are told apart
    page = render_report(report)
    assert "relu_before_bn" in page and hostile["look-alike"] in page and ESC not in page
