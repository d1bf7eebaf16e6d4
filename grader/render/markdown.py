"""GitHub-flavoured Markdown feedback (also Gradescope's per-test `output`).

Markdown renders HTML and links, and a student controls some of the text: what their code
printed, their traceback, even layer names quoted in a message. Text the student wrote
verbatim goes into fenced code blocks whose fence is longer than any backtick run inside,
and every other piece of text is escaped, so nothing the student typed becomes markup.
"""
from __future__ import annotations

import re

from grader.results import Status, SubmissionResult, Table, TestResult

from grader.render import _common as c

# Every ASCII punctuation character CommonMark or GitHub gives a meaning to: HTML (<, &),
# table cells (|), setext underlines (=, -), math ($), and the ":" "." "@" of autolinks.
# Backslash-escaping any ASCII punctuation is always legal, so over-escaping costs
# nothing but raw-text readability.
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~<>&=:$@])")


def escape(text: str) -> str:
    """One line of inert Markdown text (newlines become spaces)."""
    return _MD_SPECIAL.sub(r"\\\1", c.safe_text(text).replace("\n", " "))


def paragraphs(text: str) -> str:
    """Escaped prose; single newlines kept as hard line breaks, blank lines as paragraphs."""
    blocks = []
    for block in re.split(r"\n\s*\n", c.safe_text(text).strip("\n")):
        lines = [escape(l.strip()) for l in block.split("\n") if l.strip()]
        if lines:
            blocks.append("\\\n".join(lines))
    return "\n\n".join(blocks)


def fenced(text: str, info: str = "text") -> str:
    """A code block the content cannot close: the fence is one backtick longer than the
    longest backtick run in the text."""
    body = c.safe_text(text).rstrip("\n")
    longest = max((len(m) for m in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{body}\n{fence}"


def table(t: Table) -> str:
    """A Markdown table with the first difference in bold and pointed at."""
    headers, rows, marked = c.table_grid(t)
    note = [""] if marked is not None else []
    out = ["| " + " | ".join(escape(h) for h in headers + note) + " |",
           "|" + "|".join(["--:"] + ["---"] * (len(headers) - 1 + len(note))) + "|"]
    for i, r in enumerate(rows):
        if i == marked:
            cells = [f"**{escape(x)}**" if x.strip() else "" for x in r]
            cells[0] = f"**→ {escape(r[0])}**"
            cells.append(escape(c.FIRST_DIFFERENCE))
        else:
            cells = [escape(x) for x in r] + note
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def details(test: TestResult) -> str:
    """Everything a test has to say (instructor level of detail): message, table, fix,
    the checks' teaching notes, then the student's own traceback and output, labelled as
    theirs."""
    parts = []
    if test.status is Status.NOT_RUN:
        parts.append(f"_Not run: {escape(c.not_run_reason(test))}_")
    elif test.message.strip():
        parts.append(paragraphs(test.message))
    if test.table is not None and test.table.rows:
        parts.append(table(test.table))
    if test.hint.strip():
        parts.append("**Fix:** " + paragraphs(test.hint))
    parts += [f"**{escape(c.NOTE_LABEL)}** " + paragraphs(n) for n in test.notes]
    if test.student_traceback.strip():
        parts.append(f"**{escape(c.TRACEBACK_LABEL)}**\n\n" + fenced(test.student_traceback))
    if test.output.strip():
        parts.append(f"**{escape(c.OUTPUT_LABEL)}**\n\n" + fenced(test.output))
    return "\n\n".join(parts)


def _head(result: SubmissionResult, audience: str) -> list[str]:
    where, points, timing = c.header_parts(result, audience)
    parts = [f"## {escape(where)}" if where else "## Feedback",
             f"**{escape(points)}** · {escape(timing)}"] + (
        [f"_{escape(result.graded_code)}_"] if result.graded_code else [])
    return parts + [f"> **{escape(c.NOT_GRADED)}:** {escape(e)}" for e in result.errors]


def _tail(result: SubmissionResult, audience: str) -> list[str]:
    parts = []
    if result.warnings:
        parts.append("**Warnings**\n\n" + "\n".join(f"- {escape(w)}" for w in result.warnings))
    parts.append(" ".join(f"**{escape(s)}**" for s in c.verdict(result, audience)))
    return parts


def summary(result: SubmissionResult, audience: str = "student") -> str:
    """Header, fatal errors, warnings and verdict, without per-test content: safe to show
    a student whatever the tests' visibility (Gradescope's top-level `output`)."""
    c.check_audience(audience)
    return "\n\n".join(_head(result, audience) + _tail(result, audience)) + "\n"


def render_markdown(result: SubmissionResult, *, audience: str = "student") -> str:
    """One submission's feedback as GitHub-flavoured Markdown: an overview table of all
    tests, then a section per test that did not earn full marks."""
    c.check_audience(audience)
    parts = _head(result, audience)
    rows = list(c.rows_for(result, audience))
    if rows:
        lines = ["| | Test | Points |", "|:-:|---|--:|"]
        for t, detailed in rows:
            title = escape(t.title)
            if not detailed:
                lines.append(f"| {c.HIDDEN_MARK} | {title} — _{escape(c.HIDDEN_NOTE)}_ "
                             f"| ? / {escape(c.fmt_score(t.max_score))} |")
                continue
            if t.status is Status.NOT_RUN:
                title += f" _\\(not run: {escape(c.not_run_reason(t))}\\)_"
            lines.append(f"| {c.MARK[t.status]} | {title} "
                         f"| {escape(c.fmt_points(t.score, t.max_score))} |")
        parts.append("\n".join(lines))
        for t, detailed in rows:
            # NOT_RUN tests already give their reason in the overview.
            if detailed and t.status is not Status.NOT_RUN and c.has_details(t):
                body = details(t)
                head = (f"### {c.MARK[t.status]} {escape(t.title)} — "
                        f"{escape(c.fmt_points(t.score, t.max_score))}")
                parts.append(head + ("\n\n" + body if body else ""))
    return "\n\n".join(parts + _tail(result, audience)) + "\n"
