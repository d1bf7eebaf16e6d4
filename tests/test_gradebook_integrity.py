"""The gradebook's state is never lost, merged, stale or silently zero: a student's odd text
never stops storing, a damaged gradebook is named, the review server answers hostile bodies
with a 400, decisions bind to the version the person saw, and every derived file is the
gradebook's latest state even when several processes write at once.

Real SQLite, real processes, real HTTP to the real review server; results are built
directly (tests/classbook.py), since what is under test happens after grading.
"""
from __future__ import annotations

import http.client
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from classbook import Spec, record
from grader.classroom.errors import GradebookError
from grader.classroom.gradebook import Gradebook
from grader.classroom.outputs import export_grades
from grader.classroom.review import ReviewServer

REPO = Path(__file__).resolve().parent.parent
LONE = "\ud800"


@pytest.fixture
def book(tmp_path):
    b = Gradebook(tmp_path / "results")
    b.bind(Spec())
    yield b
    b.close()


def _request(server, method: str, path: str, *, body: bytes | None = None, headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", server.review.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def _cookie(server) -> str:
    status, headers, _ = _request(server, "GET", f"/?token={server.review.token}")
    assert status == 303
    return headers["Set-Cookie"].split(";")[0]


def _post(server, path: str, body: bytes):
    status, _, data = _request(server, "POST", path, body=body, headers={
        "Content-Type": "application/json", "X-Review-Token": server.review.token})
    return status, json.loads(data)


# ---------------------------------------------------------------- 1. a lone surrogate

def test_a_lone_surrogate_anywhere_is_stored_read_back_and_rendered(book):
    """Valid JSON that Jupyter saves: in the answer, a test's message, the code and the file name."""
    odd = f"ev{LONE}e.ipynb"
    record(book, odd, answer=f"{LONE}", message=f"{LONE}")
    record(book, "alice.ipynb", answer=f"BN keeps {LONE} inputs stable", message=f"found {LONE} here",
           code={"happyModel": {"source": f"def happyModel():  # {LONE}\n    pass", "normalized": "x"}})
    answer = book.answer("alice.ipynb", "why_bn")
    assert answer.text == "BN keeps \\ud800 inputs stable", "kept as its visible escape"
    assert {a.submission for a in book.answers()} == {"alice.ipynb", "ev\\ud800e.ipynb"}
    assert book.row(odd) is not None and book.is_current(odd, "aaa", "f" * 16), "found again by its own name"
    assert "found \\ud800 here" in book.result("alice.ipynb").tests[1].message
    assert any("\\ud800" in source for _, _, source, _ in book.code())
    book.set_manual_score("alice.ipynb", "why_bn", 2, f"comment {LONE}", "prof")
    book.add_override("alice.ipynb", "2.1", 3, f"reason {LONE}", "prof")
    grades = export_grades(book)
    assert "ev\\ud800e" in grades.csv.read_text(encoding="utf-8")
    feedback = book.folder / "feedback" / "alice"
    md = (feedback / "feedback.md").read_text(encoding="utf-8")
    assert "reason" in md and "ud800" in md
    outputs = " ".join(t.get("output", "") for t in json.loads((feedback / "results.json").read_bytes())["tests"])
    assert "found" in outputs and "comment" in outputs and outputs.count("ud800") >= 3, outputs


def test_review_pages_and_saves_carry_a_lone_surrogate(book):
    record(book, "alice.ipynb", answer=f"answer {LONE}", message=f"message {LONE}")
    version = book.answer("alice.ipynb", "why_bn").sha256
    with ReviewServer(book.folder, grader="ta").start() as server:
        cookie = _cookie(server)
        for path in ("/", "/question?q=why_bn", "/student?s=alice.ipynb"):
            status, _, body = _request(server, "GET", path, headers={"Cookie": cookie})
            assert status == 200, body[-500:]
            assert b"\\ud800" in body or path == "/"
        # A comment typed with a lone surrogate (JSON's escape) is saved, not a server error.
        status, doc = _post(server, "/api/score", json.dumps(
            {"submission": "alice.ipynb", "question": "why_bn", "points": 2, "comment": f"c {LONE}",
             "version": version}).encode())
        assert status == 200, doc
    assert book.manual_scores()[("alice.ipynb", "why_bn")].comment == "c \\ud800"


# ---------------------------------------------------------------- 6. damaged files, hostile bodies

@pytest.mark.parametrize("value", ["two", "", "2.0", "1e9", "٢"])
def test_a_schema_version_that_is_not_a_number_is_a_clear_error(book, value):
    book.set_meta("schema_version", value)
    with pytest.raises(GradebookError, match="schema_version .* not a number"):
        Gradebook(book.folder, create=False)


def test_the_commands_name_a_damaged_gradebook_without_a_traceback(book, tmp_path):
    book.set_meta("schema_version", "two")
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "alice.ipynb").write_bytes((REPO / "assignments" / "conv_bn" / "samples" / "correct.ipynb").read_bytes())
    for command in (["report", str(book.folder)], ["override", str(book.folder), "--history"],
                    ["review", str(book.folder)], ["grade", str(subs), "-a", "conv_bn", "--out", str(book.folder)]):
        proc = subprocess.run([sys.executable, "-m", "grader", *command], capture_output=True, text=True,
                              timeout=120, cwd=REPO)
        assert proc.returncode == 2, (command, proc.stderr)
        assert "schema_version" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("body", [
    b'{"submission": "alice.ipynb", "question": "why_bn", "comment": "", "points": ' + b"9" * 400 + b"}",
    b'{"submission": "alice.ipynb", "question": "why_bn", "comment": "", "points": -' + b"9" * 400 + b"}",
    b'{"submission": "alice.ipynb", "question": "why_bn", "comment": "", "points": 1e400}',
    b"[" * 30_000 + b"]" * 30_000,
    b'{"a": ' + b"[" * 30_000 + b"]" * 30_000 + b"}",
], ids=["400 digits", "-400 digits", "1e400", "30000 deep", "30000 deep in an object"])
def test_a_hostile_body_is_a_400_with_a_message(book, body):
    record(book, "alice.ipynb")
    with ReviewServer(book.folder, grader="ta").start() as server:
        for path in ("/api/score", "/api/override"):
            status, doc = _post(server, path, body)
            assert status == 400, doc
            assert doc["error"] and "Traceback" not in doc["error"]
    assert book.manual_scores() == {} and book.overrides() == {}


def test_a_save_on_a_damaged_gradebook_is_refused_with_a_message(book):
    record(book, "alice.ipynb")
    with ReviewServer(book.folder, grader="ta").start() as server:
        version = book.answer("alice.ipynb", "why_bn").sha256
        book.set_meta("schema_version", "two")
        status, doc = _post(server, "/api/score", json.dumps(
            {"submission": "alice.ipynb", "question": "why_bn", "points": 1, "comment": "", "version": version}
        ).encode())
        assert status == 503 and "schema_version" in doc["error"]
    db = sqlite3.connect(book.path)
    assert db.execute("SELECT COUNT(*) FROM manual_scores").fetchone() == (0,)
    db.close()


# ---------------------------------------------------------------- 3. decisions bind to what was seen

def test_a_decision_made_on_a_page_loaded_before_a_regrade_is_refused_and_the_page_told_to_reload(book):
    record(book, "alice.ipynb", sha="v1", answer="first words")
    seen_answer, seen_notebook = book.answer("alice.ipynb", "why_bn").sha256, book.row("alice.ipynb").sha256
    with ReviewServer(book.folder, grader="ta").start() as server:
        cookie = _cookie(server)
        _, _, page = _request(server, "GET", "/question?q=why_bn", headers={"Cookie": cookie})
        assert f'data-version="{seen_answer}"'.encode() in page
        _, _, page = _request(server, "GET", "/student?s=alice.ipynb", headers={"Cookie": cookie})
        assert f'data-version="{seen_notebook}"'.encode() in page
        record(book, "alice.ipynb", sha="v2", answer="other words")  # the student resubmitted; graded again
        status, doc = _post(server, "/api/score", json.dumps(
            {"submission": "alice.ipynb", "question": "why_bn", "points": 3, "comment": "",
             "version": seen_answer}).encode())
        assert status == 409 and doc["reload"] is True and "changed since this page was loaded" in doc["error"]
        status, doc = _post(server, "/api/override", json.dumps(
            {"submission": "alice.ipynb", "test": "2.1", "points": 4, "reason": "fine",
             "version": seen_notebook}).encode())
        assert status == 409 and doc["reload"] is True and "graded again" in doc["error"]
        assert book.manual_scores() == {} and book.overrides() == {}
        # The reloaded page shows (and sends) the new version, which is accepted.
        status, doc = _post(server, "/api/override", json.dumps(
            {"submission": "alice.ipynb", "test": "2.1", "points": 4, "reason": "fine",
             "version": book.row("alice.ipynb").sha256}).encode())
        assert status == 200, doc
    assert book.overrides()[("alice.ipynb", "t.py::test_order")].sha256 == "v2"


def test_grader_override_seen_binds_the_override_to_the_version_looked_at(book, capsys):
    from grader.cli import main
    record(book, "alice.ipynb", sha="1234abcd" * 8)
    record(book, "bob.ipynb", sha="5678ef01" * 8)
    assert main(["override", str(book.folder), "alice", "2.1", "3", "--reason", "fine", "--seen", "1234abcd"]) == 0
    assert "notebook version 1234abcd" in capsys.readouterr().out
    record(book, "bob.ipynb", sha="99999999" * 8)  # regraded after the instructor looked
    assert main(["override", str(book.folder), "bob", "2.1", "3", "--reason", "fine", "--seen", "5678ef01"]) == 2
    assert "graded again since you looked" in capsys.readouterr().err
    assert main(["override", str(book.folder), "bob", "2.1", "3", "--reason", "x", "--seen", "5678"]) == 2
    assert set(book.overrides()) == {("alice.ipynb", "t.py::test_order")}
    assert main(["override", str(book.folder), "--history"]) == 0
    assert "[notebook version 1234abcd1234]" in capsys.readouterr().out


# ---------------------------------------------------------------- 2. answers read whenever the questions change

def _answered_notebook(path: Path, text: str) -> Path:
    import nbformat
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("## Why BatchNormalization after Conv2D?"),
        nbformat.v4.new_markdown_cell(text, metadata={"tags": ["written:why_bn"]})])
    nbformat.write(nb, str(path))
    return path


def test_questions_added_after_grading_are_read_from_every_stored_notebook_never_a_silent_zero(tmp_path):
    from grader.classroom.answer_reading import read_stored_answers
    from grader.classroom.outputs import Finals
    from grader.classroom.submissions import file_sha256
    subs = tmp_path / "subs"
    subs.mkdir()
    alice = _answered_notebook(subs / "alice.ipynb", "It keeps the next layer's inputs stable.")
    bob = _answered_notebook(subs / "bob.ipynb", "Faster training.")
    with Gradebook(tmp_path / "results") as book:
        book.bind(Spec(questions=()))  # graded before the spec had any [[written]] question
        for path in (alice, bob):
            record(book, path.name, sha=file_sha256(path), answer=None)
        book.bind(Spec())  # the question is added; nothing is graded again (not in the fingerprint)
        assert {r.submission for r in book.unread_answers()} == {"alice.ipynb", "bob.ipynb"}
        finals = Finals(book)
        entry = finals.grade(book.row("alice.ipynb")).result.tests[-1]
        assert entry.diagnosis == "written_unread" and "not been read yet" in entry.message, \
            "before reading, never 'no answer found' with 0"
        kept = bob.read_bytes()
        bob.unlink()  # the instructor tidied the submissions folder meanwhile
        reading = read_stored_answers(book, Spec(), {"alice.ipynb": alice, "bob.ipynb": bob})
        assert reading.read == 1 and len(reading.problems) == 1 and "bob.ipynb" in reading.problems[0]
        assert "is gone" in reading.problems[0] and "not as 0" in reading.problems[0]
        assert book.answer("alice.ipynb", "why_bn").text == "It keeps the next layer's inputs stable."
        assert [r.submission for r in book.unread_answers()] == ["bob.ipynb"], "tried again next run"
        grades = export_grades(book)
        students = {s["student_id"]: s for s in json.loads(grades.json.read_text())["students"]}
        assert students["alice"]["written"] == {"why_bn": None}, "read, waiting for a person's score"
        assert students["bob"]["written"] == {"why_bn": None}, "not read: waiting, not 0"
        assert any("bob" in a and "is gone" in a for a in grades.attention)
        bob_feedback = (book.folder / "feedback" / "bob" / "feedback.md").read_text()
        assert "No answer was found" not in bob_feedback and "not been read yet" in bob_feedback
        bob.write_bytes(kept)  # put back: read on the next run
        assert read_stored_answers(book, Spec(), {"bob.ipynb": bob}).read == 1
        assert book.unread_answers() == []
        assert read_stored_answers(book, Spec(), {}).read == 0, "read once per set of questions"
