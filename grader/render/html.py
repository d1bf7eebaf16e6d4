"""HTML feedback: a standalone page (LMS upload, e-mail) or a fragment for Jupyter output.

Every string that reaches the markup passes through `_e` (html.escape after making
control characters visible); nothing is ever inserted raw, because student code controls
some of it (printed output, tracebacks, layer names quoted in messages). The page loads
nothing from elsewhere and needs no JavaScript, so it renders the same offline and under
a strict Content-Security-Policy.
"""
from __future__ import annotations

import html

from grader.results import Status, SubmissionResult, Table, TestResult

from grader.render import _common as c

_CSS = """
.grader-feedback { font-family: system-ui, -apple-system, "Segoe UI", sans-serif;
  line-height: 1.45; color: #1f2328; max-width: 60rem; }
.grader-feedback h1 { font-size: 1.25rem; margin: 0 0 .25rem; }
.grader-feedback .summary { margin: 0 0 1rem; color: #57606a; }
.grader-feedback .summary strong { color: #1f2328; }
.grader-feedback .graded-code { margin: -.75rem 0 1rem; color: #57606a; }
.grader-feedback .fatal { border: 2px solid #cf222e; background: #ffebe9; padding: .5rem .75rem;
  margin: .5rem 0; font-weight: 600; color: #82071e; }
.grader-feedback .test { border-top: 1px solid #d0d7de; padding: .35rem 0; }
.grader-feedback .line { display: flex; gap: .5rem; align-items: baseline; }
.grader-feedback .line .title { flex: 1; }
.grader-feedback .line .points { white-space: nowrap; font-variant-numeric: tabular-nums; }
.grader-feedback .mark { width: 1.2em; text-align: center; font-weight: 700; }
.grader-feedback .passed .mark { color: #1a7f37; }
.grader-feedback .failed .mark { color: #cf222e; }
.grader-feedback .not_run .mark, .grader-feedback .hidden .mark,
.grader-feedback .not-run-reason, .grader-feedback .hidden-note { color: #6e7781; }
.grader-feedback .details { margin: .25rem 0 .25rem 1.7em; }
.grader-feedback .details p { margin: .25rem 0; white-space: pre-wrap; }
.grader-feedback .hint strong { color: #1f2328; }
.grader-feedback .note { border-left: 4px solid #54aeff; padding-left: .5rem; }
.grader-feedback table.diff { border-collapse: collapse; font-family: ui-monospace, monospace;
  font-size: .9em; margin: .4rem 0; }
.grader-feedback table.diff th, .grader-feedback table.diff td { padding: .1rem .6rem;
  text-align: left; border-bottom: 1px solid #eaeef2; }
.grader-feedback table.diff td.num { text-align: right; color: #6e7781; }
.grader-feedback table.diff tr.marked td { background: #ffebe9; font-weight: 700; color: #82071e; }
.grader-feedback .student { border-left: 4px solid #d4a72c; background: #fff8c5;
  margin: .4rem 0; padding: .25rem .6rem; }
.grader-feedback .student .label { font-size: .85em; font-weight: 600; color: #7d4e00; margin: 0; }
.grader-feedback .student pre { margin: .25rem 0; white-space: pre-wrap; overflow-wrap: anywhere;
  font-family: ui-monospace, monospace; font-size: .85em; }
.grader-feedback .warnings { color: #7d4e00; }
.grader-feedback .verdict { font-weight: 700; margin-top: 1rem; }
.grader-feedback .verdict.all-passed { color: #1a7f37; }
"""


def _e(text: str) -> str:
    return html.escape(c.safe_text(text), quote=True)


def _table(t: Table) -> str:
    headers, rows, marked = c.table_grid(t)
    out = ['<table class="diff"><thead><tr>']
    out += [f'<th scope="col">{_e(h)}</th>' for h in headers]
    if marked is not None:
        out.append('<th scope="col"></th>')
    out.append("</tr></thead><tbody>")
    for i, r in enumerate(rows):
        is_marked = i == marked
        out.append('<tr class="marked">' if is_marked else "<tr>")
        num = ("→ " if is_marked else "") + r[0]
        out.append(f'<td class="num">{_e(num)}</td>')
        out += [f"<td>{_e(x)}</td>" for x in r[1:]]
        if marked is not None:
            out.append(f"<td>{_e(c.FIRST_DIFFERENCE) if is_marked else ''}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _student_block(label: str, text: str) -> str:
    return (f'<div class="student"><p class="label">{_e(label)}</p>'
            f"<pre>{_e(text.rstrip())}</pre></div>")


def _details(test: TestResult) -> str:
    parts = []
    if test.message.strip() and test.status is not Status.NOT_RUN:
        parts.append(f"<p>{_e(test.message.strip())}</p>")
    if test.table is not None and test.table.rows:
        parts.append(_table(test.table))
    if test.hint.strip():
        parts.append(f'<p class="hint"><strong>Fix:</strong> {_e(test.hint.strip())}</p>')
    parts += [f'<p class="note"><strong>{_e(c.NOTE_LABEL)}</strong> {_e(n)}</p>' for n in test.notes]
    if test.student_traceback.strip():
        parts.append(_student_block(c.TRACEBACK_LABEL, test.student_traceback))
    if test.output.strip():
        parts.append(_student_block(c.OUTPUT_LABEL, test.output))
    return f'<div class="details">{"".join(parts)}</div>' if parts else ""


def _test(test: TestResult, detailed: bool) -> str:
    if not detailed:
        return (f'<div class="test hidden"><div class="line">'
                f'<span class="mark" aria-label="hidden">{c.HIDDEN_MARK}</span>'
                f'<span class="title">{_e(test.title)}</span>'
                f'<span class="points">? / {_e(c.fmt_score(test.max_score))}</span></div>'
                f'<div class="details"><p class="hidden-note">{_e(c.HIDDEN_NOTE)}</p></div></div>')
    reason = ""
    if test.status is Status.NOT_RUN:
        reason = f' <span class="not-run-reason">(not run: {_e(c.not_run_reason(test))})</span>'
    body = _details(test) if c.has_details(test) else ""
    return (f'<div class="test {test.status.value}"><div class="line">'
            f'<span class="mark" aria-label="{test.status.value}">{c.MARK[test.status]}</span>'
            f'<span class="title">{_e(test.title)}{reason}</span>'
            f'<span class="points">{_e(c.fmt_points(test.score, test.max_score))}</span></div>'
            f"{body}</div>")


def _body(result: SubmissionResult, audience: str) -> str:
    c.check_audience(audience)
    where, points, timing = c.header_parts(result, audience)
    out = [f"<h1>{_e(where or 'Feedback')}</h1>",
           f'<p class="summary"><strong>{_e(points)}</strong> · {_e(timing)}</p>']
    if result.graded_code:
        out.append(f'<p class="graded-code">{_e(result.graded_code)}</p>')
    out += [f'<div class="fatal" role="alert">{_e(c.NOT_GRADED)}: {_e(err)}</div>'
            for err in result.errors]
    rows = list(c.rows_for(result, audience))
    if rows:
        out.append('<div class="tests">' + "".join(_test(t, d) for t, d in rows) + "</div>")
    if result.warnings:
        out.append('<div class="warnings"><strong>Warnings</strong><ul>'
                   + "".join(f"<li>{_e(w)}</li>" for w in result.warnings) + "</ul></div>")
    sentences = c.verdict(result, audience)
    cls = "verdict all-passed" if c.ALL_PASSED in sentences else "verdict"
    out.append(f'<p class="{cls}">' + " ".join(_e(s) for s in sentences) + "</p>")
    return "".join(out)


def render_html_fragment(result: SubmissionResult, *, audience: str = "student") -> str:
    """A `<div>` carrying its own (class-scoped) styles, for Jupyter output or embedding
    in another page without touching that page's look."""
    return (f'<div class="grader-feedback"><style>{_CSS}</style>'
            f"{_body(result, audience)}</div>")


def render_html(result: SubmissionResult, *, audience: str = "student") -> str:
    """A complete, self-contained HTML5 page."""
    c.check_audience(audience)
    where, _, _ = c.header_parts(result, audience)
    return ("<!DOCTYPE html>\n"
            '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{_e(where or 'Feedback')}</title>\n<style>{_CSS}</style>\n</head>\n"
            f'<body>\n<div class="grader-feedback">{_body(result, audience)}</div>\n'
            "</body>\n</html>\n")
