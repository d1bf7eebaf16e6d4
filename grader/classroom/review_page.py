"""The review pages' text: HTML, CSS and JavaScript, written here and served by
grader.classroom.review; nothing is loaded from elsewhere, so the page works offline.

Almost everything shown is typed by someone else: a student's written answer, their file
name and roster name, a comment or a reason typed earlier. Every such string passes
through `_e` (control characters made visible, then html.escape with quotes), in element
text and attribute values alike, and never reaches a <script>: the script reads what it
needs from data- attributes and writes only with textContent. A very long answer is cut
for display (the gradebook keeps it whole). The pages are plain functions of typed
values, so they can be checked without a server.
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from grader.classroom.names import printable
from grader.render import render_html_fragment
from grader.render._common import fmt_score

if TYPE_CHECKING:  # the gradebook's records; only their attributes are used here
    from grader.classroom.final import FinalGrade
    from grader.classroom.gradebook import Answer, ManualScore, Override
    from grader.assignment.written import Question
    from grader.results import SubmissionResult

# Longest part of an answer shown on a card; the rest is counted, not shown. A class's
# answers sit side by side on one page, so one pasted book must not make it unusable.
MAX_SHOWN_CHARS = 20_000
# Longest comment and override reason the page lets one type; the server refuses longer
# ones rather than let the gradebook cut them (it keeps 2,000 characters of a reason).
MAX_COMMENT_CHARS = 10_000
MAX_REASON_CHARS = 2_000


def _e(text: object) -> str:
    """Text for HTML (element content or a quoted attribute): controls shown as escapes,
    newlines and tabs kept (CSS shows them in answers), markup characters escaped."""
    return html.escape(printable(str(text), keep="\n\t"), quote=True)


def _e1(text: object) -> str:
    """One-line text (an id, a name): a newline in it is shown as `\\x0a`, not obeyed."""
    return html.escape(printable(str(text)), quote=True)


def _num(x: float) -> str:
    """A number for an input's value: 2.0 -> "2", 2.5 -> "2.5" (never 1e-07 or nan)."""
    return fmt_score(x)


def _q(value: str) -> str:
    """`value` for a URL's query string inside an href (quoted, then HTML-escaped)."""
    from urllib.parse import quote
    return _e1(quote(value, safe=""))


# ---------------------------------------------------------------- what the pages show

@dataclass(frozen=True)
class Context:
    """What every page needs: the assignment's name, the POST token, the script's nonce,
    and who is grading (recorded with each score)."""

    assignment: str
    token: str
    nonce: str
    grader: str


@dataclass(frozen=True)
class Student:
    student_id: str
    name: str
    submission: str  # the submission their grade comes from (a key of the gradebook)
    version: str = ""  # the notebook's hash: an override saved from this page is bound to it


@dataclass(frozen=True)
class Card:
    """One student's answer to one question, with its current score and earlier ones."""

    student: Student
    answer: "Answer | None"  # None: no answer was found in the notebook
    score: "ManualScore | None"
    history: tuple["ManualScore", ...] = ()

    @property
    def version(self) -> str:
        """The answer's hash as shown: a score saved from this card is bound to it."""
        from grader.classroom.decisions import text_sha256
        return self.answer.sha256 if self.answer is not None else text_sha256("")


@dataclass(frozen=True)
class QuestionSummary:
    question: "Question"
    answered: int
    scored: int
    stale: int
    students: int


@dataclass(frozen=True)
class StudentSummary:
    student: Student
    total: str  # the final grade so far, "13 / 29", or "not graded"
    written: str  # "4 / 10 (2 of 3 scored)" or ""
    overrides: int


# ---------------------------------------------------------------- the frame

_CSS = """
:root { --fg: #1f2328; --muted: #57606a; --line: #d0d7de; --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); margin: 0;
  line-height: 1.45; }
header.top { position: sticky; top: 0; background: #f6f8fa; border-bottom: 1px solid var(--line);
  padding: .5rem 1rem; display: flex; gap: 1rem; align-items: baseline; flex-wrap: wrap; z-index: 1; }
header.top .who { margin-left: auto; color: var(--muted); font-size: .9em; }
main { padding: 1rem; max-width: 110rem; }
h1 { font-size: 1.3rem; margin: .2rem 0 .6rem; }
h2 { font-size: 1.1rem; margin: 1.2rem 0 .4rem; }
a { color: #0969da; }
.muted { color: var(--muted); }
table.list { border-collapse: collapse; }
table.list th, table.list td { text-align: left; padding: .25rem .7rem; border-bottom: 1px solid #eaeef2;
  vertical-align: top; }
.prompt { white-space: pre-wrap; background: #f6f8fa; border-left: 4px solid var(--line); padding: .4rem .7rem; }
.rubric { margin: .3rem 0 .8rem; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(24rem, 1fr)); gap: .8rem; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: .6rem .7rem; display: flex;
  flex-direction: column; gap: .4rem; }
.card.scored { border-color: #8cc4a0; }
.card.stale, .test-row.stale { border-color: var(--warn); background: #fff8c5; }
.card .who { font-weight: 600; overflow-wrap: anywhere; }
.card .where { color: var(--muted); font-size: .85em; overflow-wrap: anywhere; }
.answer { white-space: pre-wrap; overflow-wrap: anywhere; font-family: ui-monospace, monospace;
  font-size: .9em; background: #f6f8fa; padding: .4rem .5rem; margin: 0; max-height: 24rem; overflow: auto; }
.missing { color: var(--muted); font-style: italic; }
.badge { display: inline-block; font-size: .8em; font-weight: 600; padding: 0 .4rem; border-radius: 3px; }
.badge.stale { background: var(--warn); color: #fff; }
.badge.void { background: var(--bad); color: #fff; }
form.grade { display: flex; flex-direction: column; gap: .3rem; }
form.grade .row { display: flex; gap: .4rem; align-items: center; flex-wrap: wrap; }
form.grade input[type=number] { width: 7rem; }
form.grade textarea { width: 100%; min-height: 3.2rem; font: inherit; }
form.grade input[type=text] { flex: 1; min-width: 12rem; font: inherit; }
form.grade.dirty { outline: 2px dashed #0969da; outline-offset: 3px; }
button.level { font-size: .85em; }
.status { font-size: .85em; min-height: 1.2em; }
.status[data-kind=ok] { color: var(--ok); }
.status[data-kind=warn] { color: var(--warn); }
.status[data-kind=error] { color: var(--bad); font-weight: 600; }
details.history { font-size: .85em; color: var(--muted); }
details.history li { white-space: pre-wrap; overflow-wrap: anywhere; }
.test-row { border-top: 1px solid var(--line); padding: .4rem 0; }
.test-row .title { font-weight: 600; overflow-wrap: anywhere; }
.feedback { border: 1px solid var(--line); border-radius: 6px; padding: .6rem .8rem; }
.attention { border-left: 4px solid var(--warn); background: #fff8c5; padding: .3rem .8rem; margin: .5rem 0; }
.attention li { white-space: pre-wrap; overflow-wrap: anywhere; }
body.hide-scored .card.scored:not(.stale) { display: none; }
"""

_SCRIPT = r"""
(function () {
  "use strict";
  const token = document.querySelector('meta[name="review-token"]').content;

  async function post(url, body) {
    let response;
    try {
      response = await fetch(url, {method: "POST", credentials: "same-origin", cache: "no-store",
        headers: {"Content-Type": "application/json", "X-Review-Token": token}, body: JSON.stringify(body)});
    } catch (err) {
      throw new Error("the review server cannot be reached (is grader review still running?)");
    }
    let data = null;
    try { data = await response.json(); } catch (err) { data = null; }
    if (!response.ok || !data) {
      const error = new Error((data && data.error) || ("the server answered HTTP " + response.status));
      error.reload = Boolean(data && data.reload);
      throw error;
    }
    return data;
  }

  function show(form, text, kind) {
    const status = form.querySelector(".status");
    status.textContent = text;
    status.dataset.kind = kind;
  }

  function number(text) {
    return text.trim() === "" ? null : Number(text);
  }

  document.querySelectorAll("form.grade").forEach(function (form) {
    form.addEventListener("input", function () { form.classList.add("dirty"); });
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      const body = {submission: form.dataset.submission, points: number(form.elements.points.value),
                    version: form.dataset.version};
      let url;
      if (form.dataset.kind === "score") {
        url = "api/score";
        body.question = form.dataset.question;
        body.comment = form.elements.comment.value;
      } else {
        url = "api/override";
        body.test = form.dataset.test;
        body.reason = form.elements.reason.value;
      }
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      show(form, "saving…", "busy");
      try {
        const data = await post(url, body);
        form.classList.remove("dirty");
        const holder = form.closest(".card, .test-row");
        if (holder) {
          holder.classList.remove("stale");
          holder.classList.add("scored");
          holder.querySelectorAll(".badge.stale, .badge.void").forEach(function (b) { b.remove(); });
        }
        show(form, data.warning ? data.message + " " + data.warning : data.message, data.warning ? "warn" : "ok");
      } catch (err) {
        show(form, "Not saved: " + err.message, "error");
        if (err.reload) {  // the work changed since this page was loaded: show the new version
          document.querySelectorAll("form.dirty").forEach(function (f) { f.classList.remove("dirty"); });
          document.body.dataset.reloading = "1";
          setTimeout(function () { window.location.reload(); }, 2500);
        }
      } finally {
        button.disabled = false;
      }
    });
  });

  document.querySelectorAll("button.level").forEach(function (button) {
    button.addEventListener("click", function () {
      const form = button.closest("form");
      form.elements.points.value = button.dataset.points;
      form.elements.comment.value = button.dataset.text;
      form.classList.add("dirty");
    });
  });

  const hide = document.getElementById("hide-scored");
  if (hide) {
    hide.addEventListener("change", function () { document.body.classList.toggle("hide-scored", hide.checked); });
  }

  window.addEventListener("beforeunload", function (event) {
    if (document.querySelector("form.dirty")) { event.preventDefault(); event.returnValue = ""; }
  });
})();
"""


def _frame(ctx: Context, title: str, body: str) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<meta name=\"review-token\" content=\"{_e1(ctx.token)}\">\n"
            "<link rel=\"icon\" href=\"data:,\">\n"
            f"<title>{_e1(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            f"<header class=\"top\"><a href=\"./\">{_e1(ctx.assignment or 'review')}</a>"
            + (f"<span class=\"who\">scores are recorded as {_e1(ctx.grader)}</span>" if ctx.grader else "")
            + "</header>\n"
            f"<main>\n{body}\n</main>\n"
            f"<script nonce=\"{_e1(ctx.nonce)}\">{_SCRIPT}</script>\n</body>\n</html>\n")


def message_page(ctx: Context, title: str, message: str) -> str:
    """An error or notice as a page: what happened and what to do."""
    return _frame(ctx, title, f"<h1>{_e1(title)}</h1><p>{_e(message)}</p><p><a href=\"./\">Back to the overview</a></p>")


# ---------------------------------------------------------------- the overview

def index_page(ctx: Context, questions: Sequence[QuestionSummary], students: Sequence[StudentSummary]) -> str:
    out = [f"<h1>Review: {_e1(ctx.assignment)}</h1>", "<h2>Written questions</h2>"]
    if not questions:
        out.append("<p class=\"muted\">This assignment has no written questions (<code>[[written]]</code> in its "
                   "spec). Autograded tests can still be overridden from each student's page below.</p>")
    else:
        out.append("<table class=\"list\"><thead><tr><th>Question</th><th>Points</th><th>Answered</th>"
                   "<th>Scored</th><th>To look at again</th></tr></thead><tbody>")
        for s in questions:
            q = s.question
            out.append(f"<tr><td><a href=\"question?q={_q(q.id)}\">{_e1(q.title or q.id)}</a></td>"
                       f"<td>{_num(q.points)}</td><td>{s.answered} of {s.students}</td>"
                       f"<td>{s.scored} of {s.students}</td><td>{s.stale or ''}</td></tr>")
        out.append("</tbody></table>")
    out.append("<h2>Students</h2>")
    if not students:
        out.append("<p class=\"muted\">No graded submissions in this results folder yet.</p>")
    else:
        out.append("<table class=\"list\"><thead><tr><th>Student</th><th>Name</th><th>Total</th>"
                   "<th>Written</th><th>Overrides</th></tr></thead><tbody>")
        for s in students:
            out.append(f"<tr><td><a href=\"student?s={_q(s.student.submission)}\">{_e1(s.student.student_id)}</a></td>"
                       f"<td>{_e1(s.student.name)}</td><td>{_e1(s.total)}</td><td>{_e1(s.written)}</td>"
                       f"<td>{s.overrides or ''}</td></tr>")
        out.append("</tbody></table>")
    return _frame(ctx, f"Review · {ctx.assignment}", "\n".join(out))


# ---------------------------------------------------------------- one question, every student

def _rubric_buttons(question: "Question") -> str:
    return "".join(f"<button type=\"button\" class=\"level\" data-points=\"{_num(level.points)}\" "
                   f"data-text=\"{_e(level.text)}\" title=\"{_e(level.text)}\">{_num(level.points)}: "
                   f"{_e1(_short(level.text))}</button>" for level in question.rubric)


def _short(text: str, limit: int = 40) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _answer_block(answer: "Answer | None") -> str:
    if answer is None:
        return "<p class=\"missing\">No answer found in this notebook.</p>"
    text = answer.text
    if not text.strip():
        return "<p class=\"missing\">The answer cell is empty.</p>"
    shown, more = text[:MAX_SHOWN_CHARS], len(text) - MAX_SHOWN_CHARS
    note = (f"<p class=\"muted\">… {more:,} more characters not shown (the whole answer is in the notebook"
            f"{f', cell {answer.cell}' if answer.cell else ''}).</p>") if more > 0 else ""
    return f"<pre class=\"answer\">{_e(shown)}</pre>{note}"


def _when(score) -> str:
    return f"{_num(score.points)} by {score.grader} at {score.at}"


def _history(entries: Sequence, line) -> str:
    if not entries:
        return ""
    items = "".join(f"<li>{_e(line(x))}</li>" for x in reversed(entries))
    return f"<details class=\"history\"><summary>history ({len(entries)})</summary><ol reversed>{items}</ol></details>"


def _score_line(s) -> str:
    return f"{_when(s)}" + (f": {s.comment}" if s.comment else "")


def _card(question: "Question", card: Card) -> str:
    st, score = card.student, card.score
    classes = "card" + (" scored" if score else "") + (" stale" if score and score.stale else "")
    cell = f" · cell {card.answer.cell}" if card.answer is not None and card.answer.cell else ""
    badge = ("<span class=\"badge stale\">answer changed since it was scored: look again</span>"
             if score and score.stale else "")
    saved = f"saved: {_when(score)}" if score else "not scored yet"
    return (f"<article class=\"{classes}\" data-submission=\"{_e1(st.submission)}\">"
            f"<div><span class=\"who\">{_e1(st.student_id)}</span>"
            f"{f' · {_e1(st.name)}' if st.name else ''} {badge}</div>"
            f"<div class=\"where\"><a href=\"student?s={_q(st.submission)}\">{_e1(st.submission)}</a>{cell}</div>"
            f"{_answer_block(card.answer)}"
            f"<form class=\"grade\" data-kind=\"score\" data-submission=\"{_e1(st.submission)}\" "
            f"data-question=\"{_e1(question.id)}\" data-version=\"{_e1(card.version)}\">"
            f"<div class=\"row\"><label>Points <input type=\"number\" name=\"points\" min=\"0\" "
            f"max=\"{_num(question.points)}\" step=\"any\" required value=\"{_num(score.points) if score else ''}\">"
            f"</label> / {_num(question.points)} {_rubric_buttons(question)}</div>"
            f"<textarea name=\"comment\" maxlength=\"{MAX_COMMENT_CHARS}\" aria-label=\"comment\" "
            # The newline after <textarea> is dropped by HTML parsers; one leading the comment is kept.
            f"placeholder=\"Comment for the student\">\n{_e(score.comment) if score else ''}</textarea>"
            f"<div class=\"row\"><button type=\"submit\">Save</button>"
            f"<span class=\"status\" role=\"status\" aria-live=\"polite\" data-kind=\"saved\">{_e1(saved)}</span>"
            f"</div></form>{_history(card.history[:-1], _score_line)}</article>")


def question_page(ctx: Context, question: "Question", cards: Sequence[Card]) -> str:
    scored = sum(1 for c in cards if c.score)
    out = [f"<h1>{_e1(question.title or question.id)} <span class=\"muted\">({_num(question.points)} points)</span></h1>"]
    if question.prompt.strip():
        out.append(f"<div class=\"prompt\">{_e(question.prompt.strip())}</div>")
    if question.rubric:
        out.append("<div class=\"rubric\"><strong>Rubric</strong><ul>" + "".join(
            f"<li>{_num(level.points)}: {_e(level.text)}</li>" for level in question.rubric) + "</ul></div>")
    out.append(f"<p class=\"muted\">{scored} of {len(cards)} scored. "
               "<label><input type=\"checkbox\" id=\"hide-scored\"> hide scored answers</label></p>")
    out.append("<div class=\"cards\">" + "".join(_card(question, c) for c in cards) + "</div>")
    return _frame(ctx, f"{question.title or question.id} · {ctx.assignment}", "\n".join(out))


# ---------------------------------------------------------------- one student

def _override_points(o) -> str:
    return "withdrawn (the autograder's score counts)" if o.points is None else _num(o.points)


def _override_line(o) -> str:
    note = "" if o.applies else " (the notebook changed since: no longer applied)"
    return f"{o.test}: {_override_points(o)} by {o.grader} at {o.at}{note}: {o.reason}"


def _test_row(submission: str, test, override: "Override | None", version: str = "") -> str:
    void = override is not None and not override.applies
    classes = "test-row" + (" stale" if void else "")
    now = ""
    if override is not None:
        state = ("<span class=\"badge void\">the notebook changed since this override: it no longer applies; "
                 "look again</span>" if void else "")
        now = (f"<div class=\"muted\">overridden: {_e1(_override_points(override))} by {_e1(override.grader)} at "
               f"{_e1(override.at)}: {_e(override.reason)} {state}</div>")
    return (f"<div class=\"{classes}\"><div class=\"title\">{_e1(test.title)} "
            f"<span class=\"muted\">{_e1(test.status.value)} · autograded "
            f"{_e1(fmt_score(test.score))} / {_e1(fmt_score(test.max_score))}</span></div>{now}"
            f"<form class=\"grade\" data-kind=\"override\" data-submission=\"{_e1(submission)}\" "
            f"data-test=\"{_e1(test.nodeid)}\" data-version=\"{_e1(version)}\"><div class=\"row\">"
            f"<label>Points <input type=\"number\" name=\"points\" min=\"0\" max=\"{_num(test.max_score)}\" "
            f"step=\"any\" placeholder=\"empty = undo\" title=\"empty: withdraw the override\"></label>"
            f"<input type=\"text\" name=\"reason\" required maxlength=\"{MAX_REASON_CHARS}\" "
            f"placeholder=\"Reason (kept in the history)\" aria-label=\"reason\">"
            f"<button type=\"submit\">Override</button></div>"
            f"<span class=\"status\" role=\"status\" aria-live=\"polite\"></span></form></div>")


def student_page(ctx: Context, student: Student, result: "SubmissionResult | None",
                 overrides: dict[str, "Override"], history: Sequence["Override"],
                 written: Sequence[tuple["Question", Card]], *, final: "FinalGrade | None" = None) -> str:
    """`result` as autograded (its tests get the override forms); `final`, when graded, is
    what the student receives (decisions and penalties folded in), shown as feedback."""
    out = [f"<h1>{_e1(student.student_id)}{f' · {_e1(student.name)}' if student.name else ''}</h1>",
           f"<p class=\"muted\">{_e1(student.submission)}"
           + (f" · notebook version <code>{_e1(student.version[:12])}</code>" if student.version else "")
           + "</p>"]
    if final is not None and final.attention:
        out.append("<div class=\"attention\"><strong>To look at</strong><ul>"
                   + "".join(f"<li>{_e(a)}</li>" for a in final.attention) + "</ul></div>")
    if written:
        out.append("<h2>Written answers</h2><table class=\"list\"><thead><tr><th>Question</th><th>Score</th>"
                   "<th>Comment</th><th>Scored before</th></tr></thead><tbody>")
        for question, card in written:
            s = card.score
            score = (f"{_num(s.points)} / {_num(question.points)}" + (" (answer changed since)" if s.stale else "")
                     if s else "not scored")
            out.append(f"<tr><td><a href=\"question?q={_q(question.id)}\">{_e1(question.title or question.id)}</a>"
                       f"</td><td>{_e1(score)}</td><td>{_e(_short(s.comment, 120)) if s else ''}</td>"
                       f"<td>{_history(card.history[:-1], _score_line)}</td></tr>")
        out.append("</tbody></table>")
    if result is None:
        out.append("<p class=\"missing\">No autograded result is stored for this submission.</p>")
    else:
        shown = final.result if final is not None else result
        out.append("<h2>Feedback</h2><p class=\"muted\">What the student receives (instructor view: hidden "
                   "tests in full), with the scores and overrides entered here.</p><div class=\"feedback\">"
                   + render_html_fragment(shown, audience="instructor") + "</div>")
        if result.tests:
            out.append("<h2>Overrides</h2><p class=\"muted\">An override replaces a test's autograded points "
                       "for this notebook; if the notebook changes, it stops applying until you look again.</p>")
            out += [_test_row(student.submission, t, overrides.get(t.nodeid), student.version) for t in result.tests]
    out.append("<h2>Override history</h2>")
    if history:
        out.append("<ol class=\"muted\">" + "".join(f"<li>{_e(_override_line(o))}</li>" for o in history) + "</ol>")
    else:
        out.append("<p class=\"muted\">No overrides for this student.</p>")
    return _frame(ctx, f"{student.student_id} · {ctx.assignment}", "\n".join(out))
