"""`grader review`: the instructor's review page, on a real server, a real gradebook of
really graded notebooks, and headless Chromium (tests/browser.py).

One grading run, one server and one browser for the whole module: the grading (three
sample notebooks with a written answer each) is the slow part. Tests that write use
different students or tests, so their order does not matter.
"""
from __future__ import annotations

import csv
import http.client
import json
import os
import shutil
import signal
import sqlite3
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import nbformat
import pytest

from browser import Browser
from grader.classroom import review_page as page_text
from grader.classroom.gradebook import Answer, Gradebook, ManualScore, Override
from grader.classroom.review import ReviewServer, parse_override, parse_score
from grader.results import Status, SubmissionResult, TestResult
from grader.assignment.written import Question

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "assignments" / "conv_bn" / "samples"
QUESTION = "why_bn"
WRITTEN = f'''
[[written]]
id = "{QUESTION}"
title = "Why BatchNormalization after Conv2D"
points = 4
prompt = "In two or three sentences: why does BatchNormalization come right after Conv2D, before ReLU?"
rubric = [{{ points = 4, text = "Normalizes the pre-activations, so ReLU sees centred inputs" }},
          {{ points = 2, text = "Says it normalizes, not why the order matters" }},
          {{ points = 0, text = "Missing or wrong" }}]
'''
HOSTILE = ("</textarea><script>window.pwned = 1</script><img src=x onerror=\"window.pwned = 2\">"
           "\x1b[2J \u202eevil \ud800 (a lone surrogate: valid JSON, and Jupyter saves it)")
STUDENTS = {  # notebook stem -> (sample, student id, roster name, written answer)
    "alice": ("correct", "s1", "Alice Ng", "It normalizes each channel before the nonlinearity."),
    "bob": ("relu_before_bn", "s2", "Bob Ray", "Batch norm makes training faster."),
    "mallory": ("mixed", "s3", "<b>Mal</b>\"'&", HOSTILE),
}


def _with_answer(sample: Path, target: Path, answer: str) -> None:
    nb = nbformat.read(str(sample), as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell(answer, metadata={"tags": [f"written:{QUESTION}"]}))
    # As JSON escapes, the way Jupyter writes a lone surrogate (UTF-8 cannot hold one).
    target.write_text(json.dumps(nb, ensure_ascii=True, indent=1), encoding="ascii")


@pytest.fixture(scope="module")
def results(tmp_path_factory, conv_bn) -> Path:
    """conv_bn with one written question; three sample notebooks answering it, graded
    for real by `grader grade --out` with a roster."""
    base = tmp_path_factory.mktemp("review")
    root = base / "conv_bn_written"
    shutil.copytree(conv_bn.root / "tests", root / "tests")
    shutil.copy(conv_bn.root / "faces.py", root / "faces.py")
    spec = (conv_bn.root / "assignment.toml").read_text()
    spec = spec.replace('reference = "../../reference/conv_bn.py"', f'reference = "{conv_bn.reference}"')
    (root / "assignment.toml").write_text(spec + WRITTEN)
    subs = base / "subs"
    subs.mkdir()
    roster = ["file_or_folder,student_id,name"]
    for stem, (sample, sid, name, answer) in STUDENTS.items():
        _with_answer(SAMPLES / f"{sample}.ipynb", subs / f"{stem}.ipynb", answer)
        roster.append(f'{stem},{sid},"{name.replace(chr(34), chr(34) * 2)}"')
    (base / "roster.csv").write_text("\n".join(roster) + "\n")
    out = base / "results"
    proc = subprocess.run([sys.executable, "-m", "grader", "grade", str(subs), "-a", str(root), "--out", str(out),
                           "--roster", str(base / "roster.csv"), "--jobs", "1"],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with Gradebook(out, create=False) as book:  # extracted from the notebooks by the grading run
        assert {a.submission for a in book.answers(QUESTION)} == {f"{stem}.ipynb" for stem in STUDENTS}
        # The lone surrogate stopped the whole run once; it is kept as its visible escape.
        assert "evil \\ud800 (a lone" in book.answer("mallory.ipynb", QUESTION).text
    return out


def _version(results: Path, submission: str, question: str | None = QUESTION) -> str:
    """What the page shows and sends back: the answer's hash, or (question None) the notebook's."""
    with Gradebook(results, create=False) as book:
        return book.answer(submission, question).sha256 if question else book.row(submission).sha256


@pytest.fixture(scope="module")
def server(results):
    with ReviewServer(results, grader="ta-anna").start() as s:
        yield s


@pytest.fixture(scope="module")
def browser(chromium, tmp_path_factory):
    with Browser(chromium, tmp_path_factory.mktemp("chromium")) as b:
        yield b


@pytest.fixture(scope="module")
def page(browser, server):
    """A tab that has opened the printed URL once (so it holds the access cookie)."""
    tab = browser.new_page()
    tab.goto(server.url)
    return tab


# ---------------------------------------------------------------- plain HTTP

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
    assert status == 303 and headers["Location"] == "/"
    assert "HttpOnly" in headers["Set-Cookie"] and "SameSite=Strict" in headers["Set-Cookie"]
    return headers["Set-Cookie"].split(";")[0]


def _post(server, path: str, doc, *, token: str | None = "", headers: dict | None = None):
    sent = {"Content-Type": "application/json", **(headers or {})}
    if token is not None:
        sent["X-Review-Token"] = token or server.review.token
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    status, _, data = _request(server, "POST", path, body=body, headers=sent)
    return status, json.loads(data)


def test_pages_need_the_token_and_the_refusal_does_not_reveal_it(server):
    status, headers, body = _request(server, "GET", "/")
    assert status == 403 and b"grader review" in body
    assert server.review.token.encode() not in body
    assert b"ta-anna" not in body and b"s1" not in body
    status, _, body = _request(server, "GET", "/", headers={"Cookie": _cookie(server)})
    assert status == 200 and server.review.token.encode() in body  # the page's script needs it
    status, headers, _ = _request(server, "GET", f"//evil.example/?token={server.review.token}")
    assert status == 303 and headers["Location"] == "/"  # never sent off the site


def test_a_post_without_the_token_or_from_another_page_is_refused(server):
    score = {"submission": "alice.ipynb", "question": QUESTION, "points": 1, "comment": "x"}
    status, doc = _post(server, "/api/score", score, token=None)
    assert status == 403 and "X-Review-Token" in doc["error"]
    status, doc = _post(server, "/api/score", score, token="not-the-token")
    assert status == 403
    status, doc = _post(server, "/api/score", score, headers={"Origin": "http://evil.example"})
    assert status == 403 and "other web pages" in doc["error"]
    status, doc = _post(server, "/api/score", score, headers={"Content-Type": "text/plain"})
    assert status == 415
    with Gradebook(server.review.folder, create=False) as book:
        assert ("alice.ipynb", QUESTION) not in book.manual_scores()


def test_a_foreign_host_header_is_refused_as_dns_rebinding(server):
    port = server.review.port
    for host in (f"evil.example:{port}", "127.0.0.1", f"127.0.0.1:{port + 1}", ""):
        status, _, body = _request(server, "GET", f"/?token={server.review.token}", headers={"Host": host})
        assert status == 403 and b"DNS rebinding" in body, host
    status, _ = _post(server, "/api/score", {}, headers={"Host": f"evil.example:{port}"})
    assert status == 403


def test_bad_scores_are_refused_with_a_message_that_says_what_to_fix(server, results):
    base = {"submission": "alice.ipynb", "question": QUESTION, "comment": "", "version": _version(results, "alice.ipynb")}
    status, doc = _post(server, "/api/score", {**base, "points": 7})
    assert status == 400 and "between 0 and 4" in doc["error"]
    status, doc = _post(server, "/api/score", {**base, "points": "3"})
    assert status == 400 and "points must be a number" in doc["error"]
    status, doc = _post(server, "/api/score", {**base, "points": 1, "question": "nope"})
    assert status == 400 and "why_bn" in doc["error"]  # names the questions there are
    status, doc = _post(server, "/api/score", b'{"points": NaN}')
    assert status == 400
    status, doc = _post(server, "/api/score", b"x" * (70 * 1024))
    assert status == 413 and "KiB" in doc["error"]
    status, doc = _post(server, "/api/override", {"submission": "alice.ipynb", "test": "x", "points": 1,
                                                   "reason": "  ", "version": _version(results, "alice.ipynb", None)})
    assert status == 400 and "reason" in doc["error"]
    status, doc = _post(server, "/api/score", {k: v for k, v in {**base, "points": 1}.items() if k != "version"})
    assert status == 400 and "reload the page" in doc["error"]
    with Gradebook(server.review.folder, create=False) as book:
        assert ("alice.ipynb", QUESTION) not in book.manual_scores()


def test_saves_at_the_same_time_are_all_kept_in_order_of_arrival(server, results):
    """Each save is its own transaction and the files are rewritten under one lock."""
    def save(points):
        return _post(server, "/api/score", {"submission": "mallory.ipynb", "question": QUESTION,
                                            "points": points, "comment": f"try {points}", "version": version})
    version = _version(results, "mallory.ipynb")
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(save, [0, 0.5, 1, 1.5, 2, 2.5]))
    assert all(status == 200 and not doc["warning"] for status, doc in answers), answers
    with Gradebook(results, create=False) as book:
        history = book.manual_history("mallory.ipynb", QUESTION)
        latest = book.manual_scores()[("mallory.ipynb", QUESTION)]
    assert sorted(h.points for h in history) == [0, 0.5, 1, 1.5, 2, 2.5] and latest == history[-1]
    rows = {r["student_id"]: r for r in csv.DictReader((results / "grades.csv").open())}
    assert rows["s3"][f"written:{QUESTION}"] == f"{latest.points:g}"  # the files agree with the last save
    status, _, body = _request(server, "GET", "/student?s=mallory.ipynb", headers={"Cookie": _cookie(server)})
    assert status == 200 and "history (5)" in body.decode()  # the earlier five, beside the current one


def test_a_score_given_to_other_words_and_a_void_override_are_marked():
    question = Question("q", "Q", 2.0)
    student = page_text.Student("s9", "", "eve.ipynb")
    score = ManualScore("eve.ipynb", "q", 1.0, "ok", "ta", "then", "1" * 64, stale=True)
    card = page_text.Card(student, Answer("eve.ipynb", "q", "new words", "2" * 64, 4), score, (score,))
    html = page_text.question_page(page_text.Context("conv_bn", "t", "n", "me"), question, [card])
    assert 'class="card scored stale"' in html and "answer changed since it was scored" in html
    void = Override(1, "eve.ipynb", "t.py::x", 0.0, "why", "ta", "then", "3" * 64, applies=False)
    result = SubmissionResult("eve.ipynb", "conv_bn", tests=[
        TestResult("x", "ex", 1.0, 1.0, Status.PASSED, nodeid="t.py::x")])
    html = page_text.student_page(page_text.Context("conv_bn", "t", "n", "me"), student, result,
                                  {"t.py::x": void}, [void], [])
    assert "it no longer applies; look again" in html and "no longer applied" in html


def test_control_characters_in_an_answer_are_shown_not_obeyed():
    """Grading strips them from extracted answers; the page escapes them anyway."""
    question = Question("q", "Q", 2.0)
    student = page_text.Student("s9", "Eve\u202e", "eve.ipynb")
    card = page_text.Card(student, Answer("eve.ipynb", "q", "a\x1b[2Jb\u202ec\nnext line", "0" * 64, 4), None)
    html = page_text.question_page(page_text.Context("conv_bn", "t", "n", "me"), question, [card])
    assert "a\\x1b[2Jb\\u202ec\nnext line" in html and "Eve\\u202e" in html
    assert "\x1b" not in html and "\u202e" not in html


def test_a_very_long_answer_is_cut_for_display_and_says_where_the_rest_is():
    question = Question("q", "Q", 2.0)
    card = page_text.Card(page_text.Student("s9", "", "eve.ipynb"),
                          Answer("eve.ipynb", "q", "x" * (page_text.MAX_SHOWN_CHARS + 500), "0" * 64, 7), None)
    html = page_text.question_page(page_text.Context("conv_bn", "t", "n", "me"), question, [card])
    assert "x" * page_text.MAX_SHOWN_CHARS in html and "x" * (page_text.MAX_SHOWN_CHARS + 1) not in html
    assert "500 more characters not shown" in html and "cell 7" in html


def test_parsing_accepts_only_plain_json_numbers():
    for body in (b'{"submission": "a", "question": "q", "points": true}', b'{"submission": "a", '
                 b'"question": "q", "points": Infinity}', b"[]", b"\xff"):
        with pytest.raises(ValueError):
            parse_score(body)
    assert parse_score(b'{"submission": "a", "question": "q", "points": 2, "version": "v"}').points == 2.0
    assert parse_override(b'{"submission": "a", "test": "t", "points": null, "reason": "r", "version": "v"}'
                          ).points is None


def test_a_hostile_answer_and_name_are_shown_as_text(server):
    status, headers, body = _request(server, "GET", f"/question?q={QUESTION}", headers={"Cookie": _cookie(server)})
    text = body.decode()
    assert status == 200
    assert "script-src 'nonce-" in headers["Content-Security-Policy"]
    assert "&lt;/textarea&gt;&lt;script&gt;window.pwned = 1&lt;/script&gt;" in text
    assert "<script>window.pwned" not in text and "<img src=x" not in text
    assert "&lt;b&gt;Mal&lt;/b&gt;&quot;&#x27;&amp;" in text
    assert text.count("<script") == 1  # the page's own, with its nonce


# ---------------------------------------------------------------- in the browser

def test_the_browser_driver_clicks_and_types_on_a_static_page(browser):
    tab = browser.new_page()
    tab.goto("data:text/html,<input id=a><button id=b>go</button><p id=o></p><script>"
             "document.getElementById('b').addEventListener('click', () => "
             "document.getElementById('o').textContent = 'got ' + document.getElementById('a').value)</script>")
    tab.type("#a", "<typed>")
    tab.click("#b")
    assert tab.wait_for("document.getElementById('o').textContent") == "got <typed>"
    assert tab.problems() == []


def _card(submission: str) -> str:
    return f'article.card[data-submission="{submission}"]'


def _saved(page, form: str) -> str:
    """The status line of `form` once the save it started has an answer."""
    return page.wait_for(f"(s => !['', 'busy', 'saved'].includes(s.dataset.kind || '') && s.textContent)"
                         f"(document.querySelector('{form} .status'))")


def _gradescope_test(results: Path, student_id: str, name_part: str) -> dict:
    document = json.loads((results / "feedback" / student_id / "results.json").read_text())
    return next(t for t in document["tests"] if name_part in t["name"])


def test_score_an_answer_reload_and_it_is_there_in_the_gradebook_and_grades_csv(page, server, results):
    page.goto(f"{server.origin}/")
    page.click(f'a[href="question?q={QUESTION}"]')
    page.wait_for(f"location.pathname === '/question' && !!document.querySelector('{_card('bob.ipynb')}')")
    card = _card("bob.ipynb")
    page.click(f'{card} button.level[data-points="2"]')  # the rubric level fills points and comment
    assert page.evaluate(f"document.querySelector('{card} textarea').value").startswith("Says it normalizes")
    page.type(f"{card} textarea", "Says it normalizes; why before ReLU? <b>see lecture 3</b>")
    page.click(f"{card} button[type=submit]")
    status = _saved(page, card)
    assert status.startswith("saved: 2 by ta-anna"), status

    page.reload()
    assert page.evaluate(f"document.querySelector('{card} input[name=points]').value") == "2"
    assert page.evaluate(f"document.querySelector('{card} textarea').value") == \
        "Says it normalizes; why before ReLU? <b>see lecture 3</b>"
    assert page.evaluate(f"document.querySelector('{card} .status').textContent").startswith("saved: 2 by ta-anna")
    assert page.evaluate(f"document.querySelector('{card}').classList.contains('scored')")
    # The hostile answer is text on the page, and none of its script ran.
    assert page.evaluate("window.pwned === undefined")
    assert "</textarea><script>" in page.evaluate(f"document.querySelector('{_card('mallory.ipynb')} pre').textContent")
    assert page.problems() == []  # no console error, no script refused by the CSP

    with Gradebook(results, create=False) as book:
        saved = book.manual_scores()[("bob.ipynb", QUESTION)]
    assert (saved.points, saved.grader, saved.stale) == (2.0, "ta-anna", False)
    # The results folder is derived again after each save: grades.csv, and the student's
    # feedback with Gradescope's results.json, comment included.
    rows = {r["student_id"]: r for r in csv.DictReader((results / "grades.csv").open())}
    assert rows["s2"][f"written:{QUESTION}"] == "2"
    written = _gradescope_test(results, "s2", "Why BatchNormalization after Conv2D")
    assert (written["score"], written["max_score"]) == (2.0, 4.0)
    assert "see lecture 3" in written["output"]
    assert "see lecture 3" in (results / "feedback" / "s2" / "feedback.html").read_text()


def test_override_a_test_from_the_student_page_with_its_history(page, server, results):
    page.goto(f"{server.origin}/student?s={quote('alice.ipynb')}")
    form = "form[data-kind=override]"
    test = page.evaluate(f"document.querySelector('{form}').dataset.test")
    page.type(f"{form} input[name=points]", "0")
    page.type(f"{form} input[name=reason]", "copied from the solution <i>verbatim</i>")
    title = page.evaluate(f"document.querySelector('{form}').closest('.test-row').querySelector('.title')"
                          ".firstChild.textContent").strip()
    page.click(f"{form} button[type=submit]")
    status = _saved(page, form)
    assert status.startswith("overridden: 0 (by ta-anna"), status
    page.reload()
    history = page.evaluate("[...document.querySelectorAll('ol.muted li')].map(li => li.textContent)")
    assert len(history) == 1 and "copied from the solution <i>verbatim</i>" in history[0]
    feedback = page.evaluate("document.querySelector('.feedback').innerText")
    assert "score changed by your instructor" in feedback and "copied from the solution" in feedback
    assert page.problems() == []
    with Gradebook(results, create=False) as book:
        (override,) = book.override_history("alice.ipynb")
    assert (override.test, override.points, override.grader, override.applies) == (test, 0.0, "ta-anna", True)
    changed = _gradescope_test(results, "s1", title)
    assert changed["score"] == 0 and "copied from the solution" in changed["output"]


# ---------------------------------------------------------------- the command

def test_the_command_prints_its_url_serves_it_and_stops_on_ctrl_c(results, tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "grader", "review", str(results), "--grader", "ta-ben"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        lines = [proc.stdout.readline() for _ in range(2)]
        url = lines[1].strip()
        assert "ta-ben" in lines[0] and url.startswith("http://127.0.0.1:") and "?token=" in url
        port = int(url.split(":")[2].split("/")[0])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", url[len(f"http://127.0.0.1:{port}"):])
        assert conn.getresponse().status == 303
        conn.close()
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "review stopped" in err and "Traceback" not in err


def test_the_command_refuses_what_it_cannot_serve_with_a_usage_error(results, tmp_path, capsys):
    from grader.cli import main
    assert main(["review", str(tmp_path)]) == 2
    assert "run `grader grade ... --out" in capsys.readouterr().err
    assert main(["review", str(results), "--grader", "a\x1bb"]) == 2
    assert "printable characters" in capsys.readouterr().err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert main(["review", str(results), "--port", str(taken.getsockname()[1])]) == 2
    assert "give another --port" in capsys.readouterr().err


def test_a_save_on_work_graded_again_since_the_page_loaded_is_refused_and_the_page_reloads(page, server, results):
    """The page showed one answer; the stored one is now another (as after a regrade): the
    score must not land on work nobody read."""
    page.goto(f"{server.origin}/question?q={QUESTION}")
    card = _card("mallory.ipynb")
    page.wait_for(f"!!document.querySelector('{card}')")
    shown = page.evaluate(f"document.querySelector('{card} form').dataset.version")
    assert shown == _version(results, "mallory.ipynb")
    db = sqlite3.connect(results / "gradebook.sqlite")  # a regrade stored another answer meanwhile
    with db:
        db.execute("UPDATE answers SET sha256 = ? WHERE submission = 'mallory.ipynb'", ("e" * 64,))
    db.close()
    page.evaluate("window.beforeReload = 1")
    page.type(f"{card} input[name=points]", "1")
    page.click(f"{card} button[type=submit]")
    status = _saved(page, card)
    assert status.startswith("Not saved:") and "changed since this page was loaded" in status, status
    page.wait_for("window.beforeReload === undefined && document.readyState === 'complete'", timeout=20)
    assert page.evaluate(f"document.querySelector('{card} form').dataset.version") == "e" * 64
    with Gradebook(results, create=False) as book:
        assert all(h.answer_sha256 != "e" * 64 for h in book.manual_history("mallory.ipynb", QUESTION))
