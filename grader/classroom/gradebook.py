"""The gradebook: one SQLite file per results folder, written as each submission finishes.

Embedded (no server to run), in WAL mode so `grader report` can read while a run writes,
and one transaction per submission, so a run killed at any moment keeps every grade it
had recorded and the next run grades only what is new or changed: a stored grade holds
while the notebook's content hash and the assignment's fingerprint are those it was
graded with.

Everything else in a results folder (grades.csv, grades.json, feedback/) is derived from
the gradebook and can be rewritten from it at any time.

Schema (see SCHEMA below for the columns):

* `submissions`: the current state of each notebook, keyed by its path inside the
  submissions folder; `status` is `graded`, `ungraded` (the notebook's fault: unreadable,
  nothing to grade; `reason` says why) or `failed` (the grader's fault: tried again on the
  next run). `result_json` holds the whole `SubmissionResult`, so any feedback format can
  be rendered again later.
* `tests`: one row per test of each current submission (score, status, diagnosis, time).
* `code`: each graded function's source and normalized source, for the class report.
* `gradings`: append-only, one row per grading recorded (the "graded exactly once" audit).
* `runs`: one row per `grader grade` invocation; `students`: the roster last given;
  `meta`: schema version and the assignment this folder belongs to.
"""
from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from grader.classroom.names import csv_cell, folder_identity, folder_problem, printable
from grader.results import SubmissionResult, submission_result_from_dict

FILENAME = "gradebook.sqlite"
SCHEMA_VERSION = 1

GRADED, UNGRADED, FAILED = "graded", "ungraded", "failed"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id          INTEGER PRIMARY KEY,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    fingerprint TEXT NOT NULL,
    command     TEXT NOT NULL,
    backend     TEXT NOT NULL,          -- "local, 4 processes" or "dask tcp://host:8786"
    found       INTEGER NOT NULL,       -- notebooks in the batch
    to_grade    INTEGER NOT NULL,       -- of which new or changed
    graded      INTEGER NOT NULL DEFAULT 0,
    outcome     TEXT NOT NULL DEFAULT 'running'   -- running, finished, interrupted
);
CREATE TABLE IF NOT EXISTS students (
    key        TEXT PRIMARY KEY,        -- file stem or folder name, as in the roster's file_or_folder
    student_id TEXT NOT NULL,
    name       TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS submissions (
    submission     TEXT PRIMARY KEY,    -- path inside the submissions folder: alice.ipynb, bob/hw3.ipynb
    student_key    TEXT NOT NULL,       -- file stem or folder name (mapped to an id by the roster)
    path           TEXT NOT NULL,       -- as given on the command line, for messages
    sha256         TEXT NOT NULL,       -- of the notebook bytes that were graded
    fingerprint    TEXT NOT NULL,       -- Assignment.fingerprint it was graded with
    status         TEXT NOT NULL CHECK (status IN ('graded', 'ungraded', 'failed')),
    score          REAL NOT NULL,
    max_score      REAL NOT NULL,
    reason         TEXT NOT NULL DEFAULT '',  -- why there is no grade
    execution_time REAL NOT NULL,       -- seconds spent grading (SubmissionResult.execution_time)
    wall_time      REAL NOT NULL,       -- seconds in the grading process, overhead included
    isolation      TEXT NOT NULL,
    host           TEXT NOT NULL,       -- machine:pid that graded it
    process_order  INTEGER NOT NULL,    -- its rank in that process (1: the first, slowed by warm-up)
    mtime          REAL NOT NULL,       -- the notebook's modification time (latest wins per student)
    graded_at      TEXT NOT NULL,
    run_id         INTEGER NOT NULL REFERENCES runs(id),
    result_json    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tests (
    submission TEXT NOT NULL REFERENCES submissions(submission) ON DELETE CASCADE,
    position   INTEGER NOT NULL,
    nodeid     TEXT NOT NULL,
    exercise   TEXT NOT NULL,
    name       TEXT NOT NULL,
    status     TEXT NOT NULL,           -- passed, failed, not_run
    visibility TEXT NOT NULL,
    score      REAL NOT NULL,
    max_score  REAL NOT NULL,
    diagnosis  TEXT NOT NULL,
    duration   REAL NOT NULL,
    PRIMARY KEY (submission, position)
);
CREATE TABLE IF NOT EXISTS code (
    submission TEXT NOT NULL REFERENCES submissions(submission) ON DELETE CASCADE,
    exercise   TEXT NOT NULL,
    source     TEXT NOT NULL,           -- the graded definition as written ("" when missing)
    normalized TEXT NOT NULL,           -- comments, docstrings, layout and local names canonical
    PRIMARY KEY (submission, exercise)
);
CREATE TABLE IF NOT EXISTS gradings (
    id          INTEGER PRIMARY KEY,
    submission  TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    run_id      INTEGER NOT NULL,
    status      TEXT NOT NULL,
    score       REAL NOT NULL,
    graded_at   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS gradings_by_submission ON gradings (submission);
"""


class GradebookError(Exception):
    """The results folder or the roster cannot be used as asked (a usage error)."""


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


# ---------------------------------------------------------------- the roster

@dataclass(frozen=True)
class RosterEntry:
    key: str
    student_id: str
    name: str = ""


_KEY_COLUMNS = ("file_or_folder", "file", "folder", "submission", "key")
_ID_COLUMNS = ("student_id", "id", "sid", "student")
_NAME_COLUMNS = ("name", "student_name", "full_name")


def normalize_key(text: str) -> str:
    """"alice.ipynb", "alice/" and "alice" name the same student in a roster."""
    key = text.strip().rstrip("/\\")
    return key[: -len(".ipynb")] if key.lower().endswith(".ipynb") else key


def read_roster(path: str | Path) -> list[RosterEntry]:
    """A CSV with a header naming at least `file_or_folder` (the submission's file stem or
    folder name) and usually `student_id` and `name`; other columns are ignored."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise GradebookError(f"roster {path}: cannot be read ({exc})") from None
    reader = csv.DictReader(io.StringIO(text))
    columns = {(c or "").strip().lower(): c for c in reader.fieldnames or []}

    def pick(options):
        return next((columns[o] for o in options if o in columns), None)

    key_col, id_col, name_col = pick(_KEY_COLUMNS), pick(_ID_COLUMNS), pick(_NAME_COLUMNS)
    if key_col is None:
        raise GradebookError(f"roster {path}: needs a header with a file_or_folder column "
                             f"(found: {', '.join(columns) or 'no header'})")
    entries: dict[str, RosterEntry] = {}
    for line, row in enumerate(reader, start=2):
        key = normalize_key(row.get(key_col) or "")
        if not key:
            continue
        if key in entries:
            raise GradebookError(f"roster {path}, line {line}: {key!r} appears twice")
        student_id = (row.get(id_col) or "").strip() if id_col else ""
        name = (row.get(name_col) or "").strip() if name_col else ""
        entries[key] = RosterEntry(key, student_id or key, name)
    return list(entries.values())


class Identities:
    """Who a submission belongs to: the roster's student for its file stem or folder name,
    spelled exactly, or that name itself when the roster does not list it.

    Exactly: `ALICE.ipynb`, `alice .ipynb` or a folder `alice.` is not Alice's. Matching
    them to her would let anyone's file count as her submission (the latest one wins); a
    roster spelled differently from the files instead shows up in the 'not in the roster'
    warning, to be fixed there."""

    def __init__(self, entries: Iterable[RosterEntry] = ()):
        self.entries = list(entries)
        self._exact = {e.key: e for e in self.entries}

    def entry(self, student_key: str) -> RosterEntry | None:
        key = student_key[: -len(".ipynb")] if student_key.endswith(".ipynb") else student_key
        return self._exact.get(key)

    def student_id(self, student_key: str) -> str:
        entry = self.entry(student_key)
        return entry.student_id if entry else student_key

    def name(self, student_key: str) -> str:
        entry = self.entry(student_key)
        return entry.name if entry else ""


# ---------------------------------------------------------------- rows

@dataclass
class Row:
    submission: str
    student_key: str
    path: str
    sha256: str
    fingerprint: str
    status: str
    score: float
    max_score: float
    reason: str
    execution_time: float
    wall_time: float
    isolation: str
    host: str
    process_order: int
    mtime: float
    graded_at: str
    run_id: int

    @property
    def graded(self) -> bool:
        return self.status == GRADED


_ROW_COLUMNS = ("submission, student_key, path, sha256, fingerprint, status, score, max_score, reason, "
                "execution_time, wall_time, isolation, host, process_order, mtime, graded_at, run_id")


@dataclass
class StudentGrade:
    """One line of grades.csv: a student and the submission their grade comes from."""

    student_id: str
    name: str
    row: Row | None  # None: listed in the roster, nothing submitted
    exercises: dict[str, float] = field(default_factory=dict)
    submissions: int = 0

    @property
    def status(self) -> str:
        if self.row is None:
            return "no submission"
        return "graded" if self.row.graded else "not graded"

    @property
    def reason(self) -> str:
        if self.row is None:
            return "no submission found"
        return self.row.reason


class Gradebook:
    def __init__(self, folder: str | Path, *, create: bool = True):
        self.folder = Path(folder)
        self.path = self.folder / FILENAME
        if not create and not self.path.is_file():
            raise GradebookError(f"{self.folder} holds no gradebook ({FILENAME}); "
                                 f"run `grader grade ... --out {self.folder}` first")
        if create:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise GradebookError(f"cannot create the results folder {self.folder}: {exc}") from None
        try:
            self.db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed grade survives a power cut, not just a killed process; one
            # fsync per submission is nothing next to the second it takes to grade it.
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise GradebookError(f"{self.path}: not a usable gradebook ({exc})") from None
        version = self.meta("schema_version")
        if version is None:
            self.set_meta("schema_version", str(SCHEMA_VERSION))
        elif int(version) > SCHEMA_VERSION:
            raise GradebookError(f"{self.path} was written by a newer grader (schema {version}); upgrade grader")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Gradebook":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- meta
    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def bind(self, assignment) -> None:
        """A results folder holds one assignment; mixing two would mix their grades."""
        known = self.meta("assignment")
        if known is not None and known != assignment.name:
            raise GradebookError(f"{self.folder} holds grades for the assignment {known!r}, not "
                                 f"{assignment.name!r}; give another --out folder")
        self.db.execute("BEGIN IMMEDIATE")
        for key, value in (("assignment", assignment.name), ("title", assignment.title),
                           ("assignment_root", str(assignment.root)), ("reference", str(assignment.reference)),
                           ("exercises", json.dumps(list(assignment.exercises))),
                           ("total_points", "" if assignment.total_points is None else str(assignment.total_points)),
                           ("fingerprint", assignment.fingerprint)):
            self.set_meta(key, value)
        self.db.execute("COMMIT")

    @property
    def assignment(self) -> str:
        return self.meta("assignment") or ""

    @property
    def exercises(self) -> list[str]:
        """The assignment's exercises in its order, then any others found in stored tests."""
        names = json.loads(self.meta("exercises") or "[]")
        for (name,) in self.db.execute("SELECT DISTINCT exercise FROM tests ORDER BY exercise"):
            if name and name not in names:
                names.append(name)
        return names

    # -- roster
    def set_roster(self, entries: Iterable[RosterEntry]) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        self.db.execute("DELETE FROM students")
        self.db.executemany("INSERT INTO students (key, student_id, name) VALUES (?, ?, ?)",
                            [(e.key, e.student_id, e.name) for e in entries])
        self.db.execute("COMMIT")

    def identities(self) -> Identities:
        return Identities(RosterEntry(*r) for r in self.db.execute("SELECT key, student_id, name FROM students"))

    # -- runs
    def start_run(self, *, fingerprint: str, command: str, backend: str, found: int, to_grade: int) -> int:
        cur = self.db.execute("INSERT INTO runs (started_at, fingerprint, command, backend, found, to_grade) "
                              "VALUES (?, ?, ?, ?, ?, ?)", (_now(), fingerprint, command, backend, found, to_grade))
        return int(cur.lastrowid)

    def finish_run(self, run_id: int, *, graded: int, outcome: str) -> None:
        self.db.execute("UPDATE runs SET finished_at = ?, graded = ?, outcome = ? WHERE id = ?",
                        (_now(), graded, outcome, run_id))

    # -- submissions
    def stored(self) -> dict[str, tuple[str, str, str]]:
        """submission -> (sha256, fingerprint, status): what a new run compares against."""
        return {s: (h, f, st) for s, h, f, st in
                self.db.execute("SELECT submission, sha256, fingerprint, status FROM submissions")}

    def is_current(self, submission: str, sha256: str, fingerprint: str) -> bool:
        """A stored outcome still holds: same bytes, same assignment, and not a failure of
        the grader itself (those are tried again)."""
        row = self.db.execute("SELECT sha256, fingerprint, status FROM submissions WHERE submission = ?",
                              (submission,)).fetchone()
        return bool(sha256) and row is not None and row[0] == sha256 and row[1] == fingerprint and row[2] != FAILED

    def split(self, tasks, fingerprint: str, *, regrade: bool = False) -> tuple[list, list]:
        """(to grade, already graded and unchanged) among `tasks` (anything with `.key` and
        `.path`); --regrade grades everything it is given again."""
        from grader.classroom.submissions import file_sha256
        if regrade:
            return list(tasks), []
        todo, kept = [], []
        for task in tasks:
            (kept if self.is_current(task.key, file_sha256(task.path), fingerprint) else todo).append(task)
        return todo, kept

    def record(self, *, submission: str, student_key: str, graded, run_id: int, mtime: float,
               fingerprint: str) -> Row:
        """Store one grading in a single transaction: all of it or, if killed, none of it."""
        result: SubmissionResult = graded.result
        if not result.errors:
            status = GRADED
        else:
            status = FAILED if graded.transient else UNGRADED
        row = Row(submission=submission, student_key=student_key, path=str(graded.path),
                  sha256=graded.sha256, fingerprint=graded.fingerprint or fingerprint, status=status,
                  score=0.0 if result.errors else result.score, max_score=result.max_score,
                  reason="; ".join(result.errors), execution_time=round(result.execution_time, 3),
                  wall_time=round(graded.wall, 3), isolation=result.isolation, host=graded.host,
                  process_order=graded.order, mtime=mtime, graded_at=_now(), run_id=run_id)
        values = (row.submission, row.student_key, row.path, row.sha256, row.fingerprint, row.status, row.score,
                  row.max_score, row.reason, row.execution_time, row.wall_time, row.isolation, row.host,
                  row.process_order, row.mtime, row.graded_at, row.run_id)
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute("DELETE FROM tests WHERE submission = ?", (submission,))
            self.db.execute("DELETE FROM code WHERE submission = ?", (submission,))
            self.db.execute(f"INSERT OR REPLACE INTO submissions ({_ROW_COLUMNS}, result_json) "
                            f"VALUES ({', '.join('?' * (len(values) + 1))})",
                            values + (json.dumps(result.to_dict(), ensure_ascii=True),))
            self.db.executemany(
                "INSERT INTO tests (submission, position, nodeid, exercise, name, status, visibility, score, "
                "max_score, diagnosis, duration) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(submission, i, t.nodeid, t.exercise, t.name, t.status.value, t.visibility.value, t.score,
                  t.max_score, t.diagnosis, round(t.duration, 4)) for i, t in enumerate(result.tests)])
            self.db.executemany(
                "INSERT INTO code (submission, exercise, source, normalized) VALUES (?, ?, ?, ?)",
                [(submission, ex, c.get("source", ""), c.get("normalized", "")) for ex, c in graded.code.items()])
            self.db.execute("INSERT INTO gradings (submission, sha256, fingerprint, run_id, status, score, graded_at) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (submission, row.sha256, row.fingerprint, run_id, status, row.score, row.graded_at))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return row

    def rows(self) -> list[Row]:
        return [Row(*r) for r in self.db.execute(f"SELECT {_ROW_COLUMNS} FROM submissions ORDER BY submission")]

    def row(self, submission: str) -> Row | None:
        r = self.db.execute(f"SELECT {_ROW_COLUMNS} FROM submissions WHERE submission = ?", (submission,)).fetchone()
        return Row(*r) if r else None

    def result(self, submission: str) -> SubmissionResult | None:
        r = self.db.execute("SELECT result_json FROM submissions WHERE submission = ?", (submission,)).fetchone()
        return submission_result_from_dict(json.loads(r[0])) if r else None

    def tests(self) -> Iterator[tuple]:
        """(submission, exercise, name, status, score, max_score, diagnosis, nodeid) for every current test."""
        yield from self.db.execute("SELECT submission, exercise, name, status, score, max_score, diagnosis, nodeid "
                                   "FROM tests ORDER BY submission, position")

    def code(self) -> Iterator[tuple[str, str, str, str]]:
        """(submission, exercise, source, normalized) for every stored graded function."""
        yield from self.db.execute("SELECT submission, exercise, source, normalized FROM code "
                                   "ORDER BY exercise, submission")

    def gradings_per_submission(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT submission, COUNT(*) FROM gradings GROUP BY submission"))

    def runs(self) -> list[dict]:
        cur = self.db.execute("SELECT * FROM runs ORDER BY id")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur]

    # -- the class
    def exercise_scores(self) -> dict[str, dict[str, tuple[float, float]]]:
        """submission -> exercise -> (score, max_score)."""
        out: dict[str, dict[str, tuple[float, float]]] = {}
        for sub, ex, score, max_score in self.db.execute(
                "SELECT submission, exercise, SUM(score), SUM(max_score) FROM tests GROUP BY submission, exercise"):
            out.setdefault(sub, {})[ex] = (round(score, 6), round(max_score, 6))
        return out

    def exercise_max(self) -> dict[str, float]:
        scores = self.exercise_scores()
        best: dict[str, float] = {}
        for per in scores.values():
            for ex, (_, m) in per.items():
                best[ex] = max(best.get(ex, 0.0), m)
        return best

    def students(self, identities: Identities | None = None) -> list[StudentGrade]:
        """One grade per student: from their most recently modified notebook when a folder
        holds several, and a row for every roster student who submitted nothing."""
        identities = identities or self.identities()
        scores = self.exercise_scores()
        by_student: dict[str, list[Row]] = {}
        for row in self.rows():
            by_student.setdefault(identities.student_id(row.student_key), []).append(row)
        grades = []
        for student_id, rows in by_student.items():
            chosen = max(rows, key=lambda r: (r.mtime, r.submission))
            per = scores.get(chosen.submission, {}) if chosen.graded else {}
            grades.append(StudentGrade(student_id, identities.name(chosen.student_key), chosen,
                                       {ex: s for ex, (s, _) in per.items()}, len(rows)))
        for entry in identities.entries:
            if entry.student_id not in by_student:
                grades.append(StudentGrade(entry.student_id, entry.name, None))
                by_student[entry.student_id] = []
        return sorted(grades, key=lambda g: g.student_id.casefold())


# ---------------------------------------------------------------- files derived from it

def _write_atomic(path: Path, text: str) -> None:
    """Readers (a browser, an LMS upload, the next run) never see a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class FeedbackRefused(GradebookError):
    """A student's feedback cannot have a folder of its own; the message says why."""


def feedback_dir(folder: Path, student_id: str) -> Path:
    """feedback/<student_id>/, the id itself as the folder's name: one id, one folder.
    An id that is not safe as a folder name everywhere is refused (FeedbackRefused), never
    altered, since altering is how two ids end up in one folder."""
    problem = folder_problem(student_id)
    if problem:
        raise FeedbackRefused(f"no feedback folder for {printable(student_id)!r}: {problem}; rename the "
                              f"submission (or map it to a student id with --roster)")
    return Path(folder) / "feedback" / student_id


def _claim(where: Path, student_id: str) -> None:
    """Refuse `where` when a case-insensitive file system (macOS, Windows; or the one the
    results folder is copied to) would take it for a folder already there under another
    name. Ids are already refused unless composed (NFC), so normalization cannot alias."""
    mine = folder_identity(student_id)
    if where.parent.is_dir():
        for other in where.parent.iterdir():
            if other.name != student_id and folder_identity(other.name) == mine:
                raise FeedbackRefused(f"no feedback folder for {printable(student_id)!r}: it would be the same "
                                      f"folder as {printable(other.name)!r} on a case-insensitive file system; "
                                      f"give them distinct student ids with --roster")


FEEDBACK_FILES = ("feedback.html", "feedback.md", "results.json")


def write_feedback(folder: Path, student_id: str, result: SubmissionResult) -> Path:
    """The student's own view (hidden tests summarized, as on Gradescope) and Gradescope's
    results.json, for an instructor to publish or upload. Raises FeedbackRefused when the
    id cannot have a folder of its own."""
    from grader.render import render_html, render_markdown, to_gradescope
    where = feedback_dir(folder, student_id)
    _claim(where, student_id)
    _write_atomic(where / "feedback.html", render_html(result, audience="student"))
    _write_atomic(where / "feedback.md", render_markdown(result, audience="student"))
    _write_atomic(where / "results.json",
                  json.dumps(to_gradescope(result), indent=2, ensure_ascii=True) + "\n")
    return where


def feedback_for(book: Gradebook, student_key: str) -> tuple[str, Path] | None:
    """Rewrite one student's feedback from their current submission (after each grading).
    Raises FeedbackRefused when the student's id cannot have a folder of its own."""
    identities = book.identities()
    student_id = identities.student_id(student_key)
    rows = [r for r in book.rows() if identities.student_id(r.student_key) == student_id]
    if not rows:
        return None
    chosen = max(rows, key=lambda r: (r.mtime, r.submission))
    result = book.result(chosen.submission)
    if result is None:
        return None
    result.student = student_id
    return student_id, write_feedback(book.folder, student_id, result)


def _ensure_feedback(book: Gradebook, g: StudentGrade) -> str:
    """Write a student's feedback if any of it is missing; why it cannot be, or ""."""
    try:
        where = feedback_dir(book.folder, g.student_id)
        _claim(where, g.student_id)
        if all((where / f).is_file() for f in FEEDBACK_FILES):
            return ""
        result = book.result(g.row.submission)
        if result is not None:
            result.student = g.student_id
            write_feedback(book.folder, g.student_id, result)
    except FeedbackRefused as exc:
        return str(exc)
    return ""


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def export_grades(book: Gradebook) -> tuple[Path, Path]:
    """grades.csv (one row per student, one column per exercise, the total) and grades.json
    (the same, plus each exercise's maximum), and any feedback folder still missing."""
    identities = book.identities()
    exercises = book.exercises
    maxima = book.exercise_max()
    grades = book.students(identities)
    max_total = round(sum(maxima.get(e, 0.0) for e in exercises), 6)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    # Names come from students: every text cell goes through csv_cell (no formulas, no
    # control characters); numbers are written as numbers.
    writer.writerow([csv_cell(c) for c in ("student_id", "name", "submission", "status", *exercises, "total",
                                            "max_total", "reason")])
    records = []
    for g in grades:
        graded = g.row is not None and g.row.graded
        per = {e: (g.exercises.get(e, 0.0) if graded else None) for e in exercises}
        total = g.row.score if graded else None
        writer.writerow([csv_cell(g.student_id), csv_cell(g.name), csv_cell(g.row.submission if g.row else ""),
                         csv_cell(g.status), *(_fmt(per[e]) for e in exercises), _fmt(total), _fmt(max_total),
                         csv_cell(g.reason)])
        problem = _ensure_feedback(book, g) if g.row is not None else ""
        records.append({"student_id": g.student_id, "name": g.name,
                        "submission": g.row.submission if g.row else None, "status": g.status,
                        "scores": per, "total": total, "max_total": max_total, "reason": g.reason,
                        "graded_at": g.row.graded_at if g.row else None, "submissions": g.submissions,
                        **({"feedback_problem": problem} if problem else {})})
    csv_path, json_path = book.folder / "grades.csv", book.folder / "grades.json"
    _write_atomic(csv_path, out.getvalue())
    document = {"assignment": book.assignment, "fingerprint": book.meta("fingerprint"),
                "exercises": [{"name": e, "max_score": maxima.get(e, 0.0)} for e in exercises],
                "max_total": max_total, "students": records}
    _write_atomic(json_path, json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    return csv_path, json_path
