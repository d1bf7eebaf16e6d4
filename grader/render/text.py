"""Terminal feedback: what a student reads right after `grader check`.

Colour only emphasises; every fact is also carried by a symbol or a word, so the text
reads the same in a log file, on a colour-blind reader's screen, or in Coursera's plain
feedback box (which uses this renderer without colour).
"""
from __future__ import annotations

from grader.results import Status, SubmissionResult, TestResult

from grader.render import _common as c

_RESET = "\x1b[0m"
_CODES = {
    "bold": "1", "green": "32", "red": "31", "dim": "2",
    "bold_green": "1;32", "bold_red": "1;31",
}
# A test line's title column never grows past this, so one long title does not push
# every score off a 100-column terminal.
_MAX_TITLE_COLUMN = 72


def _painter(color: bool):
    def style(name: str, s: str) -> str:
        if not color or not s or name not in _CODES:
            return s
        return f"\x1b[{_CODES[name]}m{s}{_RESET}"
    return style


_DETAIL_STYLE = {"marked": "bold_red", "hint": "bold", "label": "bold", "student": "dim"}
_MARK_STYLE = {Status.PASSED: "green", Status.FAILED: "red", Status.NOT_RUN: "dim"}


def _has_details(test: TestResult) -> bool:
    return c.has_details(test)


def render_text(result: SubmissionResult, *, color: bool = False, audience: str = "student") -> str:
    """Render one graded submission for a terminal.

    With `audience="student"`, tests not plainly visible show their title and a note
    only, and the header score covers visible tests only (see `_common.shown_score`).
    """
    c.check_audience(audience)
    style = _painter(color)

    def paint(kind: str, line: str) -> str:
        return style(_DETAIL_STYLE.get(kind, ""), line)

    where, points, timing = c.header_parts(result, audience)
    out = [style("bold", " · ".join(p for p in (where, points, timing) if p))]
    if result.graded_code:
        out += c.wrap(result.graded_code, c.WRAP_WIDTH)
    out.append("")

    for err in result.errors:
        lines = c.wrap(f"{c.NOT_GRADED}: {err}", c.WRAP_WIDTH, "")
        out += [style("bold_red", lines[0])] + [style("bold_red", "    " + l) for l in lines[1:]]
    if result.errors:
        out.append("")

    rows = list(c.rows_for(result, audience))
    if rows:
        titles, got, of = [], [], []
        for t, detailed in rows:
            titles.append(f"{c.MARK[t.status] if detailed else c.HIDDEN_MARK} {c.safe_text(t.title)}")
            got.append(c.fmt_score(t.score) if detailed else "?")
            of.append(c.fmt_score(t.max_score))
        col = min(max(len(s) for s in titles), _MAX_TITLE_COLUMN) + 2
        # Aligned on the slash so "2 / 2" and "0 / 2.5" read as one column.
        got_w, of_w = max(map(len, got)), max(map(len, of))
        for (t, detailed), title, g, o in zip(rows, titles, got, of):
            mark, rest = title.split(" ", 1)
            pad = " " * max(2, col - len(title))
            score = f"{g.rjust(got_w)} / {o.ljust(of_w)}"
            line = (style(_MARK_STYLE[t.status] if detailed else "dim", mark) + " "
                    + (rest if detailed else style("dim", rest)) + pad + score)
            if detailed and t.status is Status.NOT_RUN:
                line = line.rstrip() + style("dim", f"   (not run: {c.not_run_reason(t)})")
            out.append(line.rstrip())
            if not detailed:
                out.append(style("dim", f"    {c.HIDDEN_NOTE}"))
            elif _has_details(t):
                out += c.detail_lines(t, indent="    ", paint=paint)
        out.append("")

    if result.warnings:
        out.append(style("bold", "Warnings:"))
        for w in result.warnings:
            lines = c.wrap(w, c.WRAP_WIDTH, "    ") or ["    "]
            out += ["  ! " + lines[0][4:]] + lines[1:]
        out.append("")

    if audience == c.INSTRUCTOR and getattr(result, "notes", None):
        out.append(style("bold", "For the instructor:"))
        out += ["  - " + n for n in result.notes] + [""]

    all_passed = not result.errors and c.ALL_PASSED in c.verdict(result, audience)
    for sentence in c.verdict(result, audience):
        for l in c.wrap(sentence, c.WRAP_WIDTH):
            out.append(style("bold_green" if all_passed else "bold", l))
    return "\n".join(out) + "\n"
