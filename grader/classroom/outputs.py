"""The files a results folder holds beside its gradebook, always derived from it.

grades.csv / grades.json (one row per student) and feedback/<student_id>/ (the student's
own view and Gradescope's results.json) can be deleted and rewritten at any time; every
grade in them is the final one (`grader.classroom.final`): autograded scores with the
instructor's overrides, written answers' scores and any late penalty folded in.
"""
from __future__ import annotations

import csv
import io
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Collection

from grader.classroom.errors import GradebookError
from grader.classroom.folder_lock import results_lock
from grader.classroom.final import LATE_NAME, WRITTEN_EXERCISE, Decisions, FinalGrade, final_grade, submission_time
from grader.classroom.gradebook import Gradebook, Row, StudentGrade
from grader.classroom.names import csv_cell, folder_identity, folder_problem, printable
from grader.classroom.roster import Identities
from grader.classroom.storable import storable_text, utf8
from grader.results import SubmissionResult


def _write_atomic(path: Path, text: str) -> bool:
    """Readers (a browser, an LMS upload, the next run) never see a half-written file.
    Unchanged content is not rewritten (False), so re-deriving after each decision is cheap.
    A lone surrogate from anywhere is written as its escape, never a UnicodeEncodeError."""
    data = utf8(text)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if path.read_bytes() == data:
            return False
    except OSError:
        pass
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return True


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


Siblings = dict  # folder identity -> names of the feedback folders that have it


def _siblings(parent: Path) -> Siblings:
    out: Siblings = {}
    if parent.is_dir():
        for other in parent.iterdir():
            out.setdefault(folder_identity(other.name), set()).add(other.name)
    return out


def _claim(where: Path, student_id: str, siblings: Siblings | None = None) -> None:
    """Refuse `where` when a case-insensitive file system (macOS, Windows; or the one the
    results folder is copied to) would take it for a folder already there under another
    name. Ids are already refused unless composed (NFC), so normalization cannot alias.
    `siblings`: the folder's listing, read once for a whole class (a listing per student
    made exporting a class quadratic)."""
    siblings = _siblings(where.parent) if siblings is None else siblings
    mine = folder_identity(student_id)
    others = sorted(siblings.get(mine, set()) - {student_id})
    if others:
        raise FeedbackRefused(f"no feedback folder for {printable(student_id)!r}: it would be the same "
                              f"folder as {printable(others[0])!r} on a case-insensitive file system; "
                              f"give them distinct student ids with --roster")
    siblings.setdefault(mine, set()).add(student_id)


FEEDBACK_FILES = ("feedback.html", "feedback.md", "results.json")


def write_feedback(folder: Path, student_id: str, result: SubmissionResult, *,
                   siblings: Siblings | None = None) -> Path:
    """The student's own view (hidden tests summarized, as on Gradescope) and Gradescope's
    results.json, for an instructor to publish or upload. Raises FeedbackRefused when the
    id cannot have a folder of its own."""
    from grader.render import render_html, render_markdown, to_gradescope
    where = feedback_dir(folder, student_id)
    _claim(where, student_id, siblings)
    _write_atomic(where / "feedback.html", render_html(result, audience="student"))
    _write_atomic(where / "feedback.md", render_markdown(result, audience="student"))
    _write_atomic(where / "results.json",
                  json.dumps(to_gradescope(result), indent=2, ensure_ascii=True) + "\n")
    return where


# ---------------------------------------------------------------- final grades

class Finals:
    """Reads people's decisions once, then gives any submission's final grade."""

    def __init__(self, book: Gradebook, identities: Identities | None = None):
        self.book = book
        self.identities = identities or book.identities()
        self.questions = tuple(book.questions())
        self.policy = book.late_policy()
        self.signature = book.written_signature()
        self.mtimes_count = book.meta("times") == "mtime"  # grade --times mtime (see classroom/handin)
        self._answers: dict[str, dict] = {}
        for a in book.answers():
            self._answers.setdefault(a.submission, {})[a.question] = a
        self._scores: dict[str, dict] = {}
        for (sub, q), m in book.manual_scores().items():
            self._scores.setdefault(sub, {})[q] = m
        self._overrides: dict[str, dict] = {}
        for (sub, t), o in book.overrides().items():
            self._overrides.setdefault(sub, {})[t] = o

    def decisions(self, row: Row) -> Decisions:
        entry = self.identities.entry(row.student_key)
        return Decisions(questions=self.questions, answers=self._answers.get(row.submission, {}),
                         scores=self._scores.get(row.submission, {}),
                         overrides=self._overrides.get(row.submission, {}), policy=self.policy,
                         # a file's modification time is a hand-in time only when the last run said so
                         submitted=(submission_time(row.mtime, row.submitted_at)
                                    if row.submitted_at or self.mtimes_count else None),
                         extension_days=entry.extension_days if entry else 0.0, own_due=entry.due if entry else "",
                         answers_read=row.answers_for == self.signature, answers_problem=row.answers_problem)

    def grade(self, row: Row, student_id: str = "") -> FinalGrade | None:
        result = self.book.result(row.submission)
        if result is None:
            return None
        if student_id:
            result.student = student_id
        return final_grade(result, self.decisions(row))


def feedback_for(book: Gradebook, student_key: str) -> tuple[str, Path] | None:
    """Rewrite one student's feedback from their current submission (after each grading
    or decision), read and written under the results folder's lock. Raises
    FeedbackRefused when the student's id cannot have a folder."""
    with results_lock(book.folder), book.snapshot():
        return _feedback_for(book, student_key)


def _feedback_for(book: Gradebook, student_key: str) -> tuple[str, Path] | None:
    identities = book.identities()
    student_id = identities.student_id(storable_text(student_key))
    rows = [r for r in book.rows() if identities.student_id(r.student_key) == student_id]
    if not rows:
        return None
    from grader.classroom.handin import counted
    chosen = counted(rows, book.meta("pick") or "")  # as Gradebook.students chooses
    final = Finals(book, identities).grade(chosen, student_id)
    if final is None:
        return None
    return student_id, write_feedback(book.folder, student_id, final.result)


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


@dataclass(frozen=True)
class ClassGrades:
    """What export_grades wrote, and what an instructor should look at: `attention` all of
    it; `stale` the decisions that no longer apply (one line each), `pending_written` how
    many written answers of how many students (`pending_students`) wait for a score."""
    csv: Path
    json: Path
    attention: tuple[str, ...]
    stale: tuple[str, ...] = ()
    pending_written: int = 0
    pending_students: int = 0

    def __iter__(self):  # (csv, json) = export_grades(book) keeps working
        return iter((self.csv, self.json))


def _exercise_scores(result: SubmissionResult, exercises: list[str]) -> dict[str, float]:
    per = {e: 0.0 for e in exercises}
    for t in result.tests:
        if t.exercise in per:
            per[t.exercise] = round(per[t.exercise] + t.score, 6)
    return per


def export_grades(book: Gradebook, *, changed: Collection[str] | None = None) -> ClassGrades:
    """grades.csv (one row per student: each exercise, each written answer, the late
    penalty, the final total) and grades.json (the same, plus maxima and what needs an
    instructor's attention), and every student's feedback brought up to date.

    `changed`: the submissions a decision just touched. Only their students' feedback is
    rendered again (and any feedback folder with a file missing): rendering a whole class's
    feedback after each score entered on the review page was most of a save's time.

    The gradebook is read in one snapshot and the files written while holding the results
    folder's lock (grader.classroom.folder_lock): of two processes deriving at once, the
    one that writes last read last, so the files always end up holding the latest state."""
    with results_lock(book.folder), book.snapshot():
        return _export_grades(book, changed)


def _export_grades(book: Gradebook, changed: Collection[str] | None) -> ClassGrades:
    identities = book.identities()
    finals = Finals(book, identities)
    exercises = [e for e in book.exercises if e not in (WRITTEN_EXERCISE, "")]
    maxima = book.exercise_max()
    questions = list(finals.questions)
    late_column = finals.policy is not None
    grades = book.students(identities)
    max_total = class_max_total(book, questions)
    siblings = _siblings(book.folder / "feedback")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    # Names come from students: every text cell goes through csv_cell (no formulas, no
    # control characters); numbers are written as numbers.
    header = ["student_id", "name", "submission", "status", *exercises, *(f"written:{q.id}" for q in questions),
              *(["late_penalty"] if late_column else []), "total", "max_total", "reason"]
    writer.writerow([csv_cell(c) for c in header])
    records, attention, stale = [], [], []
    pending_written = pending_students = 0
    for g in grades:
        final = finals.grade(g.row, g.student_id) if g.row is not None and g.row.graded else None
        per = _exercise_scores(final.result, exercises) if final else {e: None for e in exercises}
        written = {q.id: (final.written.get(q.id) if final else None) for q in questions}
        penalty = final.penalty if final else None
        total = final.total if final else None
        if final:
            attention.extend(final.attention)
            stale.extend(final.attention)
            pending = [q.title for q in questions if final.written.get(q.id) is None]
            if pending:
                attention.append(f"{g.student_id}: written answer not scored yet: {', '.join(pending)}")
                pending_written += len(pending)
                pending_students += 1
        writer.writerow([csv_cell(g.student_id), csv_cell(g.name), csv_cell(g.row.submission if g.row else ""),
                         csv_cell(g.status), *(_fmt(per[e]) for e in exercises),
                         *(_fmt(written[q.id]) for q in questions),
                         *([_fmt(penalty)] if late_column else []), _fmt(total), _fmt(max_total),
                         csv_cell(g.reason)])
        render = changed is None or (g.row is not None and g.row.submission in changed)
        problem = _refresh_feedback(book, g, final, siblings, render=render)
        records.append({"student_id": g.student_id, "name": g.name,
                        "submission": g.row.submission if g.row else None, "status": g.status,
                        "scores": per, "written": written,
                        **({"late": _late_record(final)} if late_column else {}),
                        "total": total, "max_total": max_total, "reason": g.reason,
                        "graded_at": g.row.graded_at if g.row else None, "submissions": g.submissions,
                        **({"feedback_problem": problem} if problem else {})})
    superseded = _overrides_left_behind(book, grades, identities)
    attention.extend(superseded)
    stale.extend(superseded)
    csv_path, json_path = book.folder / "grades.csv", book.folder / "grades.json"
    _write_atomic(csv_path, out.getvalue())
    document = {"assignment": book.assignment, "fingerprint": book.meta("fingerprint"),
                "exercises": [{"name": e, "max_score": maxima.get(e, 0.0)} for e in exercises],
                "written": [q.to_dict() for q in questions],
                **({"late_policy": finals.policy.to_dict()} if late_column else {}),
                "max_total": max_total, "students": records, "attention": attention}
    _write_atomic(json_path, json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    return ClassGrades(csv_path, json_path, tuple(attention), tuple(stale), pending_written, pending_students)


def _overrides_left_behind(book: Gradebook, grades: list[StudentGrade], identities: Identities) -> list[str]:
    """Overrides made on a notebook that no longer gives its student's grade (they handed
    in another file since, e.g. `alice/v2.ipynb` after `alice/v1.ipynb`): the new work was
    never looked at by a person, so the instructor is told rather than the score dropped
    or carried over in silence."""
    counting = {g.row.submission for g in grades if g.row is not None}
    current_of = {g.student_id: g.row.submission for g in grades if g.row is not None}
    rows = {r.submission: r for r in book.rows()}
    out = []
    for (submission, _test), o in sorted(book.overrides().items()):
        row = rows.get(submission)
        if o.points is None or submission in counting or row is None:
            continue
        student_id = identities.student_id(row.student_key)
        out.append(f"{student_id}: an override ({o.reason}) was made on {submission}, but their grade now comes "
                   f"from {current_of.get(student_id, 'another notebook')}; it is not applied; look again")
    return out


def class_max_total(book: Gradebook, questions) -> float:
    """What a full grade is worth: every exercise's tests and every written question (a late
    penalty only takes away). The LMS export and grades.csv share it."""
    exercises = [e for e in book.exercises if e not in (WRITTEN_EXERCISE, "")]
    maxima = book.exercise_max()
    return round(sum(maxima.get(e, 0.0) for e in exercises) + sum(q.points for q in questions), 6)


def _late_record(final: FinalGrade | None) -> dict | None:
    if final is None or final.lateness is None:
        return None
    late = final.lateness
    return {"submitted": late.submitted.isoformat(), "due": late.due.isoformat(), "days_late": late.days_late,
            "percent": late.percent, "penalty": final.penalty}


def _refresh_feedback(book: Gradebook, g: StudentGrade, final: FinalGrade | None,
                      siblings: Siblings | None = None, *, render: bool = True) -> str:
    """Bring a student's feedback up to date (only changed files are written; with
    `render` False, only when one is missing); why it cannot be, or ""."""
    if g.row is None:
        return ""
    try:
        if not render:
            where = feedback_dir(book.folder, g.student_id)
            _claim(where, g.student_id, siblings)
            if all((where / f).is_file() for f in FEEDBACK_FILES):
                return ""
        if final is None:
            result = book.result(g.row.submission)
            if result is None:
                return ""
            result.student = g.student_id
        else:
            result = final.result
        write_feedback(book.folder, g.student_id, result, siblings=siblings)
    except FeedbackRefused as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - one student's feedback failing is their line, not the class's
        return (f"{printable(g.row.submission)}: its feedback could not be written ({type(exc).__name__}: "
                f"{printable(exc)}); grades.csv still holds the grade")
    return ""


__all__ = ["ClassGrades", "FEEDBACK_FILES", "FeedbackRefused", "Finals", "class_max_total", "export_grades",
           "feedback_dir",
           "feedback_for", "write_feedback", "LATE_NAME"]
