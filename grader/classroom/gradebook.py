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
  `meta`: schema version and the assignment this folder belongs to (its written questions
  and late policy too, so outputs can be derived without the spec at hand).
* `answers`: each current submission's written answers, as text (never executed);
  `submissions.answers_for` names the questions they were read for ('' never read), so
  questions added later are read from the notebooks before anyone is told "no answer"
  (grader.classroom.answer_reading).
* `manual_scores` and `overrides`: append-only histories of what a person decided (who,
  when, why); the latest entry counts. Each remembers what it was decided on (the answer's
  text hash, the notebook's hash): when that changed, the decision is kept but marked stale
  and not applied, and the instructor is told, instead of silently scoring other work.
"""
from __future__ import annotations

import json
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from grader.classroom.decisions import MAX_ANSWER_CHARS, Answer, DecisionStore, ManualScore, Override, text_sha256
from grader.classroom.errors import GradebookError
from grader.classroom.names import printable
from grader.classroom.roster import Identities, RosterEntry
from grader.classroom.storable import storable, storable_text
from grader.assignment.late import LatePolicy, parse_time, policy_from_dict
from grader.results import SubmissionResult, submission_result_from_dict
from grader.assignment.written import Question, question_from_dict

__all__ = ["Gradebook", "GradebookError", "Row", "StudentGrade", "Answer", "ManualScore", "Override",
           "GRADED", "UNGRADED", "FAILED", "FILENAME"]

FILENAME = "gradebook.sqlite"
SCHEMA_VERSION = 2

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
CREATE TABLE IF NOT EXISTS answers (
    submission TEXT NOT NULL REFERENCES submissions(submission) ON DELETE CASCADE,
    question   TEXT NOT NULL,           -- the spec's [[written]] id
    text       TEXT NOT NULL,           -- the answer as written (Markdown), capped
    sha256     TEXT NOT NULL,           -- of the text: a score given to other words is stale
    cell       INTEGER,                 -- 1-based cell number in the student's notebook; NULL: not found
    PRIMARY KEY (submission, question)
);
CREATE TABLE IF NOT EXISTS manual_scores (
    id            INTEGER PRIMARY KEY,  -- append-only; the latest per (submission, question) counts
    submission    TEXT NOT NULL,
    question      TEXT NOT NULL,
    points        REAL NOT NULL,
    comment       TEXT NOT NULL,
    grader        TEXT NOT NULL,        -- who scored it
    at            TEXT NOT NULL,
    answer_sha256 TEXT NOT NULL         -- the answer text it was given for
);
CREATE TABLE IF NOT EXISTS overrides (
    id         INTEGER PRIMARY KEY,     -- append-only; the latest per (submission, test) counts
    submission TEXT NOT NULL,
    test       TEXT NOT NULL,           -- the test's nodeid
    points     REAL,                    -- the test's new score; NULL: withdrawn (the autograder's again)
    reason     TEXT NOT NULL,
    grader     TEXT NOT NULL,
    at         TEXT NOT NULL,
    sha256     TEXT NOT NULL            -- the notebook it was decided on
);
"""

# Columns added since schema 1, for gradebooks written before them.
_ADDED_COLUMNS = (
    ("students", "extension_days", "REAL NOT NULL DEFAULT 0"),
    ("students", "due", "TEXT NOT NULL DEFAULT ''"),
    ("submissions", "submitted_at", "TEXT NOT NULL DEFAULT ''"),  # ISO time from a manifest; '': mtime
    # The written questions (written_signature) the answers were read for: '' never read
    # (graded before the questions existed, or by an earlier grader); and why they could
    # not be read (the notebook is gone), for the instructor.
    ("submissions", "answers_for", "TEXT NOT NULL DEFAULT ''"),
    ("submissions", "answers_problem", "TEXT NOT NULL DEFAULT ''"),
)



def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


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

    submitted_at: str = ""  # from a manifest; "" when the file's mtime is the submission time
    answers_for: str = ""  # the written questions its answers were read for ("": never read)
    answers_problem: str = ""  # why its answers could not be read ("" when they were, or never tried)

    @property
    def graded(self) -> bool:
        return self.status == GRADED

    @property
    def handed_in(self) -> float:
        """When it was handed in (seconds since the epoch): the manifest's time, else the
        file's. Of a student's notebooks, the last handed in gives their grade."""
        if self.submitted_at:
            try:
                return parse_time(self.submitted_at).timestamp()
            except ValueError:
                pass
        return self.mtime


_ROW_COLUMNS = ("submission, student_key, path, sha256, fingerprint, status, score, max_score, reason, "
                "execution_time, wall_time, isolation, host, process_order, mtime, graded_at, run_id, submitted_at, "
                "answers_for, answers_problem")


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


class Gradebook(DecisionStore):
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
            self._add_columns()
        except sqlite3.Error as exc:
            raise GradebookError(f"{self.path}: not a usable gradebook ({exc})") from None
        version = self.meta("schema_version")
        version = None if version is None else str(version)
        if version is not None and not (version.isascii() and version.isdigit() and len(version) < 10):
            self.db.close()
            raise GradebookError(f"{self.path}: its schema_version is {printable(version[:40])!r}, not a number: "
                                 f"this file was edited or not written by grader; restore it from a copy, or "
                                 f"grade into a new --out folder")
        if version is None:
            self.set_meta("schema_version", str(SCHEMA_VERSION))
        elif int(version) > SCHEMA_VERSION:
            raise GradebookError(f"{self.path} was written by a newer grader (schema {version}); upgrade grader")
        elif int(version) < SCHEMA_VERSION:
            self.set_meta("schema_version", str(SCHEMA_VERSION))

    def _add_columns(self) -> None:
        for table, column, declaration in _ADDED_COLUMNS:
            have = {r[1] for r in self.db.execute(f"PRAGMA table_info({table})")}
            if column not in have:
                self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Read the block's queries from one state of the gradebook (one read transaction,
        WAL lets writers go on), so derived files never mix a save with the state before it."""
        if self.db.in_transaction:
            yield
            return
        self.db.execute("BEGIN")
        try:
            yield
        finally:
            if self.db.in_transaction:
                self.db.execute("COMMIT")

    def __enter__(self) -> "Gradebook":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- meta
    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, storable_text(value)))

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
                           ("fingerprint", assignment.fingerprint),
                           ("framework", getattr(assignment, "framework", "keras")),  # the report's words
                           ("written", json.dumps([q.to_dict() for q in getattr(assignment, "questions", ())])),
                           ("late", json.dumps(assignment.late.to_dict() if getattr(assignment, "late", None)
                                               else None))):
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

    def questions(self) -> list[Question]:
        """The written questions of the assignment this folder was last graded with."""
        return [question_from_dict(q) for q in json.loads(self.meta("written") or "[]")]

    def question(self, question_id: str) -> Question:
        for q in self.questions():
            if q.id == question_id:
                return q
        known = ", ".join(q.id for q in self.questions()) or "none: the assignment declares no [[written]] questions"
        raise GradebookError(f"no written question {question_id!r} in {self.assignment or 'this gradebook'} "
                             f"(questions: {known})")

    def late_policy(self) -> LatePolicy | None:
        return policy_from_dict(json.loads(self.meta("late") or "null"))

    # -- roster
    def set_roster(self, entries: Iterable[RosterEntry]) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        self.db.execute("DELETE FROM students")
        self.db.executemany("INSERT INTO students (key, student_id, name, extension_days, due) VALUES (?, ?, ?, ?, ?)",
                            [(storable_text(e.key), storable_text(e.student_id), storable_text(e.name),
                              e.extension_days, storable_text(e.due)) for e in entries])
        self.db.execute("COMMIT")

    def identities(self) -> Identities:
        return Identities(RosterEntry(*r) for r in
                          self.db.execute("SELECT key, student_id, name, extension_days, due FROM students"))

    # -- runs
    def start_run(self, *, fingerprint: str, command: str, backend: str, found: int, to_grade: int) -> int:
        cur = self.db.execute("INSERT INTO runs (started_at, fingerprint, command, backend, found, to_grade) "
                              "VALUES (?, ?, ?, ?, ?, ?)", (_now(), fingerprint, storable_text(command), backend,
                                                            found, to_grade))
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
                              (storable_text(submission),)).fetchone()
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
               fingerprint: str, submitted_at: str = "") -> Row:
        """Store one grading in a single transaction: all of it or, if killed, none of it.
        Without a `submitted_at`, the same notebook graded again keeps the time a manifest
        gave it before (a regrade does not make work late); a changed notebook does not."""
        # Everything stored is storable text: a lone surrogate a student pasted is kept as its
        # escape, never the UnicodeEncodeError that would stop the whole run here.
        result: SubmissionResult = submission_result_from_dict(storable(graded.result.to_dict()))
        submission, student_key = storable_text(submission), storable_text(student_key)
        if not submitted_at:
            before = self.db.execute("SELECT sha256, submitted_at FROM submissions WHERE submission = ?",
                                     (submission,)).fetchone()
            if before is not None and before[0] == graded.sha256:
                submitted_at = before[1]
        if not result.errors:
            status = GRADED
        else:
            status = FAILED if graded.transient else UNGRADED
        row = Row(submission=submission, student_key=student_key, path=storable_text(str(graded.path)),
                  sha256=graded.sha256, fingerprint=storable_text(graded.fingerprint or fingerprint), status=status,
                  score=0.0 if result.errors else result.score, max_score=result.max_score,
                  reason="; ".join(result.errors), execution_time=round(result.execution_time, 3),
                  wall_time=round(graded.wall, 3), isolation=result.isolation, host=storable_text(str(graded.host)),
                  process_order=graded.order, mtime=mtime, graded_at=_now(), run_id=run_id,
                  submitted_at=storable_text(submitted_at), answers_for=self.written_signature())
        values = (row.submission, row.student_key, row.path, row.sha256, row.fingerprint, row.status, row.score,
                  row.max_score, row.reason, row.execution_time, row.wall_time, row.isolation, row.host,
                  row.process_order, row.mtime, row.graded_at, row.run_id, row.submitted_at, row.answers_for,
                  row.answers_problem)
        answers = [(submission, storable_text(str(qid)), storable_text(str(a.get("text", ""))[:MAX_ANSWER_CHARS]),
                    a.get("cell")) for qid, a in (getattr(graded, "answers", None) or {}).items()]
        code = [(submission, storable_text(str(ex)), storable_text(str(c.get("source", ""))),
                 storable_text(str(c.get("normalized", "")))) for ex, c in graded.code.items()]
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
                code)
            self.db.execute("DELETE FROM answers WHERE submission = ?", (submission,))
            self.db.executemany(
                "INSERT INTO answers (submission, question, text, sha256, cell) VALUES (?, ?, ?, ?, ?)",
                [(sub, q, text, text_sha256(text), cell if isinstance(cell, int) else None)
                 for sub, q, text, cell in answers])
            self.db.execute("INSERT INTO gradings (submission, sha256, fingerprint, run_id, status, score, graded_at) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (submission, row.sha256, row.fingerprint, run_id, status, row.score, row.graded_at))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return row

    def set_submitted_at(self, submission: str, submitted_at: str) -> bool:
        """Give a stored submission its hand-in time (ISO, from a manifest) without grading
        it again; False when no such submission is stored."""
        cur = self.db.execute("UPDATE submissions SET submitted_at = ? WHERE submission = ?",
                              (storable_text(submitted_at), storable_text(submission)))
        return cur.rowcount > 0

    def rows(self) -> list[Row]:
        return [Row(*r) for r in self.db.execute(f"SELECT {_ROW_COLUMNS} FROM submissions ORDER BY submission")]

    def row(self, submission: str) -> Row | None:
        r = self.db.execute(f"SELECT {_ROW_COLUMNS} FROM submissions WHERE submission = ?",
                            (storable_text(submission),)).fetchone()
        return Row(*r) if r else None

    def result(self, submission: str) -> SubmissionResult | None:
        r = self.db.execute("SELECT result_json FROM submissions WHERE submission = ?",
                            (storable_text(submission),)).fetchone()
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
        """One grade per student: from the notebook they handed in last (`Row.handed_in`) when a folder
        holds several, and a row for every roster student who submitted nothing."""
        identities = identities or self.identities()
        scores = self.exercise_scores()
        by_student: dict[str, list[Row]] = {}
        for row in self.rows():
            by_student.setdefault(identities.student_id(row.student_key), []).append(row)
        grades = []
        from grader.classroom.handin import counted
        pick = self.meta("pick") or ""
        for student_id, rows in by_student.items():
            chosen = counted(rows, pick)  # the last handed in; a tie is never broken by name
            per = scores.get(chosen.submission, {}) if chosen.graded else {}
            grades.append(StudentGrade(student_id, identities.name(chosen.student_key), chosen,
                                       {ex: s for ex, (s, _) in per.items()}, len(rows)))
        for entry in identities.entries:
            if entry.student_id not in by_student:
                grades.append(StudentGrade(entry.student_id, entry.name, None))
                by_student[entry.student_id] = []
        return sorted(grades, key=lambda g: g.student_id.casefold())
