"""When each submission was handed in, from a CSV the instructor gives (`--manifest`).

A file's modification time is a poor witness once submissions have been downloaded,
unzipped or copied (it becomes the time of the copy), so an LMS's submission times, put in
a CSV, take its place for late penalties:

    file_or_folder,submitted_at          (or: submission,submitted_at)
    alice,2026-12-04T23:58:10+01:00
    bob/hw3.ipynb,2026-12-05 08:12          (no offset: UTC)

`file_or_folder` names a student as the roster does (the notebook's name without .ipynb,
or their folder); `submission` is the notebook's path inside the submissions folder. A
row the grader cannot read is refused with its line number: a guessed time would move a
grade.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from grader.classroom.csvtable import read_csv_table
from grader.classroom.errors import GradebookError
from grader.classroom.names import printable
from grader.classroom.roster import normalize_key
from grader.assignment.late import date_alone, parse_time

_SUBMISSION_COLUMNS = ("submission", "path", "notebook")
_STUDENT_COLUMNS = ("file_or_folder", "file", "folder", "key", "student")
_TIME_COLUMNS = ("submitted_at", "submitted", "submission_time", "submitted_on", "timestamp", "time")


class ManifestError(GradebookError):
    """The manifest cannot be used as given; the message names the file and line."""


@dataclass(frozen=True)
class SubmissionTimes:
    """Submission times by notebook path (`bob/hw3.ipynb`) and by student name (`alice`)."""
    by_submission: dict[str, str] = field(default_factory=dict)
    by_student: dict[str, str] = field(default_factory=dict)

    def time_for(self, submission: str, student: str) -> str:
        """The ISO time for one notebook, or "" (its modification time counts)."""
        return self.by_submission.get(submission) or self.by_student.get(student, "")

    def unused(self, tasks) -> list[str]:
        """Manifest names that match none of `tasks` (a misspelled name is worth saying)."""
        keys = {t.key for t in tasks}
        students = {t.student for t in tasks}
        return sorted([k for k in self.by_submission if k not in keys]
                      + [s for s in self.by_student if s not in students])


# A hand-in this far after the run's clock is refused (clocks of two machines disagree by less).
FUTURE_SLACK = timedelta(minutes=10)


def parse_submission_time(text: str, *, now: datetime | None = None) -> str:
    """The time as a normalized ISO string with its offset; ValueError saying what to write.
    A date alone, in any ISO 8601 form (`2026-12-05`, `20261205`, `2026W496`), is refused:
    for a deadline it means the day's end, for a hand-in it would be a guess. So is a time
    in the future: nobody handed in then, and it would make the work late."""
    text = (text or "").strip()
    if not text:
        raise ValueError("the time is empty")
    day = date_alone(text)
    if day is not None:
        spelled = "" if text == day.isoformat() else f" (ISO 8601 for {day.isoformat()})"
        raise ValueError(f"{text!r} is a date without a time{spelled}; write e.g. {day.isoformat()}T14:05:00+01:00")
    when = parse_time(text)
    now = now or datetime.now(timezone.utc)
    if when > now + FUTURE_SLACK:
        raise ValueError(f"{text!r} is in the future (it is now {now.isoformat(timespec='minutes')}): nobody has "
                         f"handed in then; check the year and the time zone")
    return when.isoformat()


def read_manifest(path: str | Path) -> SubmissionTimes:
    path = Path(path)
    table = read_csv_table(path, "manifest", ManifestError)
    reader, columns = table.reader, table.columns
    sub_col, student_col = table.column(_SUBMISSION_COLUMNS), table.column(_STUDENT_COLUMNS)
    time_col = table.column(_TIME_COLUMNS)
    if (sub_col is None and student_col is None) or time_col is None:
        raise ManifestError(f"manifest {path}: needs a header with a file_or_folder (or submission) column and a "
                            f"submitted_at column (found: {printable(', '.join(columns)) or 'no header'})")
    by_submission: dict[str, str] = {}
    by_student: dict[str, str] = {}
    seen: dict[str, int] = {}
    for row in reader:
        line = reader.line_num  # the file's line, blank lines counted
        submission = (row.get(sub_col) or "").strip() if sub_col else ""
        student = normalize_key(row.get(student_col) or "") if student_col else ""
        if not submission and not student:
            if any((v or "").strip() for v in row.values() if isinstance(v, str)):
                raise ManifestError(f"manifest {path}, line {line}: names no submission; fill in its "
                                    f"{sub_col or student_col} column")
            continue  # a blank line
        name = submission or student
        if name in seen:
            raise ManifestError(f"manifest {path}, line {line}: {printable(name)!r} already has a time on line "
                                f"{seen[name]}; keep one line per submission")
        seen[name] = line
        try:
            when = parse_submission_time(row.get(time_col) or "")
        except ValueError as exc:
            raise ManifestError(f"manifest {path}, line {line}: {time_col}: {printable(str(exc))}") from None
        (by_submission if submission else by_student)[name] = when
    return SubmissionTimes(by_submission, by_student)
