"""People's decisions in the gradebook (written scores, overrides) and the final grade that
folds them and lateness into every output. Real SQLite; results built directly, since
what is under test is what happens after grading (tests/test_overrides.py,
tests/test_written_answers.py and tests/test_late_work.py grade real notebooks)."""
from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest

from grader.classroom.errors import GradebookError
from grader.classroom.final import Decisions, final_grade
from grader.classroom.gradebook import Gradebook
from grader.classroom.outputs import Finals, export_grades
from grader.classroom.process import Graded
from grader.assignment.late import LatePolicy, parse_time
from grader.results import Status, SubmissionResult, TestResult as TR
from grader.assignment.written import Question, RubricLevel

WHY = Question("why_bn", "Why BatchNormalization after Conv2D?", 3.0,
               rubric=(RubricLevel(3, "stable input distributions"), RubricLevel(0, "no reason")))


class Spec:
    name = "conv_bn"
    title = "Conv + BN"
    root = Path("/nowhere")
    reference = Path("/nowhere/reference.py")
    exercises = ("standardize", "happyModel")
    total_points = None
    fingerprint = "f" * 16
    questions = (WHY,)
    late = LatePolicy(due=parse_time("2026-12-01T12:00:00+00:00"), per_day=10, cap=30, grace_minutes=15)


def _result(key: str, order: float = 0.0) -> SubmissionResult:
    return SubmissionResult(key, "conv_bn", tests=[
        TR("values", "standardize", 2.0, 2.0, Status.PASSED, nodeid="t.py::test_values", number="1.1"),
        TR("layer order", "happyModel", order, 4.0, Status.FAILED if order < 4 else Status.PASSED,
           message="ReLU comes before BatchNormalization", nodeid="t.py::test_order", number="2.1")])


def _record(book, key, *, sha="aaa", answer="Because each layer's input stays stable.", mtime=None):
    run = book.start_run(fingerprint="f" * 16, command="t", backend="local", found=1, to_grade=1)
    graded = Graded(Path(key), _result(key), sha256=sha, answers={"why_bn": {"text": answer, "cell": 7}},
                    fingerprint="f" * 16, order=1)
    when = mtime if mtime is not None else parse_time("2026-12-01T11:00:00+00:00").timestamp()
    return book.record(submission=key, student_key=Path(key).stem, graded=graded, run_id=run, mtime=when,
                       fingerprint="f" * 16)


@pytest.fixture
def book(tmp_path):
    b = Gradebook(tmp_path / "results")
    b.bind(Spec())
    yield b
    b.close()


def test_answers_are_stored_as_text_with_their_cell(book):
    _record(book, "alice.ipynb", answer="<script>alert(1)</script>")
    [a] = book.answers("why_bn")
    assert (a.submission, a.text, a.cell) == ("alice.ipynb", "<script>alert(1)</script>", 7)
    assert book.questions() == [WHY]


def test_a_score_counts_until_the_answer_changes(book):
    _record(book, "alice.ipynb")
    book.set_manual_score("alice.ipynb", "why_bn", 2.5, "Say why the bias is redundant.", "prof")
    final = Finals(book).grade(book.row("alice.ipynb"))
    assert final.written == {"why_bn": 2.5}
    assert final.total == 2.0 + 0.0 + 2.5
    entry = final.result.tests[-1]
    assert entry.exercise == "Written answers" and "bias is redundant" in entry.message
    _record(book, "alice.ipynb", sha="bbb", answer="A new answer.")
    final = Finals(book).grade(book.row("alice.ipynb"))
    assert final.written == {"why_bn": None}, "a score given to other words must not count"
    assert any("changed since it was scored" in a for a in final.attention)
    assert [m.points for m in book.manual_history("alice.ipynb", "why_bn")] == [2.5]


@pytest.mark.parametrize("points", [-1, 3.5, True, "2"])
def test_scores_outside_the_question_are_refused(book, points):
    _record(book, "alice.ipynb")
    with pytest.raises(GradebookError, match="between 0 and 3"):
        book.set_manual_score("alice.ipynb", "why_bn", points)


def test_unknown_question_and_submission_are_named(book):
    _record(book, "alice.ipynb")
    with pytest.raises(GradebookError, match="questions: why_bn"):
        book.set_manual_score("alice.ipynb", "why_relu", 1)
    with pytest.raises(GradebookError, match="no submission 'bob.ipynb'"):
        book.set_manual_score("bob.ipynb", "why_bn", 1)


def test_an_override_by_number_title_or_nodeid_changes_one_test_and_says_why(book):
    _record(book, "alice.ipynb")
    for name in ("2.1", "happyModel · layer order", "t.py::test_order"):
        o = book.add_override("alice.ipynb", name, 3, "Equivalent Activation('relu') was marked wrong", "prof")
        assert o.test == "t.py::test_order"
    final = Finals(book).grade(book.row("alice.ipynb"))
    changed = final.result.tests[1]
    assert changed.score == 3 and "from 0 to 3 of 4" in changed.message and "Equivalent" in changed.message
    assert final.autograded == 5.0
    assert len(book.override_history("alice.ipynb")) == 3


def test_an_override_survives_regrading_of_the_same_notebook_but_not_a_changed_one(book):
    _record(book, "alice.ipynb", sha="aaa")
    book.add_override("alice.ipynb", "2.1", 4, "regraded by hand")
    _record(book, "alice.ipynb", sha="aaa")
    assert Finals(book).grade(book.row("alice.ipynb")).autograded == 6.0
    _record(book, "alice.ipynb", sha="ccc")
    final = Finals(book).grade(book.row("alice.ipynb"))
    assert final.autograded == 2.0
    assert any("earlier version of the notebook" in a for a in final.attention)
    assert book.overrides()[("alice.ipynb", "t.py::test_order")].applies is False


def test_override_needs_a_reason_and_points_in_range(book):
    _record(book, "alice.ipynb")
    with pytest.raises(GradebookError, match="needs --reason"):
        book.add_override("alice.ipynb", "2.1", 1, " ")
    with pytest.raises(GradebookError, match="between 0 and 4"):
        book.add_override("alice.ipynb", "2.1", 5, "x")
    with pytest.raises(GradebookError, match="no test 'nope'.*2.1 happyModel · layer order"):
        book.add_override("alice.ipynb", "nope", 1, "x")


def test_withdrawing_an_override_restores_the_autograder(book):
    _record(book, "alice.ipynb")
    book.add_override("alice.ipynb", "2.1", 4, "x")
    book.add_override("alice.ipynb", "2.1", None, "my mistake")
    assert Finals(book).grade(book.row("alice.ipynb")).autograded == 2.0


def test_late_penalty_is_a_percentage_of_what_was_earned_and_is_explained():
    policy = Spec.late
    result = _result("a.ipynb", order=4.0)

    def final(hours_after, **kw):
        when = policy.due.timestamp() + hours_after * 3600
        return final_grade(result, Decisions(policy=policy, submitted=datetime.fromtimestamp(when, timezone.utc),
                                             **kw))
    assert final(-1).penalty == 0 and final(0.2).penalty == 0, "inside the grace period"
    assert final(1).penalty == pytest.approx(0.6) and final(1).total == pytest.approx(5.4)
    assert final(30).lateness.days_late == 2 and final(30).penalty == pytest.approx(1.2)
    assert final(24 * 9).penalty == pytest.approx(1.8), "capped at 30%"
    assert final(30, extension_days=2).penalty == 0
    assert final(30, own_due="2026-12-02").penalty == 0
    late = final(30).result.tests[-1]
    assert late.score == pytest.approx(-1.2) and "2 days after the deadline" in late.message


def test_grades_csv_and_feedback_carry_the_final_grade(book):
    book.set_meta("times", "mtime")  # as `grade --times mtime` stores it: the file's time is the hand-in time
    _record(book, "alice.ipynb", mtime=parse_time("2026-12-02T11:30:00+00:00").timestamp())
    book.set_manual_score("alice.ipynb", "why_bn", 3, "Exactly.", "prof")
    book.add_override("alice.ipynb", "2.1", 4, "hand-checked")
    grades = export_grades(book)
    header, row = grades.csv.read_text().splitlines()
    assert header.split(",")[4:] == ["standardize", "happyModel", "written:why_bn", "late_penalty", "total",
                                     "max_total", "reason"]
    cells = row.split(",")
    assert cells[4:10] == ["2", "4", "3", "0.9", "8.1", "9"]
    doc = json.loads(grades.json.read_text())
    assert doc["students"][0]["late"]["days_late"] == 1
    results = json.loads((book.folder / "feedback" / "alice" / "results.json").read_text())
    assert results["score"] == pytest.approx(8.1)
    md = (book.folder / "feedback" / "alice" / "feedback.md").read_text()
    # Markdown escapes punctuation; the comment shows even at full marks, and the penalty is no test.
    assert "Exactly\\." in md and "score changed by your instructor" in md and "after the deadline" in md
    assert "All tests passed" in md


def test_a_schema_1_gradebook_is_upgraded_in_place(tmp_path):
    folder = tmp_path / "old"
    with Gradebook(folder) as b:
        b.bind(Spec())
    db = sqlite3.connect(folder / "gradebook.sqlite")
    db.executescript("DROP TABLE answers; DROP TABLE manual_scores; DROP TABLE overrides; "
                     "UPDATE meta SET value = '1' WHERE key = 'schema_version';")
    db.commit()
    db.close()
    with Gradebook(folder) as b:
        assert b.meta("schema_version") == "2"
        _record(b, "alice.ipynb")
        assert len(b.answers()) == 1


def test_after_one_decision_only_that_students_feedback_is_rendered_again(book):
    for name in ("alice", "bob", "carol"):
        _record(book, f"{name}.ipynb")
    export_grades(book)
    alice, bob, carol = (book.folder / "feedback" / name for name in ("alice", "bob", "carol"))
    (bob / "feedback.md").write_text("stale copy")
    (carol / "feedback.html").unlink()
    book.set_manual_score("alice.ipynb", "why_bn", 2, "Good.", "prof")
    grades = export_grades(book, changed={"alice.ipynb"})
    assert "Good\\." in (alice / "feedback.md").read_text()
    assert (bob / "feedback.md").read_text() == "stale copy", "an untouched student's feedback is not rendered"
    assert (carol / "feedback.html").is_file(), "a missing file is written all the same"
    assert "alice" in grades.csv.read_text()
    export_grades(book)
    assert (bob / "feedback.md").read_text() != "stale copy"
