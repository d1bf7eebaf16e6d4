"""`grader review RESULTS`: the instructor's review pages, served on this machine only.

A stdlib ThreadingHTTPServer bound to 127.0.0.1 (no data leaves the machine) serves the
written answers of a results folder side by side, each student's autograded feedback,
and forms to score answers and override tests. Every write is one gradebook transaction
(the gradebook's own), then the results folder's derived files (grades.csv, grades.json,
feedback/) are rewritten from the gradebook, so what the instructor enters is never only
in the browser.

Who may use it. Anyone on the machine can reach a port on 127.0.0.1, and any web page the
instructor opens can send requests to it, so:

* pages need the server's random token: given once in the printed URL (`?token=`), then
  kept in a SameSite=Strict, HttpOnly cookie for that port (the URL is redirected without
  it, so it stays out of the address bar and history);
* every POST must carry the token in an `X-Review-Token` header (CSRF: a foreign page can
  neither read the token nor set that header without a CORS preflight, which this server
  never grants), be JSON, and come from no other origin;
* the Host header must name this server (127.0.0.1:PORT or localhost:PORT): a DNS
  rebinding page reaches the port under its own host name and is refused;
* request bodies are capped; every page sets a Content-Security-Policy that allows only
  its own nonce'd script and requests to itself.

Each request opens the gradebook itself (an SQLite connection belongs to one thread);
a save and the file rewrites after it hold the results folder's lock (shared with other
servers, `grader grade --out` and `grader override`: grader.classroom.folder_lock), so the
files always end up holding the latest state. Each save names the version of the work the
page showed; a save on work graded again since is refused (409) and the page reloads.
"""
from __future__ import annotations

import getpass
import hmac
import json
import math
import secrets
import sqlite3
import sys
import threading
import traceback
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, urlencode, urlsplit

from grader.classroom import review_page as page
from grader.classroom.decisions import StaleVersion
from grader.classroom.folder_lock import results_lock
from grader.classroom.gradebook import Gradebook, GradebookError
from grader.classroom.names import printable
from grader.classroom.outputs import Finals, export_grades
from grader.classroom.storable import utf8
from grader.render._common import fmt_score

HOST = "127.0.0.1"
MAX_BODY = 64 * 1024  # bytes; a score with the longest comment allowed fits with room to spare
MAX_FIELD = 1_000  # characters of an id (submission, question, test) in a request
MAX_GRADER_NAME = 100
TOKEN_HEADER = "X-Review-Token"
PAGES = ("/", "/question", "/student")


class ReviewError(Exception):
    """The review server cannot start as asked; the message says what to do."""


# ---------------------------------------------------------------- requests and responses

@dataclass(frozen=True)
class Request:
    method: str
    target: str  # path and query as sent
    headers: dict[str, str]  # names lower-cased
    body: bytes = b""

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        """The first value of each field; nothing at all from a query of more than 20 fields."""
        try:
            return {k: v[0] for k, v in parse_qs(urlsplit(self.target).query, max_num_fields=20).items()}
        except ValueError:
            return {}

    def cookie(self, name: str) -> str:
        for part in self.headers.get("cookie", "").split(";"):
            key, _, value = part.strip().partition("=")
            if key == name:
                return value
        return ""


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


def _json(status: int, document: dict) -> Response:
    return Response(status, json.dumps(document, ensure_ascii=True).encode(), "application/json")


def _error(status: int, message: str) -> Response:
    return _json(status, {"error": message})


def _html(status: int, ctx: page.Context, text: str) -> Response:
    """A page, with a Content-Security-Policy that runs only its own script (by nonce) and
    lets it talk only to this server."""
    csp = ("default-src 'none'; "
           f"script-src 'nonce-{ctx.nonce}'; style-src 'unsafe-inline'; img-src data:; connect-src 'self'; "
           "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
    return Response(status, utf8(text), headers=(("Content-Security-Policy", csp),))


# ---------------------------------------------------------------- what a POST may carry

@dataclass(frozen=True)
class ScoreInput:
    submission: str
    question: str
    points: float
    comment: str
    version: str  # the answer's hash the page showed: a save on another answer is refused


@dataclass(frozen=True)
class OverrideInput:
    submission: str
    test: str
    points: float | None  # None: withdraw the override
    reason: str
    version: str  # the notebook's hash the page showed


def _text(doc: dict, key: str, limit: int, *, required: bool = True) -> str:
    value = doc.get(key, "" if not required else None)
    if not isinstance(value, str):
        raise ValueError(f"{key!r} must be a string")
    if required and not value.strip():
        raise ValueError(f"{key!r} is empty")
    if len(value) > limit:
        raise ValueError(f"the {key} is longer than {limit:,} characters; shorten it")
    return value


def _points(doc: dict) -> float:
    value = doc.get("points")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("points must be a number (type a score in the points box)")
    try:
        points = float(value)
    except OverflowError:
        points = math.inf
    if not math.isfinite(points):
        raise ValueError("points must be a finite number (type a score in the points box)")
    return points


MAX_DEPTH = 8  # nesting of a request's JSON: the page sends one flat object
MAX_INT_DIGITS = 15  # a score's points; a longer integer is no score (and float() of 10**400 overflows)


def _depth(body: bytes) -> int:
    """How deeply the JSON in `body` nests, counted without parsing it (so 30,000 brackets
    are refused before the parser recurses into them). Strings are skipped."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def _document(body: bytes) -> dict:
    def refuse(constant):
        raise ValueError(f"{constant} is not a number")

    def integer(digits: str) -> int:
        if len(digits.lstrip("-")) > MAX_INT_DIGITS:
            raise ValueError(f"a number of {len(digits.lstrip('-')):,} digits is not a score; "
                             f"type the points in the points box")
        return int(digits)

    if _depth(body) > MAX_DEPTH:
        raise ValueError(f"the request body nests deeper than {MAX_DEPTH} levels; the review page sends one "
                         f"flat JSON object: reload it and save again")
    try:
        doc = json.loads(body.decode("utf-8"), parse_constant=refuse, parse_int=integer)
    except UnicodeDecodeError:
        raise ValueError("the request body is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"the request body is not JSON ({exc.msg})") from None
    except RecursionError:
        raise ValueError("the request body nests too deeply") from None
    if not isinstance(doc, dict):
        raise ValueError("the request body must be a JSON object")
    return doc


def _version(doc: dict) -> str:
    """What the page showed (a hash): a decision is bound to it, so one made on a page
    loaded before the notebook was graded again is refused, not applied to unseen work."""
    value = doc.get("version")
    if not isinstance(value, str) or not value.strip() or len(value) > 100:
        raise ValueError("this save does not say which version of the work it was made on: reload the page "
                         "and save again")
    return value


def parse_score(body: bytes) -> ScoreInput:
    """A score from the page's JSON, or ValueError saying what is wrong with it."""
    doc = _document(body)
    return ScoreInput(_text(doc, "submission", MAX_FIELD), _text(doc, "question", MAX_FIELD), _points(doc),
                      _text(doc, "comment", page.MAX_COMMENT_CHARS, required=False), _version(doc))


def parse_override(body: bytes) -> OverrideInput:
    """An override from the page's JSON; points null withdraws the test's override."""
    doc = _document(body)
    reason = _text(doc, "reason", page.MAX_REASON_CHARS, required=False)
    if not reason.strip():
        raise ValueError("an override needs a reason: the student and the next grader read it")
    points = None if doc.get("points", 0) is None else _points(doc)
    return OverrideInput(_text(doc, "submission", MAX_FIELD), _text(doc, "test", MAX_FIELD), points, reason,
                         _version(doc))


# ---------------------------------------------------------------- the application

def default_grader() -> str:
    """Who is grading, as recorded with each score: the OS user, when it can be told."""
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in this environment (a container)
        return "instructor"


def check_grader_name(name: str) -> str:
    """The name as given, or ReviewError saying why it cannot be recorded."""
    if not name.strip():
        raise ReviewError("--grader needs a name (it is recorded with every score and override)")
    if len(name) > MAX_GRADER_NAME or printable(name) != name:
        raise ReviewError(f"--grader: a name of at most {MAX_GRADER_NAME} printable characters, please")
    return name


@dataclass
class Review:
    """What the server does with one request, apart from sockets: testable on its own."""

    folder: Path
    grader: str
    port: int = 0
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    @property
    def cookie_name(self) -> str:
        return f"grader_review_{self.port}"  # cookies ignore ports: one per server

    def allowed_hosts(self) -> tuple[str, ...]:
        return (f"{HOST}:{self.port}", f"localhost:{self.port}")

    # -- the gate
    def refusal(self, request: Request) -> Response | None:
        host = request.headers.get("host", "")
        if host.lower() not in self.allowed_hosts():
            return _error(403, f"this server answers only to http://{HOST}:{self.port}/ (Host header "
                               f"{printable(host[:100])!r} refused: it may be a DNS rebinding attempt)")
        if request.method == "POST":
            origin = request.headers.get("origin")
            if origin is not None and origin not in {f"http://{h}" for h in self.allowed_hosts()}:
                return _error(403, "requests from other web pages are refused")
            if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
                return _error(403, "requests from other web pages are refused")
            if not hmac.compare_digest(request.headers.get(TOKEN_HEADER.lower(), "").encode(), self.token.encode()):
                return _error(403, f"missing or wrong {TOKEN_HEADER} header: reload the review page (if the "
                                   f"server was restarted, open the new URL it printed)")
            if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
                return _error(415, "the body must be JSON (Content-Type: application/json)")
        return None

    def _has_cookie(self, request: Request) -> bool:
        return hmac.compare_digest(request.cookie(self.cookie_name).encode(), self.token.encode())

    # -- dispatch
    def respond(self, request: Request) -> Response:
        refused = self.refusal(request)
        if refused is not None:
            return refused
        if request.method == "POST":
            routes = {"/api/score": self.save_score, "/api/override": self.save_override}
            handler = routes.get(request.path)
            return handler(request.body) if handler else _error(404, f"no such action {printable(request.path[:100])}")
        if request.method != "GET":
            return _error(405, "only GET and POST are served")
        given = request.query.get("token")
        if given is not None and hmac.compare_digest(given.encode(), self.token.encode()):
            rest = {k: v for k, v in request.query.items() if k != "token"}
            # Only to a page of ours: a path such as //elsewhere.example would leave the site.
            path = request.path if request.path in PAGES else "/"
            location = path + (f"?{urlencode(rest)}" if rest else "")
            return Response(303, b"", headers=(
                ("Location", location),
                ("Set-Cookie", f"{self.cookie_name}={self.token}; Path=/; HttpOnly; SameSite=Strict")))
        if not self._has_cookie(request):  # this page tells nothing: no token, no names
            ctx = page.Context(assignment="", token="", nonce=secrets.token_urlsafe(16), grader="")
            return _html(403, ctx, page.message_page(ctx, "Access token needed", (
                "Open the address that `grader review` printed (it ends with ?token=...); this page holds "
                "students' work, so other programs and users on this machine are kept out.")))
        return self._page(request)

    def _context(self, assignment: str) -> page.Context:
        return page.Context(assignment=assignment, token=self.token, nonce=secrets.token_urlsafe(16),
                            grader=self.grader)

    def _page(self, request: Request) -> Response:
        handler = {"/": self.index, "/question": self.question, "/student": self.student}.get(request.path)
        with Gradebook(self.folder, create=False) as book:
            ctx = self._context(book.assignment)
            if handler is None:
                return _html(404, ctx, page.message_page(ctx, "Not found", f"There is no page "
                                                         f"{printable(request.path[:100])!r}."))
            status, text = handler(book, ctx, request.query)
        return _html(status, ctx, text)

    # -- pages
    def _students(self, book: Gradebook) -> list[page.Student]:
        return [page.Student(g.student_id, g.name, g.row.submission, g.row.sha256)
                for g in book.students(book.identities()) if g.row is not None]

    def index(self, book: Gradebook, ctx: page.Context, query: dict) -> tuple[int, str]:
        students = self._students(book)
        chosen = {s.submission for s in students}
        scores = book.manual_scores()
        questions = []
        for q in book.questions():
            answered = {a.submission for a in book.answers(q.id) if a.text.strip()} & chosen
            mine = [s for (sub, qid), s in scores.items() if qid == q.id and sub in chosen]
            questions.append(page.QuestionSummary(q, len(answered), len(mine), sum(s.stale for s in mine),
                                                  len(students)))
        overrides = book.overrides()
        finals = Finals(book)
        summaries = []
        for st in students:
            row = book.row(st.submission)
            final = finals.grade(row) if row is not None and row.graded else None
            auto = f"{fmt_score(final.total)} / {fmt_score(final.max_total)}" if final else "not graded"
            mine = [scores[(st.submission, q.question.id)] for q in questions
                    if (st.submission, q.question.id) in scores]
            written = (f"{fmt_score(sum(s.points for s in mine))} / "
                       f"{fmt_score(sum(q.question.points for q in questions))} "
                       f"({len(mine)} of {len(questions)} scored)") if questions else ""
            summaries.append(page.StudentSummary(st, auto, written,
                                                 sum(1 for (sub, _) in overrides if sub == st.submission)))
        return 200, page.index_page(ctx, questions, summaries)

    def _cards(self, book: Gradebook, question, students: list[page.Student], scores: dict, *,
               history: bool = False) -> list[page.Card]:
        """One card per student; their earlier scores only when asked (one query per card:
        the student page asks, the question page of a whole class does not)."""
        answers = {a.submission: a for a in book.answers(question.id)}
        return [page.Card(st, answers.get(st.submission), scores.get((st.submission, question.id)),
                          tuple(book.manual_history(st.submission, question.id)) if history else ())
                for st in students]

    def question(self, book: Gradebook, ctx: page.Context, query: dict) -> tuple[int, str]:
        wanted = query.get("q", "")
        question = next((q for q in book.questions() if q.id == wanted), None)
        if question is None:
            return 404, page.message_page(ctx, "No such question", f"This assignment has no written question "
                                          f"{printable(wanted[:100])!r}; pick one from the overview.")
        cards = self._cards(book, question, self._students(book), book.manual_scores())
        return 200, page.question_page(ctx, question, cards)

    def student(self, book: Gradebook, ctx: page.Context, query: dict) -> tuple[int, str]:
        submission = query.get("s", "")
        row = book.row(submission)
        if row is None:
            return 404, page.message_page(ctx, "No such submission", f"No submission "
                                          f"{printable(submission[:200])!r} in this gradebook.")
        identities = book.identities()
        student = page.Student(identities.student_id(row.student_key), identities.name(row.student_key), submission,
                               row.sha256)
        scores = book.manual_scores()
        written = [(q, self._cards(book, q, [student], scores, history=True)[0]) for q in book.questions()]
        overrides = {test: o for (sub, test), o in book.overrides().items() if sub == submission}
        autograded = book.result(submission)
        # The feedback shown is the student's final one (overrides, written scores and any
        # late penalty folded in), as the results folder holds it; the override forms list
        # the autograded tests as graded.
        final = Finals(book, identities).grade(row, student.student_id) if row.graded else None
        return 200, page.student_page(ctx, student, autograded, overrides, book.override_history(submission),
                                      written, final=final)

    # -- writes
    def _write(self, action: Callable[[Gradebook], object], describe: Callable[[object], str]) -> Response:
        """Run `action` on the gradebook (its own transaction), then rewrite the derived files;
        a failure of the rewrite is reported beside the saved value, not instead of it."""
        try:
            with results_lock(self.folder), Gradebook(self.folder, create=False) as book:
                try:
                    record = action(book)
                except StaleVersion as exc:  # the page shows other work than is stored: reload it
                    return _json(409, {"error": str(exc), "reload": True})
                except GradebookError as exc:
                    return _error(400, str(exc))
                warning = ""
                try:
                    export_grades(book, changed={record.submission})
                except (OSError, GradebookError, sqlite3.Error) as exc:
                    warning = (f"It is in the gradebook, but the results folder's files could not be "
                               f"rewritten ({exc}); `grader review` tries again on the next save.")
        except sqlite3.Error as exc:
            return _error(503, f"the gradebook is busy or unreadable ({exc}); try saving again")
        except GradebookError as exc:  # the file is gone or damaged, or held too long: nothing was saved
            return _error(503, f"nothing was saved: {exc}")
        return _json(200, {"ok": True, "message": describe(record), "warning": warning})

    def save_score(self, body: bytes) -> Response:
        try:
            score = parse_score(body)
        except ValueError as exc:
            return _error(400, str(exc))
        return self._write(
            lambda book: book.set_manual_score(score.submission, score.question, score.points, score.comment,
                                               self.grader, version=score.version),
            lambda s: f"saved: {fmt_score(s.points)} by {s.grader} at {s.at}")

    def save_override(self, body: bytes) -> Response:
        try:
            o = parse_override(body)
        except ValueError as exc:
            return _error(400, str(exc))
        return self._write(lambda book: book.add_override(o.submission, o.test, o.points, o.reason, self.grader,
                                                          version=o.version),
                           lambda r: (f"overridden: {fmt_score(r.points)}" if r.points is not None else
                                      "override withdrawn: the autograder's score counts again")
                           + f" (by {r.grader} at {r.at})")


# ---------------------------------------------------------------- the HTTP side

class _Handler(BaseHTTPRequestHandler):
    server_version = "grader-review"
    sys_version = ""
    timeout = 60  # seconds a connection may sit idle (a body announced but never sent)
    server: "_Server"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._handle(b"")

    def do_POST(self) -> None:  # noqa: N802
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self._send(_error(411, "a POST needs a Content-Length"))
            return
        if int(length) > MAX_BODY:
            self.close_connection = True  # the body is left unread
            self._send(_error(413, f"the request is larger than {MAX_BODY // 1024} KiB; shorten the comment"))
            return
        self._handle(self.rfile.read(int(length)))

    def _handle(self, body: bytes) -> None:
        request = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        try:
            response = self.server.review.respond(request)
        except GradebookError as exc:  # the gradebook is gone or damaged: said, not a server error
            response = _error(503, str(exc))
        except Exception as exc:  # noqa: BLE001 - one bad request must not stop the server
            traceback.print_exc(file=sys.stderr)
            response = _error(500, f"the review server failed on this request ({type(exc).__name__}: "
                                   f"{printable(str(exc))[:300]}); the details are in its terminal")
        self._send(response)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Frame-Options", "DENY")
        for name, value in response.headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - quiet: URLs can hold the token
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    review: Review


class ReviewServer:
    """The server around a Review: started on 127.0.0.1 (port 0: a free one), stopped by
    close(), which waits for a save in progress to finish."""

    def __init__(self, results: str | Path, *, grader: str | None = None, port: int = 0):
        folder = Path(results)
        Gradebook(folder, create=False).close()  # GradebookError now, not on the first page
        name = check_grader_name(grader) if grader is not None else default_grader()
        if not 0 <= port <= 65535:
            raise ReviewError(f"--port {port}: a port is a number from 1 to 65535 (0: any free one)")
        try:
            self.httpd = _Server((HOST, port), _Handler)
        except OSError as exc:
            raise ReviewError(f"cannot listen on {HOST}:{port} ({exc.strerror or exc}); give another --port, "
                              f"or none to take a free one") from None
        self.review = Review(folder, name, port=self.httpd.server_address[1])
        self.httpd.review = self.review
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The address to open: it carries the access token."""
        return f"http://{HOST}:{self.review.port}/?token={self.review.token}"

    @property
    def origin(self) -> str:
        return f"http://{HOST}:{self.review.port}"

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.25)

    def start(self) -> "ReviewServer":
        """Serve from a background thread (tests, or a caller with its own loop)."""
        self._thread = threading.Thread(target=self.serve_forever, name="grader-review", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join()
        self.httpd.server_close()
        with results_lock(self.review.folder):  # a save under way finishes before we return
            pass

    def __enter__(self) -> "ReviewServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
