"""What people decided about submissions: scores of written answers and test overrides.

Kept apart from the autograder's own records (grader/classroom/gradebook.py), in the same
SQLite file: append-only histories (who, when, what, why) whose latest entry counts. Each
decision remembers what it was made on (the answer's text hash, the notebook's hash), so
when the student's work changes the decision is kept, marked stale and not applied, and
the instructor is told, instead of a score silently moving to other work.
"""
from __future__ import annotations

import hashlib
import time
from contextlib import contextmanager
from dataclasses import dataclass

from grader.classroom.errors import GradebookError
from grader.classroom.storable import storable_text
from grader.results import SubmissionResult


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


@dataclass(frozen=True)
class Answer:
    """A student's written answer: text only, never executed."""
    submission: str
    question: str
    text: str
    sha256: str
    cell: int | None  # 1-based cell number in the student's notebook; None: no answer found


@dataclass(frozen=True)
class ManualScore:
    submission: str
    question: str
    points: float
    comment: str
    grader: str
    at: str
    answer_sha256: str
    stale: bool = False  # the answer's text changed since it was scored: not applied


@dataclass(frozen=True)
class Override:
    id: int
    submission: str
    test: str  # the test's nodeid
    points: float | None  # None: withdrawn, the autograder's score counts again
    reason: str
    grader: str
    at: str
    sha256: str
    applies: bool = True  # False when the notebook changed since: the instructor must look again


MAX_ANSWER_CHARS = 20_000


class StaleVersion(GradebookError):
    """A decision made on a version of the work that is no longer the stored one (the
    notebook was graded again after the page was loaded): refused, never applied to work
    nobody looked at."""


def version_matches(current: str, seen: str) -> bool:
    """`seen` is the version the person looked at: the whole hash, or (typed on the
    command line) a prefix of at least 8 of its hex digits."""
    seen = seen.strip().lower()
    return seen == current or (len(seen) >= 8 and current.startswith(seen))


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class DecisionStore:
    """The gradebook's methods for written answers and people's decisions (mixed into
    `Gradebook`, which provides `db`, `folder`, `meta`, `question`, `result` and `rows`)."""
    def answers(self, question: str | None = None) -> list[Answer]:
        """The current submissions' written answers (every question, or one)."""
        sql = "SELECT submission, question, text, sha256, cell FROM answers"
        args: tuple = ()
        if question is not None:
            sql, args = sql + " WHERE question = ?", (question,)
        return [Answer(*r) for r in self.db.execute(sql + " ORDER BY question, submission", args)]

    def answer(self, submission: str, question: str) -> Answer | None:
        r = self.db.execute("SELECT submission, question, text, sha256, cell FROM answers "
                            "WHERE submission = ? AND question = ?", (submission, question)).fetchone()
        return Answer(*r) if r else None

    def written_signature(self) -> str:
        """Names the written questions as stored (by bind): answers read for another set,
        or never read, must be read again before anyone is told "no answer"."""
        return hashlib.sha256((self.meta("written") or "[]").encode()).hexdigest()[:16]

    def unread_answers(self) -> list[Row]:
        """Graded submissions whose answers were not read for the current questions."""
        signature = self.written_signature()
        return [r for r in self.rows() if r.graded and r.answers_for != signature]

    def store_answers(self, submission: str, sha256: str, answers: dict, *, problem: str = "") -> bool:
        """Replace a stored submission's written answers with those read from its notebook
        now (`problem`: why they could not be read; the answers stay as they were and are
        read again next time). One transaction; False when the stored notebook is no longer
        `sha256` (graded again meanwhile), which is left alone."""
        submission = storable_text(submission)
        rows = [(submission, storable_text(str(q)), storable_text(str(a.get("text", ""))[:MAX_ANSWER_CHARS]),
                 a.get("cell") if isinstance(a.get("cell"), int) else None) for q, a in answers.items()]
        self.db.execute("BEGIN IMMEDIATE")
        try:
            now = self.db.execute("SELECT sha256 FROM submissions WHERE submission = ?", (submission,)).fetchone()
            if now is None or now[0] != sha256:
                self.db.execute("ROLLBACK")
                return False
            if problem:
                self.db.execute("UPDATE submissions SET answers_problem = ? WHERE submission = ?",
                                (storable_text(problem), submission))
            else:
                self.db.execute("DELETE FROM answers WHERE submission = ?", (submission,))
                self.db.executemany("INSERT INTO answers (submission, question, text, sha256, cell) "
                                    "VALUES (?, ?, ?, ?, ?)",
                                    [(sub, q, text, text_sha256(text), cell) for sub, q, text, cell in rows])
                self.db.execute("UPDATE submissions SET answers_for = ?, answers_problem = '' WHERE submission = ?",
                                (self.written_signature(), submission))
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise
        return True

    def _submission_sha(self, submission: str) -> str:
        r = self.db.execute("SELECT sha256 FROM submissions WHERE submission = ?", (submission,)).fetchone()
        if r is None:
            raise GradebookError(f"no submission {submission!r} in {self.folder}")
        return r[0]

    @contextmanager
    def _writing(self):
        """One write transaction: what a decision checks (the version seen) is what it is
        recorded against, even with a grading run writing at the same moment."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def set_manual_score(self, submission: str, question: str, points: float, comment: str = "",
                         grader: str = "", *, version: str | None = None) -> ManualScore:
        """Record a person's score for one written answer (kept in the history). `version`:
        the answer's hash as the person saw it (the review page sends it); a different
        stored answer refuses the score with StaleVersion."""
        submission, question = storable_text(submission), storable_text(question)
        comment, grader = storable_text(str(comment)), storable_text(grader or "")
        q = self.question(question)
        if not isinstance(points, (int, float)) or isinstance(points, bool) or not 0 <= points <= q.points:
            raise GradebookError(f"{q.title}: points must be between 0 and {q.points:g}, not {points!r}")
        with self._writing():
            self._submission_sha(submission)
            answer = self.answer(submission, question)
            current = answer.sha256 if answer else text_sha256("")
            if version is not None and not version_matches(current, version):
                raise StaleVersion(f"{submission}: the answer to {q.title!r} changed since this page was loaded "
                                   f"(the notebook was graded again); nothing was saved: read the new answer "
                                   f"and score it again")
            score = ManualScore(submission, question, float(points), comment[:MAX_ANSWER_CHARS], grader,
                                _now(), current)
            self.db.execute("INSERT INTO manual_scores (submission, question, points, comment, grader, at, "
                            "answer_sha256) VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (score.submission, score.question, score.points, score.comment, score.grader,
                             score.at, score.answer_sha256))
        return score

    def _manual_rows(self, where: str = "", args: tuple = ()) -> list[ManualScore]:
        current = {(a.submission, a.question): a.sha256 for a in self.answers()}
        out = []
        for sub, q, points, comment, who, at, sha in self.db.execute(
                "SELECT submission, question, points, comment, grader, at, answer_sha256 FROM manual_scores "
                f"{where} ORDER BY id", args):
            now = current.get((sub, q), text_sha256(""))
            out.append(ManualScore(sub, q, points, comment, who, at, sha, stale=now != sha))
        return out

    def manual_scores(self) -> dict[tuple[str, str], ManualScore]:
        """The latest score per (submission, question); `stale` ones must not be counted."""
        return {(m.submission, m.question): m for m in self._manual_rows()}

    def manual_history(self, submission: str, question: str) -> list[ManualScore]:
        return self._manual_rows("WHERE submission = ? AND question = ?", (submission, question))

    def find_test(self, submission: str, test: str) -> tuple[str, str, float]:
        """(nodeid, title, max_score) of a current test, named by its nodeid, its title
        ("happyModel · layer order") or its number ("3.1")."""
        rows = list(self.db.execute("SELECT nodeid, exercise, name, max_score FROM tests WHERE submission = ? "
                                    "ORDER BY position", (submission,)))
        numbers = {t.nodeid: t.number for t in (self.result(submission) or SubmissionResult("", "")).tests}
        for nodeid, exercise, name, max_score in rows:
            title = f"{exercise} · {name}" if exercise else name
            if test in (nodeid, title, numbers.get(nodeid)) or test.casefold() == title.casefold():
                return nodeid, title, max_score
        if not rows:
            raise GradebookError(f"{submission!r} has no graded tests to override")
        shown = "; ".join(f"{numbers.get(n) or ''} {f'{e} · {m}' if e else m}".strip() for n, e, m, _ in rows[:40])
        raise GradebookError(f"{submission!r} has no test {test!r}; give its number or title, one of: {shown}")

    def add_override(self, submission: str, test: str, points: float | None, reason: str,
                     grader: str = "", *, version: str | None = None) -> Override:
        """Change one test's score for one submission, with the reason; None withdraws it.
        `version`: the notebook's hash as the person saw it (the review page sends it,
        `grader override --seen` takes it); another stored notebook refuses it (StaleVersion)."""
        submission, test, reason = storable_text(submission), storable_text(test), storable_text(reason or "")
        grader = storable_text(grader or "")
        if not reason or not reason.strip():
            raise GradebookError("an override needs --reason: the student and the next grader will read it")
        with self._writing():
            sha = self._submission_sha(submission)
            if version is not None and not version_matches(sha, version):
                raise StaleVersion(f"{submission}: the notebook was graded again since you looked at it (version "
                                   f"{version.strip()[:12]}, now {sha[:12]}); nothing was saved: look at its new "
                                   f"feedback and decide again")
            nodeid, title, max_score = self.find_test(submission, test)
            if points is not None and (isinstance(points, bool) or not 0 <= points <= max_score):
                raise GradebookError(f"{title}: points must be between 0 and {max_score:g}, not {points!r}")
            at, value, why = _now(), None if points is None else float(points), reason.strip()[:2000]
            cur = self.db.execute("INSERT INTO overrides (submission, test, points, reason, grader, at, sha256) "
                                  "VALUES (?, ?, ?, ?, ?, ?, ?)", (submission, nodeid, value, why, grader, at, sha))
        return Override(int(cur.lastrowid), submission, nodeid, value, why, grader, at, sha, True)

    def override_history(self, submission: str | None = None) -> list[Override]:
        current = {r.submission: r.sha256 for r in self.rows()}
        sql = "SELECT id, submission, test, points, reason, grader, at, sha256 FROM overrides"
        args: tuple = ()
        if submission is not None:
            sql, args = sql + " WHERE submission = ?", (submission,)
        return [Override(*r, applies=current.get(r[1]) == r[7]) for r in self.db.execute(sql + " ORDER BY id", args)]

    def overrides(self) -> dict[tuple[str, str], Override]:
        """The latest override per (submission, test nodeid); one with `applies` False was
        made on a notebook since changed and is not applied."""
        return {(o.submission, o.test): o for o in self.override_history()}
