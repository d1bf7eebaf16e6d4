"""The roster: who a submission belongs to, and each student's own deadline.

A CSV the instructor keeps (`file_or_folder,student_id,name[,extension]`) maps the name a
submission arrives under (its file stem or folder) to a student id; `extension` gives one
student more time, as days (`2`, `1.5`) or as their own due date (`2026-12-03T23:59`).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterable

from grader.classroom.csvtable import read_csv_table
from grader.classroom.errors import GradebookError
from grader.classroom.names import printable


class RosterError(GradebookError):
    """The roster cannot be used as given; the message names the file and line."""


@dataclass(frozen=True)
class RosterEntry:
    key: str
    student_id: str
    name: str = ""
    extension_days: float = 0.0  # added to the assignment's due date
    due: str = ""                # or this student's own due date (ISO 8601), which wins


# Accepted spellings of each roster column (lower case), first match first.
KEY_COLUMNS = ("file_or_folder", "file", "folder", "submission", "key")
ID_COLUMNS = ("student_id", "id", "sid", "student")
NAME_COLUMNS = ("name", "student_name", "full_name")
EXTENSION_COLUMNS = ("extension", "extension_days", "due", "due_date")


def normalize_key(text: str) -> str:
    """"alice.ipynb", "alice/" and "alice" name the same student in a roster."""
    key = text.strip().rstrip("/\\")
    return key[: -len(".ipynb")] if key.lower().endswith(".ipynb") else key


def parse_extension(text: str) -> tuple[float, str]:
    """(days, due date): a number of days, or a date/time of the student's own deadline.
    Raises ValueError with the accepted spellings."""
    text = (text or "").strip()
    if not text:
        return 0.0, ""
    try:
        days = float(text)
    except ValueError:
        pass
    else:
        if days < 0 or days != days or days > 3650:
            raise ValueError(f"{text!r} is not a number of days between 0 and 3650")
        return days, ""
    try:
        datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither a number of days (e.g. 2) nor a date "
                         f"(e.g. 2026-12-03 or 2026-12-03T23:59)") from None
    return 0.0, text


def read_roster(path: str | Path) -> list[RosterEntry]:
    """A CSV with a header naming at least `file_or_folder` (the submission's file stem or
    folder name) and usually `student_id` and `name`; `extension` is optional; other
    columns are ignored."""
    table = read_csv_table(path, "roster", RosterError)
    reader, columns = table.reader, table.columns
    key_col, id_col, name_col = table.column(KEY_COLUMNS), table.column(ID_COLUMNS), table.column(NAME_COLUMNS)
    ext_col = table.column(EXTENSION_COLUMNS)
    if key_col is None:
        raise RosterError(f"roster {path}: needs a header with a file_or_folder column "
                          f"(found: {', '.join(columns) or 'no header'})")
    entries: dict[str, RosterEntry] = {}
    lines: dict[str, int] = {}    # key -> its line
    ids: dict[str, str] = {}      # student id -> the key of the row that has it
    for row in reader:
        line = reader.line_num  # the file's line, blank lines counted
        key = normalize_key(row.get(key_col) or "")
        if not key:
            continue
        if key in entries:
            raise RosterError(f"roster {path}, line {line}: {key!r} appears twice")
        student_id = (row.get(id_col) or "").strip() if id_col else ""
        name = (row.get(name_col) or "").strip() if name_col else ""
        try:
            days, due = parse_extension(row.get(ext_col) or "") if ext_col else (0.0, "")
        except ValueError as exc:
            raise RosterError(f"roster {path}, line {line}: extension {exc}") from None
        student_id = student_id or key
        if student_id in ids:
            first = entries[ids[student_id]]
            raise RosterError(
                f"roster {path}, line {line}: student id {printable(student_id)!r} ({_who(key, name)}) is already "
                f"on line {lines[first.key]} ({_who(first.key, first.name)}); one id per student, or their grades "
                f"would be merged into one")
        entries[key], lines[key], ids[student_id] = RosterEntry(key, student_id, name, days, due), line, key
    return list(entries.values())


def _who(key: str, name: str) -> str:
    return printable(f"{key}, {name}" if name else key)


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
        self._by_id = {e.student_id: e for e in self.entries}

    def entry(self, student_key: str) -> RosterEntry | None:
        key = student_key[: -len(".ipynb")] if student_key.endswith(".ipynb") else student_key
        return self._exact.get(key)

    def by_id(self, student_id: str) -> RosterEntry | None:
        return self._by_id.get(student_id)

    def impostor(self, student_key: str) -> str:
        """Why a submission not in the roster may not be graded under its own name, or "":
        its name is another, listed, student's id (`s001.ipynb` beside `alice,s001`), and
        grading it would put its grade in that student's place."""
        if self.entry(student_key) is not None:
            return ""
        owner = self._by_id.get(student_key[: -len(".ipynb")] if student_key.endswith(".ipynb") else student_key)
        if owner is None:
            return ""
        return (f"not in the roster, and its name is the student id of {printable(owner.key)} "
                f"({printable(owner.student_id)}): it is not graded, so that it cannot take their place; add it "
                f"to the roster under its own id (or move it into {printable(owner.key)}'s folder if it is theirs)")

    def student_id(self, student_key: str) -> str:
        entry = self.entry(student_key)
        return entry.student_id if entry else student_key

    def name(self, student_key: str) -> str:
        entry = self.entry(student_key)
        return entry.name if entry else ""
