"""Decisions every renderer must make the same way, made once.

Which tests a student may see in detail, when "All tests passed" may be said, how a score
or a table reads as plain text, and how text that a student controls is made harmless:
if each renderer decided these on its own, the terminal could hide a hidden test's
expected value while the HTML page leaked it, or two formats could disagree about the
grade.
"""
from __future__ import annotations

import re
import textwrap
from pathlib import PurePosixPath, PureWindowsPath
from typing import Callable, Iterable

from grader.results import Status, SubmissionResult, Table, TestResult, Visibility

STUDENT = "student"
INSTRUCTOR = "instructor"
AUDIENCES = (STUDENT, INSTRUCTOR)

WRAP_WIDTH = 100

HIDDEN_NOTE = "hidden test: details are shown after grading is published"
HIDDEN_NOT_RUN = "Hidden tests also count toward your final grade; they are not shown here."
HIDDEN_RUN = ("Hidden tests also count toward your final grade; their results are shown "
              "after grading is published.")
# Said so students never take text their own code printed for a grader verdict.
OUTPUT_LABEL = "Your code printed (your own output, not a grader message):"
TRACEBACK_LABEL = "Your code raised:"
FIRST_DIFFERENCE = "← first difference"
NOTE_LABEL = "Note:"  # a check's teaching note (TestResult.notes), passed tests included
NOT_GRADED = "could not be graded"
ALL_PASSED = "All tests passed."
ALL_VISIBLE_PASSED = "All visible tests passed."

MARK = {Status.PASSED: "✔", Status.FAILED: "✘", Status.NOT_RUN: "–"}
HIDDEN_MARK = "•"


def check_audience(audience: str) -> str:
    # A typo such as "students" must not silently fall through to the instructor view,
    # which shows hidden expected values.
    if audience not in AUDIENCES:
        raise ValueError(f"audience must be one of {AUDIENCES}, not {audience!r}")
    return audience


def is_hidden_from_student(test: TestResult) -> bool:
    """Anything not plainly VISIBLE may carry hidden inputs or expected values.

    AFTER_DUE_DATE and AFTER_PUBLISHED are treated like HIDDEN because a renderer does
    not know whether the date has passed or grades are published; only Gradescope, which
    does know, is trusted with them (through each test's own `visibility`).
    """
    return test.visibility is not Visibility.VISIBLE


def shown_in_detail(test: TestResult, audience: str) -> bool:
    return audience == INSTRUCTOR or not is_hidden_from_student(test)


# Entries a person added after grading (grader.classroom.final): a written answer's score,
# whose comment is worth reading even at full marks, and a late penalty, which is no test.
PERSON_NOTED = ("written",)
NOT_A_TEST = ("late",)


def has_details(test: TestResult) -> bool:
    """Whether a test's message is worth showing: it failed or lost points, a check left
    a teaching note on it, or a person wrote something about it."""
    return (test.status is not Status.PASSED or test.score < test.max_score or bool(test.notes)
            or (test.diagnosis in PERSON_NOTED and bool(test.message.strip())))


def counted(tests) -> list[TestResult]:
    """The entries "N of M tests did not pass" counts."""
    return [t for t in tests if t.diagnosis not in NOT_A_TEST]


def score_is_partial_view(result: SubmissionResult, audience: str) -> bool:
    """True when the student's header score cannot be the final grade."""
    if audience == INSTRUCTOR:
        return False
    return (not result.hidden_tests_run) or any(is_hidden_from_student(t) for t in result.tests)


def final_score(result: SubmissionResult) -> float:
    """A submission that could not be graded earns nothing, whatever partial tests say,
    so every export format reports the same number for it."""
    return 0.0 if result.errors else float(result.score)


def shown_score(result: SubmissionResult, audience: str) -> tuple[float, float]:
    """Score and maximum over the tests this audience may see the outcome of.

    Students see the sum over visible tests only: a total that silently included hidden
    tests would let them infer hidden outcomes by subtraction.
    """
    tests = [t for t in result.tests if shown_in_detail(t, audience)]
    score = 0.0 if result.errors else sum(t.score for t in tests)
    return round(score, 6), round(sum(t.max_score for t in tests), 6)


def fmt_score(x: float) -> str:
    """2.0 reads as "2" and 2.5 as "2.5"; floating noise never reaches a student."""
    s = f"{float(x):.2f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def fmt_points(score: float, max_score: float) -> str:
    return f"{fmt_score(score)} / {fmt_score(max_score)}"


def file_name(path: str) -> str:
    # Paths may come from Windows machines (Coursera / LMS exports); either separator counts.
    name = PureWindowsPath(path).name if "\\" in path else PurePosixPath(path).name
    return name or path


# --- making text harmless ---------------------------------------------------------------

# C0 controls other than tab/newline, DEL, C1 controls (0x9b is a one-byte CSI in some
# terminals), Unicode line/paragraph separators (str.splitlines and some viewers break
# lines there, which would let student text start a line of its own), bidirectional
# overrides (which can visually reorder a line, "Trojan Source"), lone surrogates and the
# two non-characters XML 1.0 forbids.
_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
    "\ud800-\udfff\ufffe\uffff]"
)


def _escape_char(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def safe_text(s: str) -> str:
    """Show control characters as visible escapes instead of letting them act.

    A student's print can contain ANSI escapes or carriage returns that erase or recolour
    the grader's own lines, or characters that make XML ill-formed. Escaping (rather than
    deleting) keeps the evidence visible to the student and the instructor.
    """
    s = str(s).replace("\r\n", "\n")
    return _UNSAFE.sub(_escape_char, s)


def wrap(text: str, width: int | None = WRAP_WIDTH, indent: str = "") -> list[str]:
    """Wrap prose paragraph by paragraph; lines a check author indented stay as written
    because they are usually aligned numbers."""
    lines: list[str] = []
    for line in safe_text(text).split("\n"):
        if not line.strip():
            if lines:
                lines.append("")
            continue
        if width is None or line[:1].isspace() or len(indent) + len(line) <= width:
            lines.append(indent + line.rstrip())
            continue
        lines.extend(textwrap.wrap(line, width=width, initial_indent=indent,
                                   subsequent_indent=indent, break_long_words=False,
                                   break_on_hyphens=False))
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


# --- tables ------------------------------------------------------------------------------

def table_grid(table: Table) -> tuple[list[str], list[list[str]], int | None]:
    """Headers and rows with a "#" column, all rows as wide as the header.

    The number column is added here unless the check already supplied one (first header
    "#"), so students can refer to "row 3" whatever the format.
    """
    headers = [safe_text(h).replace("\n", " ") for h in table.headers]
    rows = [[safe_text(c).replace("\n", " ") for c in r] for r in table.rows]
    if not headers or headers[0].strip() != "#":
        headers = ["#"] + headers
        rows = [[str(i + 1)] + r for i, r in enumerate(rows)]
    n = max([len(headers)] + [len(r) for r in rows])
    headers += [""] * (n - len(headers))
    rows = [r + [""] * (n - len(r)) for r in rows]
    marked = table.marked if table.marked is not None and 0 <= table.marked < len(rows) else None
    return headers, rows, marked


def table_lines(table: Table, indent: str = "") -> list[str]:
    """Aligned columns; the marked row starts with "→" and ends with the first-difference
    note, so the difference is findable without colour (callers that colour the marked
    row find it by its "→")."""
    headers, rows, marked = table_grid(table)
    widths = [max(len(r[i]) for r in [headers] + rows) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        # The number column is right-aligned so 9 and 10 line up.
        parts = [cells[0].rjust(widths[0])] + [c.ljust(w) for c, w in zip(cells[1:], widths[1:])]
        return "  ".join(parts)

    out = [f"{indent}  {line(headers)}".rstrip()]
    for i, r in enumerate(rows):
        if i == marked:
            out.append(f"{indent}→ {line(r)}  {FIRST_DIFFERENCE}")
        else:
            out.append(f"{indent}  {line(r)}".rstrip())
    return out


# --- per-test details as plain text ----------------------------------------------------------

Paint = Callable[[str, str], str]


def no_paint(kind: str, s: str) -> str:
    return s


def detail_lines(test: TestResult, *, indent: str = "", width: int | None = WRAP_WIDTH,
                 paint: Paint = no_paint) -> list[str]:
    """Everything a test has to say, in reading order: what went wrong, where, what to do,
    then the student's own traceback and output, quoted so they cannot pass for ours.

    `paint(kind, line)` may colour a line but must not change its text; kinds are
    "message", "table", "marked", "hint", "note", "label", "student".
    """
    out: list[str] = []
    if test.message and test.status is not Status.NOT_RUN:
        out += [paint("message", l) for l in wrap(test.message, width, indent)]
    if test.table is not None and test.table.rows:
        for l in table_lines(test.table, indent):
            out.append(paint("marked" if l.startswith(indent + "→") else "table", l))
    if test.hint:
        hint = wrap("Fix: " + test.hint, width, indent)
        out += [paint("hint", l) for l in hint]
    for text in test.notes:
        out += [paint("note", l) for l in wrap(f"{NOTE_LABEL} {text}", width, indent)]
    if test.student_traceback.strip():
        out.append(paint("label", indent + TRACEBACK_LABEL))
        out += [paint("student", f"{indent}│ {l}".rstrip())
                for l in safe_text(test.student_traceback).rstrip("\n").split("\n")]
    if test.output.strip():
        out.append(paint("label", indent + OUTPUT_LABEL))
        out += [paint("student", f"{indent}│ {l}".rstrip())
                for l in safe_text(test.output).rstrip("\n").split("\n")]
    return out


def details_plain(test: TestResult) -> str:
    """All of a test's details for machine-facing formats (JSON, JUnit): no wrapping, so
    consumers see the message as the check wrote it. A NOT_RUN test's message (the reason)
    is normally shown on its title line, which these formats do not have."""
    lines = detail_lines(test, width=None)
    if test.status is Status.NOT_RUN:
        lines.insert(0, f"not run: {not_run_reason(test)}")
    return "\n".join(lines)


def not_run_reason(test: TestResult) -> str:
    return safe_text(test.message).replace("\n", " ").strip() or "an earlier check failed"


# --- what may be concluded -------------------------------------------------------------------

def verdict(result: SubmissionResult, audience: str) -> list[str]:
    """The closing sentences.

    "All tests passed" is said only when it is true of every test, hidden ones included,
    and hidden tests were run; a student who sees hidden tests listed (even all passing)
    is told only about the visible ones, so the verdict never reveals a hidden outcome.
    """
    if result.errors:
        return ["This notebook could not be graded; fix the problem above and submit again."
                if audience == STUDENT else "This submission could not be graded."]
    tests = counted(result.tests)
    if not tests:
        return ["No tests were run."]
    if audience == INSTRUCTOR:
        failed = [t for t in tests if t.status is not Status.PASSED]
        if not failed:
            return [ALL_PASSED] if result.hidden_tests_run else [
                "All tests that ran passed; hidden tests were not run."]
        s = f"{len(failed)} of {len(tests)} tests did not pass."
        return [s] if result.hidden_tests_run else [s, "Hidden tests were not run."]
    shown = [t for t in tests if not is_hidden_from_student(t)]
    hidden_exist = len(shown) < len(tests)
    failed = [t for t in shown if t.status is not Status.PASSED]
    if not hidden_exist and result.hidden_tests_run:
        if not failed:
            return [ALL_PASSED]
        return [f"{len(failed)} of {len(shown)} tests did not pass."]
    out = []
    if shown and not failed:
        out.append(ALL_VISIBLE_PASSED)
    elif shown:
        out.append(f"{len(failed)} of {len(shown)} visible tests did not pass.")
    out.append(HIDDEN_RUN if result.hidden_tests_run else HIDDEN_NOT_RUN)
    return out


def header_parts(result: SubmissionResult, audience: str) -> tuple[str, str, str]:
    """(where, score, timing) for a header line: "conv_bn · nb.ipynb", "13 / 20 points", ..."""
    where = " · ".join(safe_text(p).replace("\n", " ")
                       for p in (result.assignment, file_name(result.submission)) if p)
    score, max_score = shown_score(result, audience)
    if result.errors:
        points = "0 points (not graded)"
    elif score_is_partial_view(result, audience):
        points = f"visible tests: {fmt_points(score, max_score)} points"
    else:
        points = f"{fmt_points(score, max_score)} points"
        if audience == INSTRUCTOR and not result.hidden_tests_run:
            points += " (hidden tests not run)"
    isolation = safe_text(result.isolation) or "unknown"
    timing = f"graded in {result.execution_time:.1f} s (isolation: {isolation})"
    return where, points, timing


def rows_for(result: SubmissionResult, audience: str) -> Iterable[tuple[TestResult, bool]]:
    """Each test with whether its details may be shown to this audience."""
    for t in result.tests:
        yield t, shown_in_detail(t, audience)
