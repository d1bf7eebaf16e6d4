"""`grader export grades RESULTS [RESULTS ...] --format canvas|moodle|csv --out FILE`:
the course's gradebook file, one row per student and one column per assignment, for an
LMS to import.

Each RESULTS folder is one assignment (as `grader grade --out` made it); its column holds
each student's final total, as grades.csv has it: the tests' scores with the instructor's
overrides, the written answers' scores and any late penalty (classroom/final.py; nothing is
recomputed here). The students are the roster's (`--roster`, the CSV given to `grader
grade`; extra columns such as `email` or `username` are kept for Moodle), else everyone
the results folders know. A student with no submission gets an empty cell (no grade, not
zero) unless `--missing-as-zero`.

The layouts, as the LMSs import them:

* canvas: Canvas's gradebook CSV: `Student, ID, SIS User ID, SIS Login ID, Section`, a
  `Points Possible` row, then one column per assignment. Canvas finds an existing
  assignment by a header spelled `Name (canvas_id)`, which `--canvas-column NAME=HEADER`
  gives, or `--template` reads from a CSV exported from that course's gradebook (whose
  rows then give every student's Canvas identity, in Canvas's own order). A header Canvas
  does not know creates a new assignment on import, which we say.
* moodle: Moodle's "Import grades: CSV file": an identifier column (the roster's
  `--moodle-id` column: idnumber, email or username), then one column per grade item;
  Moodle asks on import which column identifies the user and which item each column is.
* csv: `student_id, name`, then one column per assignment, for a spreadsheet.

Free-text cells (names, sections, headers) go through csv_cell: a name cannot become a
formula in the spreadsheet the LMS file is checked in. Identifier cells (student ids,
Canvas's ID, SIS and integration ids, Moodle's identifier column) are written exactly as
given, as the LMSs' own exports write them: an apostrophe in front of `-s001` or
`@alice` would make that student unknown to the import. An identifier a spreadsheet would
read as a formula is named in a warning instead.
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from grader.exit_codes import EXIT_OK, EXIT_USAGE
from grader.classroom.csvtable import read_csv_table, read_csv_text
from grader.classroom.errors import GradebookError
from grader.classroom.names import csv_cell, printable
from grader.classroom.roster import ID_COLUMNS, KEY_COLUMNS, NAME_COLUMNS

FORMATS = ("canvas", "moodle", "csv")
CANVAS_IDENTITY = ("Student", "ID", "SIS User ID", "SIS Login ID", "Integration ID", "Section")
CANVAS_POINTS_ROW = "    Points Possible"  # as Canvas spells it in its own export
CANVAS_ID_COLUMNS = {"sis_user_id": "SIS User ID", "sis_login_id": "SIS Login ID", "id": "ID"}
# Canvas matches rows by these: written exactly as given, never defused.
CANVAS_IDENTIFIERS = frozenset({"ID", "SIS User ID", "SIS Login ID", "Integration ID"})
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_CANVAS_HEADER = re.compile(r"^(?P<name>.*?)\s*\((?P<id>\d+)\)\s*$")


class ExportError(GradebookError):
    """The export cannot be written as asked; the message names the file and the fix."""


# ---------------------------------------------------------------- what each assignment says

@dataclass(frozen=True)
class AssignmentGrades:
    """One results folder's final totals, by student id."""
    folder: Path
    name: str
    title: str
    max_total: float
    totals: dict[str, float]                      # graded students' final totals
    names: dict[str, str]                         # every student the folder knows -> name
    not_graded: dict[str, str]                    # a submission, but no grade: why
    attention: tuple[str, ...] = ()               # decisions that no longer apply
    pending: int = 0                              # written answers not scored yet (counted as 0)


def read_assignment(folder: str | Path, ids: dict[str, str] | None = None) -> AssignmentGrades:
    """The final totals of one results folder, read from its gradebook (nothing written).
    `ids` (file_or_folder -> student id, from the export's roster) names students graded
    without a roster, or under other ids; lateness still follows the folder's own roster."""
    from grader.classroom.gradebook import Gradebook
    from grader.classroom.outputs import Finals, class_max_total
    ids = ids or {}
    with Gradebook(folder, create=False) as book:
        if not book.assignment:
            raise ExportError(f"{folder}: its gradebook names no assignment yet; grade into it first")
        identities = book.identities()
        finals = Finals(book, identities)
        totals, names, not_graded, attention, pending = {}, {}, {}, [], 0
        for g in book.students(identities):
            entry = identities.by_id(g.student_id)
            key = g.row.student_key if g.row is not None else (entry.key if entry else "")
            sid = ids.get(key, g.student_id)
            names[sid] = g.name
            if g.row is None:
                continue
            final = finals.grade(g.row, g.student_id) if g.row.graded else None
            if final is None:
                not_graded[sid] = g.reason or g.status
                continue
            totals[sid] = final.total
            attention.extend(final.attention)
            pending += len(final.pending)
        return AssignmentGrades(Path(folder), book.assignment, book.meta("title") or book.assignment,
                                class_max_total(book, finals.questions), totals, names, not_graded,
                                tuple(attention), pending)


# ---------------------------------------------------------------- who is in the class

@dataclass(frozen=True)
class Student:
    student_id: str
    name: str = ""
    columns: dict[str, str] = field(default_factory=dict)  # the roster's cells, by lower-case header


def read_students(path: str | Path) -> list[Student]:
    """The roster's students in its order: `student_id` (or, without one, `file_or_folder`,
    as `grader grade` names them), `name`, and every other column kept for --moodle-id."""
    path = Path(path)
    table = read_csv_table(path, "roster", ExportError)
    reader, columns = table.reader, table.columns
    id_col, name_col = table.column(ID_COLUMNS + KEY_COLUMNS), table.column(NAME_COLUMNS)
    if id_col is None:
        raise ExportError(f"roster {path}: needs a student_id (or file_or_folder) column "
                          f"(found: {printable(', '.join(columns)) or 'no header'})")
    students: dict[str, Student] = {}
    for row in reader:
        sid = (row.get(id_col) or "").strip()
        if not sid:
            continue
        if sid in students:
            raise ExportError(f"roster {path}, line {reader.line_num}: student {printable(sid)!r} appears twice")
        cells = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items() if isinstance(v, str)}
        students[sid] = Student(sid, (row.get(name_col) or "").strip() if name_col else "", cells)
    return list(students.values())


def roster_ids(path: str | Path) -> dict[str, str]:
    """file_or_folder -> student_id, when the roster maps submissions as `grader grade
    --roster` does; {} for a plain class list."""
    from grader.classroom.roster import read_roster
    if not read_csv_table(path, "roster", ExportError).column(KEY_COLUMNS):
        return {}  # a class list: ids only
    return {e.key: e.student_id for e in read_roster(path)}  # its errors name the line


def merge(assignments: list[AssignmentGrades]) -> list[AssignmentGrades]:
    """One column per assignment: two folders of the same assignment (two sections graded
    apart) become one; a student graded in both is refused, since either grade could be
    the wrong one."""
    merged: dict[str, AssignmentGrades] = {}
    for a in assignments:
        if a.name not in merged:
            merged[a.name] = a
            continue
        b = merged[a.name]
        both = sorted(set(a.totals) & set(b.totals))
        if both:
            raise ExportError(f"{printable(both[0])} has a grade for {a.name} in both {b.folder} and {a.folder}; "
                              f"export one of them, or grade the student into one folder only")
        merged[a.name] = AssignmentGrades(b.folder, b.name, b.title, max(a.max_total, b.max_total),
                                          {**b.totals, **a.totals}, {**a.names, **b.names},
                                          {**a.not_graded, **b.not_graded}, b.attention + a.attention,
                                          a.pending + b.pending)
    return list(merged.values())


# ---------------------------------------------------------------- the table, before a layout

@dataclass(frozen=True)
class Cell:
    value: float | None
    missing: bool  # nothing submitted (as opposed to submitted and not graded)


def _number(x: float) -> str:
    """Plain decimals an LMS parses (never `1e+06`), at most 4 places, no trailing zeros."""
    text = f"{x:.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def grade_table(students: list[Student], assignments: list[AssignmentGrades], *,
                missing_as_zero: bool = False) -> list[list[Cell]]:
    """The grade of each student (rows) for each assignment (columns)."""
    table = []
    for s in students:
        row = []
        for a in assignments:
            if s.student_id in a.totals:
                row.append(Cell(a.totals[s.student_id], False))
            elif s.student_id in a.not_graded:
                row.append(Cell(None, False))
            else:
                row.append(Cell(0.0 if missing_as_zero else None, True))
        table.append(row)
    return table


def _cell(c: Cell) -> str:
    return "" if c.value is None else _number(c.value)


def _identifier(value: str, column: str, warnings: list[str]) -> str:
    """An identifier cell, exactly as given: the LMS matches the student by it. One that a
    spreadsheet would read as a formula is written anyway, and said once."""
    text = str(value)
    if text.startswith(_FORMULA_STARTS):
        warnings.append(f"the {column} {printable(text)} starts with {printable(text[0])!r}: written exactly "
                        f"(the LMS matches students by it), so do not open this file in a spreadsheet "
                        f"before importing it")
    return text


# ---------------------------------------------------------------- layouts

@dataclass(frozen=True)
class CanvasTemplate:
    """What a CSV exported from the course's Canvas gradebook tells: its identity columns,
    each student's identity cells, and the assignment headers `Name (id)` it knows."""
    identity: tuple[str, ...]
    rows: list[dict[str, str]]
    headers: list[str]

    def header_for(self, a: AssignmentGrades) -> str | None:
        wanted = {a.name.casefold(), a.title.casefold()}
        for h in self.headers:
            m = _CANVAS_HEADER.match(h)
            if m and m.group("name").strip().casefold() in wanted:
                return h
        return None

    def header_with_id(self, canvas_id: str) -> str | None:
        return next((h for h in self.headers if _CANVAS_HEADER.match(h).group("id") == canvas_id), None)

    def row_for(self, student_id: str) -> dict[str, str] | None:
        for row in self.rows:
            if student_id and student_id in (row.get("SIS User ID"), row.get("SIS Login ID"), row.get("ID")):
                return row
        return None


def read_canvas_template(path: str | Path) -> CanvasTemplate:
    path = Path(path)
    reader = csv.reader(io.StringIO(read_csv_text(path, "--template", ExportError)))
    header = [h.strip() for h in next(reader, [])]
    if "Student" not in header or not ({"ID", "SIS User ID", "SIS Login ID"} & set(header)):
        raise ExportError(f"--template {path}: not a Canvas gradebook export (its header needs Student and ID or "
                          f"SIS User ID columns; export it from Grades > Export > Export Entire Gradebook)")
    identity = tuple(h for h in header if h in CANVAS_IDENTITY)
    rows = []
    for cells in reader:
        row = dict(zip(header, (c.strip() for c in cells)))
        student = row.get("Student", "")
        if not student or "Points Possible" in student or student == "Student, Test":
            continue  # Canvas's own rows: points, muted flags, the test student
        rows.append(row)
    return CanvasTemplate(identity, rows, [h for h in header if _CANVAS_HEADER.match(h)])


@dataclass(frozen=True)
class Written:
    text: str
    warnings: tuple[str, ...]


def canvas_csv(students: list[Student], assignments: list[AssignmentGrades], table: list[list[Cell]], *,
               columns: dict[str, str], template: CanvasTemplate | None = None,
               id_column: str = "SIS User ID") -> Written:
    """Canvas's layout. Headers: --canvas-column, else the template's `Name (id)`, else the
    title (a new assignment on import, said in a warning)."""
    warnings = []
    headers = []
    for a in assignments:
        header = columns.get(a.name) or (template.header_for(a) if template else None)
        if header is not None and header.isdigit():  # a Canvas assignment id alone
            header = (template.header_with_id(header) if template else None) or f"{a.title} ({header})"
        if header is None:
            header = a.title
            warnings.append(f"Canvas has no column for {a.name} that we know of: importing creates a new "
                            f"assignment {a.title!r}; to fill an existing one give --canvas-column "
                            f"{a.name}=\"Its Name (canvas_id)\" or --template with a gradebook export")
        headers.append(header)
    identity = template.identity if template else ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([csv_cell(h) for h in (*identity, *headers)])
    writer.writerow([csv_cell(CANVAS_POINTS_ROW)] + [""] * (len(identity) - 1) + [_number(a.max_total)
                                                                                 for a in assignments])
    for s, row in zip(students, table):
        if template is not None:
            known = template.row_for(s.student_id)
            if known is None:
                warnings.append(f"{printable(s.student_id)} is not in the Canvas template: left out")
                continue
            ident = [known.get(c, "") for c in identity]
        else:
            ident = [{"Student": s.name, id_column: s.student_id}.get(c, "") for c in identity]
        cells = [_identifier(v, c, warnings) if c in CANVAS_IDENTIFIERS else csv_cell(v)
                 for c, v in zip(identity, ident)]
        writer.writerow(cells + [_cell(c) for c in row])
    return Written(out.getvalue(), tuple(warnings))


def moodle_csv(students: list[Student], assignments: list[AssignmentGrades], table: list[list[Cell]], *,
               id_column: str = "student_id") -> Written:
    """Moodle's layout: the identifier (a roster column), the name, one column per item."""
    warnings, out = [], io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([csv_cell(id_column), "name", *(csv_cell(a.title) for a in assignments)])
    for s, row in zip(students, table):
        ident = s.student_id if id_column == "student_id" else s.columns.get(id_column, "")
        if not ident:
            warnings.append(f"{printable(s.student_id)} has no {id_column} in the roster: left out")
            continue
        writer.writerow([_identifier(ident, id_column, warnings), csv_cell(s.name), *(_cell(c) for c in row)])
    return Written(out.getvalue(), tuple(warnings))


def plain_csv(students: list[Student], assignments: list[AssignmentGrades], table: list[list[Cell]]) -> Written:
    warnings: list[str] = []
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["student_id", "name", *(csv_cell(a.name) for a in assignments)])
    for s, row in zip(students, table):
        writer.writerow([_identifier(s.student_id, "student_id", warnings), csv_cell(s.name),
                         *(_cell(c) for c in row)])
    return Written(out.getvalue(), tuple(warnings))


# ---------------------------------------------------------------- the export

@dataclass(frozen=True)
class ExportPlan:
    results: tuple[str, ...]
    format: str
    out: Path
    roster: str | None = None
    missing_as_zero: bool = False
    canvas_columns: dict[str, str] = field(default_factory=dict)
    template: str | None = None
    canvas_id: str = "sis_user_id"
    moodle_id: str = "student_id"


@dataclass(frozen=True)
class Exported:
    path: Path
    students: int
    assignments: tuple[AssignmentGrades, ...]
    warnings: tuple[str, ...]


def class_students(assignments: list[AssignmentGrades], roster: str | None) -> tuple[list[Student], list[str]]:
    """The roster's students (and a warning for anyone graded who is not in it, still
    exported: a grade is never dropped in silence), else everyone the folders know."""
    known: dict[str, str] = {}
    for a in assignments:
        for sid, name in a.names.items():
            known.setdefault(sid, name)
    if roster is None:
        return [Student(sid, known[sid]) for sid in sorted(known, key=str.casefold)], []
    students = read_students(roster)
    listed = {s.student_id for s in students}
    strangers = sorted(sid for a in assignments for sid in (*a.totals, *a.not_graded) if sid not in listed)
    strangers = sorted(set(strangers), key=str.casefold)
    warnings = []
    if strangers:
        shown = ", ".join(printable(s) for s in strangers[:10]) + (" ..." if len(strangers) > 10 else "")
        warnings.append(f"graded but not in the roster {roster} (exported under the name they were graded "
                        f"as; the LMS will not know them unless you add them): {shown}")
    return students + [Student(sid, known.get(sid, "")) for sid in strangers], warnings


def export_class(plan: ExportPlan) -> Exported:
    """Read every results folder, build the table, write the file (whole, or not at all)."""
    if plan.format not in FORMATS:
        raise ExportError(f"--format must be one of {', '.join(FORMATS)}, not {plan.format!r}")
    ids = roster_ids(plan.roster) if plan.roster else {}
    assignments = merge([read_assignment(folder, ids) for folder in plan.results])
    unknown = sorted(set(plan.canvas_columns) - {a.name for a in assignments})
    if unknown:
        raise ExportError(f"--canvas-column names {', '.join(map(repr, unknown))}, which none of the results "
                          f"folders hold (assignments: {', '.join(a.name for a in assignments)})")
    students, warnings = class_students(assignments, plan.roster)
    table = grade_table(students, assignments, missing_as_zero=plan.missing_as_zero)
    if plan.format == "canvas":
        template = read_canvas_template(plan.template) if plan.template else None
        written = canvas_csv(students, assignments, table, columns=plan.canvas_columns, template=template,
                             id_column=CANVAS_ID_COLUMNS[plan.canvas_id])
    elif plan.format == "moodle":
        if plan.moodle_id != "student_id" and plan.roster is None:
            raise ExportError(f"--moodle-id {plan.moodle_id} is read from the roster: give --roster too")
        if plan.moodle_id != "student_id" and students and plan.moodle_id not in students[0].columns:
            raise ExportError(f"the roster {plan.roster} has no {plan.moodle_id!r} column for --moodle-id "
                              f"(columns: {', '.join(students[0].columns)})")
        written = moodle_csv(students, assignments, table, id_column=plan.moodle_id)
    else:
        written = plain_csv(students, assignments, table)
    for a in assignments:
        for sid, why in sorted(a.not_graded.items()):
            warnings.append(f"{a.name}: {printable(sid)} handed in work that could not be graded ({printable(why)}); "
                            f"left empty")
        warnings.extend(f"{a.name}: {printable(line)}" for line in a.attention)
        if a.pending:
            warnings.append(f"{a.name}: {a.pending} written answer{'s' * (a.pending != 1)} not scored yet, counted "
                            f"as 0: score them first (`grader review {printable(a.folder)}`)")
    _write(plan.out, written.text)
    return Exported(plan.out, len(students), tuple(assignments), tuple(warnings) + written.warnings)


def _write(path: Path, text: str) -> None:
    """An LMS never imports half a file: written beside, then renamed."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc}") from None


def parse_canvas_columns(pairs: list[str]) -> dict[str, str]:
    """`NAME=HEADER` pairs (the assignment's name in grader, Canvas's column header)."""
    columns = {}
    for pair in pairs:
        name, sep, header = pair.partition("=")
        if not sep or not name.strip() or not header.strip():
            raise ExportError(f"--canvas-column takes NAME=HEADER, e.g. conv_bn=\"Conv and BN (12345)\", not "
                              f"{printable(pair)!r}")
        columns[name.strip()] = header.strip()
    return columns


# ---------------------------------------------------------------- command line

def register(platforms) -> argparse.ArgumentParser:
    p = platforms.add_parser(
        "grades", help="the course's grades for an LMS: one row per student, one column per assignment",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""\
Write one file with every student's final grade (overrides, written answers and late
penalties included) for each RESULTS folder given, one column per assignment, in the
layout Canvas or Moodle imports, or a plain CSV. Students come from --roster (its
student_id column), else from the results folders. No submission: an empty cell, not 0.""",
        epilog="examples:\n"
               "  grader export grades results/conv_bn results/resnets --format csv --out grades.csv\n"
               "  grader export grades results/conv_bn --format canvas --roster roster.csv \\\n"
               "      --canvas-column conv_bn=\"Conv and BN (81234)\" --out canvas.csv\n"
               "  grader export grades results/conv_bn --format moodle --roster roster.csv --moodle-id email "
               "--out moodle.csv")
    p.add_argument("results", nargs="+", metavar="RESULTS", help="folders given to grader grade --out")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--out", "-o", required=True, metavar="FILE")
    p.add_argument("--roster", metavar="CSV", default=None,
                   help="the class list (student_id, name, and e.g. email or username for Moodle)")
    p.add_argument("--missing-as-zero", action="store_true",
                   help="a roster student with no submission gets 0 instead of an empty cell")
    p.add_argument("--canvas-column", action="append", default=[], metavar="NAME=HEADER",
                   help="canvas: the column of assignment NAME, as Canvas spells it (\"Its Name (canvas_id)\"), "
                        "or just its Canvas id")
    p.add_argument("--template", metavar="CSV", default=None,
                   help="canvas: a gradebook CSV exported from the course: its students' Canvas ids and its "
                        "assignment columns are used")
    p.add_argument("--canvas-id", choices=tuple(CANVAS_ID_COLUMNS), default="sis_user_id",
                   help="canvas, without --template: the column the roster's student_id goes in")
    p.add_argument("--moodle-id", default="student_id", metavar="COLUMN",
                   help="moodle: the roster column identifying each user (e.g. email, username, idnumber; "
                        "default student_id); choose the matching field in Moodle's import")
    p.set_defaults(handler=run)
    return p


def run(args) -> int:
    try:
        plan = ExportPlan(tuple(args.results), args.format, Path(args.out), args.roster, args.missing_as_zero,
                          parse_canvas_columns(args.canvas_column), args.template, args.canvas_id,
                          args.moodle_id.strip().lower())
        exported = export_class(plan)
    except GradebookError as exc:
        print(f"grader: {printable(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    for line in exported.warnings:
        print(f"grader: {line}", file=sys.stderr)
    columns = ", ".join(f"{printable(a.name)} (of {_number(a.max_total)})" for a in exported.assignments)
    print(f"wrote {printable(exported.path)}: {exported.students} students, {columns}")
    return EXIT_OK
