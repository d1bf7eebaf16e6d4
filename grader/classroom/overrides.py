"""`grader override`: change one test's score for one student, with the reason, and keep
the history of who changed what and why.

    grader override results/ alice "happyModel · layer order" 3 --reason "BN after ReLU is fine here"
    grader override results/ alice 5 auto --reason "regraded by hand: the autograder was right"
    grader override results/ --history [alice]

The decision goes into the gradebook's append-only `overrides` table (the latest entry per
submission and test counts); the results folder's grades.csv, grades.json and the
student's feedback are then derived again, so the student reads the new score and the
reason next to the test. An override is tied to the notebook it was decided on: grading
the same notebook again keeps it; a changed notebook leaves it unapplied, and `grader
grade` says so after its run (`attention_lines`), since a score given to other work must
not silently carry over.
"""
from __future__ import annotations

import argparse
import getpass
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from grader.exit_codes import EXIT_OK, EXIT_USAGE
from grader.classroom.errors import GradebookError
from grader.classroom.names import printable

MAX_GRADER_NAME = 100
WITHDRAW = "auto"


class OverrideError(GradebookError):
    """The override cannot be recorded as asked; the message says what to give instead."""


# ---------------------------------------------------------------- pure parts

def parse_points(text: str) -> float | None:
    """A number of points, or None for `auto` (withdraw: the autograder's score counts
    again). OverrideError otherwise."""
    if text.strip().casefold() == WITHDRAW:
        return None
    try:
        points = float(text)
    except ValueError:
        raise OverrideError(f"POINTS must be a number (e.g. 3 or 2.5) or `{WITHDRAW}` to withdraw the "
                            f"override, not {printable(text)!r}") from None
    if not math.isfinite(points):
        raise OverrideError(f"POINTS must be a finite number, not {printable(text)!r}")
    return points


def grader_name(given: str | None) -> str:
    """Who decided, as recorded in the history: --grader, else the login name."""
    if given is None:
        try:
            given = getpass.getuser()
        except Exception:  # noqa: BLE001 - no login name here (a container): say who in --grader
            given = "instructor"
    if not given.strip() or len(given) > MAX_GRADER_NAME or printable(given) != given:
        raise OverrideError(f"--grader: a name of 1 to {MAX_GRADER_NAME} printable characters, please")
    return given


def _fmt(x: float) -> str:
    return f"{round(x, 6):g}"


# ---------------------------------------------------------------- whose submission

def find_submission(book, student: str) -> tuple[str, str]:
    """(submission key, student id) for STUDENT: a student id from the roster, the
    submission's key (`alice.ipynb`, `bob/hw3.ipynb`) or its file stem / folder name.
    A student with several notebooks gets the one their grade comes from (the latest)."""
    from grader.classroom.roster import normalize_key
    identities = book.identities()
    rows = book.rows()
    exact = [r for r in rows if r.submission == student]
    if exact:
        return exact[0].submission, identities.student_id(exact[0].student_key)
    key = normalize_key(student)
    by_id = [r for r in rows if identities.student_id(r.student_key) == student]
    matches = by_id or [r for r in rows if r.student_key == key]
    if not matches:
        known = sorted({identities.student_id(r.student_key) for r in rows})
        shown = ", ".join(printable(s) for s in known[:15])
        shown += f" and {len(known) - 15} more" if len(known) > 15 else ""
        raise OverrideError(f"no student or submission {printable(student)!r} in {book.folder}; give a student id "
                            f"from the roster or a submission's file name (students: {shown or 'none yet'})")
    from grader.classroom.handin import counted
    chosen = counted(matches, book.meta("pick") or "")  # as Gradebook.students chooses
    return chosen.submission, identities.student_id(chosen.student_key)


# ---------------------------------------------------------------- recording

@dataclass(frozen=True)
class OverrideChange:
    """What one override did, for the instructor to check at a glance."""
    student_id: str
    submission: str
    test: str            # the test's title
    before: float        # the score that counted before (the autograder's or an earlier override)
    after: float
    max_score: float
    total_before: float  # the final total, written answers and late penalty included
    total_after: float
    max_total: float
    withdrawn: bool
    derived: tuple[Path, ...]  # the files written again
    version: str = ""          # the notebook's hash the override is bound to

    def describe(self) -> str:
        who = printable(self.student_id) + ("" if self.student_id == self.submission
                                            else f" ({printable(self.submission)})")
        what = "override withdrawn, the autograder's score counts again: " if self.withdrawn else ""
        on = f" (notebook version {self.version[:12]})" if self.version else ""
        return (f"{who}: {what}{printable(self.test)} {_fmt(self.before)} -> {_fmt(self.after)} of "
                f"{_fmt(self.max_score)}{on}\ntotal {_fmt(self.total_before)} -> {_fmt(self.total_after)} of "
                f"{_fmt(self.max_total)}")


def _counted(book, submission: str, student_id: str, nodeid: str):
    """(the test's score as the student sees it, the final total, max total)."""
    from grader.classroom.outputs import Finals
    row = book.row(submission)
    final = Finals(book).grade(row, student_id) if row is not None else None
    if final is None:
        return 0.0, 0.0, 0.0
    score = next((t.score for t in final.result.tests if t.nodeid == nodeid), 0.0)
    return score, final.total, final.max_total


def record_override(folder: str | Path, student: str, test: str, points: float | None, reason: str,
                    grader: str, *, seen: str | None = None) -> OverrideChange:
    """Record one override (points None withdraws it), derive the results folder again,
    and say what changed. OverrideError / GradebookError when it cannot be recorded.

    The override is bound to the notebook version read here (or `seen`, the version the
    instructor looked at, e.g. from the review page or `--history`: refused when the
    notebook was graded again since), all under the results folder's lock, so the files
    written after it hold it even with a review server saving at the same time."""
    from grader.classroom.folder_lock import results_lock
    from grader.classroom.gradebook import Gradebook
    from grader.classroom.outputs import export_grades, feedback_dir
    if not reason or not reason.strip():
        raise OverrideError("an override needs --reason \"...\": the student reads it next to the test, and the "
                            "next grader in the history")
    with results_lock(folder), Gradebook(folder, create=False) as book:
        submission, student_id = find_submission(book, student)
        nodeid, title, max_score = book.find_test(submission, test)
        before, total_before, _ = _counted(book, submission, student_id, nodeid)
        version = book.row(submission).sha256 if seen is None else seen
        book.add_override(submission, nodeid, points, reason, grader, version=version)
        grades = export_grades(book, changed={submission})
        after, total_after, max_total = _counted(book, submission, student_id, nodeid)
        derived = (grades.csv, grades.json)
        try:
            derived += (feedback_dir(book.folder, student_id),)
        except GradebookError:
            pass
    return OverrideChange(student_id, submission, title, before, after, max_score, total_before, total_after,
                          max_total, points is None, derived, version)


# ---------------------------------------------------------------- history

@dataclass(frozen=True)
class HistoryEntry:
    at: str
    grader: str
    student_id: str
    submission: str
    test: str               # title when the test still exists, else its nodeid
    points: float | None    # None: withdrawn
    max_score: float | None
    reason: str
    applies: bool           # False: the notebook changed since; not applied
    latest: bool            # False: a later decision on the same test replaced it
    version: str = ""       # the notebook's hash it was decided on

    def describe(self) -> str:
        of = f" of {_fmt(self.max_score)}" if self.max_score is not None else ""
        what = ("withdrawn (the autograder's score counts)" if self.points is None
                else f"set to {_fmt(self.points)}{of}")
        who = printable(self.student_id) + ("" if self.student_id == self.submission
                                            else f" ({printable(self.submission)})")
        notes = []
        if not self.latest:
            notes.append("replaced by a later decision")
        elif not self.applies:
            notes.append("not applied: the notebook changed since")
        tail = f"  [{'; '.join(notes)}]" if notes else ""
        on = f"  [notebook version {self.version[:12]}]" if self.version else ""
        return (f"{self.at}  {printable(self.grader) or 'unknown'}  {who}  {printable(self.test)}: {what}\n"
                f"    why: {printable(self.reason)}{tail}{on}")


def history(book, student: str | None = None) -> list[HistoryEntry]:
    """Every override recorded (for one student's submission, or all), oldest first."""
    identities = book.identities()
    rows = {r.submission: r for r in book.rows()}
    if student is None:
        records = book.override_history()
    else:
        current, sid = find_submission(book, student)
        # Every notebook of theirs, not only the current one: an old override explains a grade.
        submissions = {current} | {s for s, r in rows.items() if identities.student_id(r.student_key) == sid}
        records = [o for o in book.override_history() if o.submission in submissions]
    titles: dict[tuple[str, str], tuple[str, float]] = {}
    for sub, exercise, name, _status, _score, max_score, _diag, nodeid in book.tests():
        titles[(sub, nodeid)] = (f"{exercise} · {name}" if exercise else name, max_score)
    last = {(o.submission, o.test): o.id for o in records}
    out = []
    for o in records:
        row = rows.get(o.submission)
        sid = identities.student_id(row.student_key) if row is not None else o.submission
        title, max_score = titles.get((o.submission, o.test), (o.test, None))
        out.append(HistoryEntry(o.at, o.grader, sid, o.submission, title, o.points, max_score, o.reason,
                                o.applies, last[(o.submission, o.test)] == o.id, o.sha256))
    return out


# ---------------------------------------------------------------- after a grading run

def attention_lines(grades, results: str | Path) -> list[str]:
    """What `grader grade --out` tells the instructor after its run (`grades`: the
    ClassGrades export_grades returned): each decision that no longer applies, with how to
    decide again, and how many written answers wait for a score (one line, not one per
    student)."""
    lines = [f"grader: {printable(a)}" for a in grades.stale]
    if grades.stale:
        lines.append(f"grader: decide again with `grader override {printable(results)} STUDENT TEST POINTS "
                     f"--reason ...` (POINTS `auto`: the autograder's score stands), or in `grader review "
                     f"{printable(results)}`; `grader override {printable(results)} --history` lists every decision")
    if grades.pending_written:
        n, m = grades.pending_written, grades.pending_students
        lines.append(f"grader: {n} written answer{'s' * (n != 1)} ({m} student{'s' * (m != 1)}) wait for a "
                     f"score: `grader review {printable(results)}`")
    return lines


# ---------------------------------------------------------------- command line

def register(subparsers) -> None:
    o = subparsers.add_parser(
        "override", help="change one test's score for one student, with the reason (kept in a history)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""\
Record an override in RESULTS' gradebook and rewrite grades.csv, grades.json
and the student's feedback.
  STUDENT  a student id from the roster, or a submission's file name
  TEST     its number (as in the feedback), title ("happyModel · layer order")
           or pytest node id
  POINTS   a number, or `auto` to withdraw the override
An override holds while the notebook is unchanged; `grader grade` tells you
when it no longer applies. See docs/classroom.md.""",
        epilog="examples:\n  grader override results/ s001 5 3 --reason \"ReLU before BN: equivalent here\"\n"
               "  grader override results/ alice.ipynb \"happyModel · layer order\" auto --reason \"withdrawn\"\n"
               "  grader override results/ --history s001")
    o.add_argument("results", metavar="RESULTS", help="the folder given to grader grade --out")
    o.add_argument("what", nargs="*", metavar="STUDENT TEST POINTS",
                   help="whose test, which test, and its new score")
    o.add_argument("--reason", default=None, help="why: the student reads it next to the test")
    o.add_argument("--grader", metavar="NAME", default=None,
                   help="who decided, recorded in the history (default: your login name)")
    o.add_argument("--seen", metavar="VERSION", default=None,
                   help="the notebook version you decided on (as the review page and --history show it, 8+ "
                        "hex digits): refused if the notebook was graded again since")
    o.add_argument("--history", nargs="?", const="", default=None, metavar="STUDENT",
                   help="list every override recorded (of STUDENT, or of everyone), oldest first")
    o.set_defaults(handler=run)


def run(args) -> int:
    try:
        if args.history is not None:
            if args.what:
                return _usage(f"--history lists decisions, it takes no TEST or POINTS: grader override "
                              f"{args.results} --history [STUDENT]")
            return _show_history(args.results, args.history or None)
        if len(args.what) != 3:
            return _usage(f"give STUDENT TEST POINTS (got {len(args.what)} of them), e.g. "
                          f"grader override {args.results} alice 5 3 --reason \"...\"")
        student, test, points_text = args.what
        points = parse_points(points_text)
        change = record_override(args.results, student, test, points, args.reason or "", grader_name(args.grader),
                                 seen=args.seen)
    except GradebookError as exc:
        return _usage(str(exc))
    print(change.describe())
    print("rewritten: " + ", ".join(printable(p) for p in change.derived))
    return EXIT_OK


def _show_history(results: str, student: str | None) -> int:
    from grader.classroom.gradebook import Gradebook
    with Gradebook(results, create=False) as book:
        entries = history(book, student)
    if not entries:
        print("no overrides recorded" + (f" for {printable(student)}" if student else ""))
    for entry in entries:
        print(entry.describe())
    return EXIT_OK


def _usage(message: str) -> int:
    print(f"grader override: {printable(message, keep=chr(10))}", file=sys.stderr)
    return EXIT_USAGE
