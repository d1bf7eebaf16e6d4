"""Every derived file of a results folder is the gradebook's latest state, whoever writes:
a save on a review page while `grader grade --out` writes its outputs, and two review
servers saving at once. Real processes (the `grader` command itself), real HTTP, real
SQLite; the class is stored directly (tests/classbook.py) so that the grading run has
nothing to grade and spends its time writing the outputs a save races with.
"""
from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest

from classbook import differences, record
from grader.classroom.folder_lock import LOCK_NAME, results_lock
from grader.classroom.errors import GradebookError
from grader.classroom.gradebook import Gradebook
from grader.classroom.outputs import export_grades
from grader.classroom.submissions import file_sha256

REPO = Path(__file__).resolve().parent.parent
QUESTION = "why_bn_after_conv"  # conv_bn's first written question (3 points)
STUDENTS = 30


@pytest.fixture
def klass(tmp_path, conv_bn) -> Path:
    """conv_bn's gradebook holding STUDENTS graded notebooks, each answering QUESTION, and
    their derived files; the notebooks are in tmp_path/subs, unchanged since."""
    subs = tmp_path / "subs"
    subs.mkdir()
    with Gradebook(tmp_path / "results") as book:
        book.bind(conv_bn)
        for i in range(STUDENTS):
            path = subs / f"s{i:02d}.ipynb"
            nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"student {i}")]),
                           str(path))
            record(book, path.name, sha=file_sha256(path), fingerprint=conv_bn.fingerprint, question=QUESTION,
                   answer=f"answer {i}", order=i % 5,
                   message="a long diagnosis\n" * (12_000 if i == 0 else 1))  # s00's feedback: slow to render
        export_grades(book)
    return tmp_path / "results"


class Reviewer:
    """A `grader review` process and the HTTP it takes."""

    def __init__(self, results: Path, name: str):
        self.proc = subprocess.Popen([sys.executable, "-m", "grader", "review", str(results), "--grader", name],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
        self.proc.stdout.readline()
        url = self.proc.stdout.readline().strip()
        self.port = int(url.split(":")[2].split("/")[0])
        self.token = url.split("token=")[1]

    def save(self, submission: str, points: float, version: str) -> tuple[int, dict]:
        body = json.dumps({"submission": submission, "question": QUESTION, "points": points,
                           "comment": f"{points:g} points", "version": version}).encode()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            conn.request("POST", "/api/score", body=body, headers={
                "Content-Type": "application/json", "X-Review-Token": self.token})
            response = conn.getresponse()
            return response.status, json.loads(response.read())
        finally:
            conn.close()

    def close(self) -> None:
        self.proc.terminate()
        self.proc.communicate(timeout=30)


def _versions(results: Path) -> dict[str, str]:
    with Gradebook(results, create=False) as book:
        return {a.submission: a.sha256 for a in book.answers(QUESTION)}


def _latest_scores_in_files(results: Path) -> dict[str, str]:
    import csv
    with open(results / "grades.csv", newline="", encoding="utf-8") as f:
        return {r["student_id"]: r[f"written:{QUESTION}"] for r in csv.DictReader(f)}


def _latest_scores_in_gradebook(results: Path) -> dict[str, str]:
    with Gradebook(results, create=False) as book:
        return {sub.removesuffix(".ipynb"): f"{m.points:g}" for (sub, q), m in book.manual_scores().items()
                if q == QUESTION}


@pytest.mark.slow
def test_a_review_save_made_while_grade_writes_its_outputs_is_never_lost(klass, tmp_path):
    versions = _versions(klass)
    reviewer = Reviewer(klass, "ta-anna")
    total = 0
    try:
        for round_ in range(3):
            grade = subprocess.Popen([sys.executable, "-m", "grader", "grade", str(tmp_path / "subs"), "-a",
                                      "conv_bn", "--out", str(klass), "-j", "1"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
            saves = 0
            # Saves only while the run is on: the last one lands while it derives its outputs
            # (most of its life here), and nothing after the run rewrites the files.
            while grade.poll() is None:
                student = f"s{saves % STUDENTS:02d}.ipynb"
                status, doc = reviewer.save(student, 0.5 + (saves + round_) % 5 * 0.5, versions[student])
                assert status == 200 and not doc["warning"], doc
                saves += 1
            total += saves
            out, err = grade.communicate(timeout=300)
            assert grade.returncode == 0, err[-2000:]
            assert "0 to grade" in err, "nothing graded: the run only wrote its outputs"
            written = _latest_scores_in_files(klass)
            for student, points in _latest_scores_in_gradebook(klass).items():
                assert written[student] == points, (round_, student)
            assert differences(klass, tmp_path / "fresh") == []
    finally:
        reviewer.close()
    assert total > 0


@pytest.mark.slow
def test_two_review_servers_saving_at_once_lose_nothing(klass, tmp_path):
    versions = _versions(klass)
    reviewers = [Reviewer(klass, "ta-anna"), Reviewer(klass, "ta-ben")]
    answers: list[tuple[int, dict]] = []

    def saves(reviewer: Reviewer, offset: int) -> None:
        # Each student scored once (a lost save stays lost: no later one rewrites the
        # files for it), then the first six again by both servers (same feedback folders).
        for n in range(offset, STUDENTS, 2):
            student = f"s{n:02d}.ipynb"
            answers.append(reviewer.save(student, 1 + n % 4 * 0.5, versions[student]))
        for n in range(6):
            student = f"s{n:02d}.ipynb"
            answers.append(reviewer.save(student, (n + offset) % 7 * 0.5, versions[student]))
    try:
        threads = [threading.Thread(target=saves, args=(r, i)) for i, r in enumerate(reviewers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # A save that derives slowly (s00's feedback is long to render), and while it does
        # (its feedback.html is replaced, the rest still to come), one on the other server:
        # that one is committed after the slow one read the gradebook, and ends first.
        html = klass / "feedback" / "s00" / "feedback.html"
        before = html.stat().st_ino
        slow = threading.Thread(target=lambda: answers.append(reviewers[1].save("s00.ipynb", 3, versions["s00.ipynb"])))
        slow.start()
        while slow.is_alive() and html.stat().st_ino == before:
            time.sleep(0.002)
        answers.append(reviewers[0].save("s01.ipynb", 2.5, versions["s01.ipynb"]))
        slow.join()
    finally:
        for r in reviewers:
            r.close()
    assert len(answers) == STUDENTS + 14 and all(status == 200 and not doc["warning"] for status, doc in answers), answers
    with Gradebook(klass, create=False) as book:
        assert sum(len(book.manual_history(f"s{i:02d}.ipynb", QUESTION)) for i in range(STUDENTS)) == STUDENTS + 14
    written = _latest_scores_in_files(klass)
    for student, points in _latest_scores_in_gradebook(klass).items():
        assert written[student] == points, student
    assert differences(klass, tmp_path / "fresh") == []


def test_the_lock_is_one_writer_across_processes_and_says_who_holds_it(tmp_path):
    """A second process waits for the first, and past its bound is told who holds it."""
    folder = tmp_path / "results"
    folder.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from grader.classroom.folder_lock import results_lock\n"
        f"with results_lock({str(folder)!r}):\n"
        "    print('held', flush=True)\n"
        "    sys.stdin.readline()\n")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(GradebookError, match=rf"held the results folder .*process {holder.pid}"):
            with results_lock(folder, timeout=0.3):
                pass
    finally:
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(timeout=30)
    with results_lock(folder, timeout=5):  # released when its holder let go
        with results_lock(folder, timeout=5):  # and re-entrant in one thread
            assert (folder / LOCK_NAME).is_file()
