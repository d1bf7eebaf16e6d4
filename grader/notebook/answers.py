"""Find each written answer in a student's notebook, as text: never executed, never rendered.

An assignment's `[[written]]` questions (grader.assignment.written) are answered in a cell tagged
`written:ID`. Students break tags as often as they break exercise tags: they delete the
tag, merge the answer into the question cell, split it in two, or retype the whole
notebook into a new one. So an answer is looked for in two ways:

1. by its tag (any case, spaces ignored), plus the untagged text cells the student added
   right after it (a split answer);
2. failing that, by its question: the heading of the question cell in the template (or
   the question's title), then the text cells right after it, up to the next heading,
   code cell, or cell the template itself holds. This answer comes with a warning, so the
   student and the instructor know it was found without its tag.

The template's placeholder ("YOUR ANSWER HERE") and the question's own text are taken
out; an answer that is only those is empty. Control and bidirectional-override characters
are dropped, HTML stays as the characters the student typed (the review page escapes it),
and a code or raw cell is read as text like any other.

Work is linear in the notebook's size whatever its shape: each cell is scanned once per
question (questions come from the instructor's spec, a handful), and only a bounded
prefix of each cell (`SCAN_CHARS` for headings, the answer cap for text) is ever looked at.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from grader.notebook.cellnames import cell_names
from grader.assignment.written import ANSWER_TAG_PREFIX, Question

# What the gradebook keeps of one answer (grader.classroom.gradebook.MAX_ANSWER_CHARS);
# longer answers are cut here, with a note, rather than silently there.
MAX_ANSWER_CHARS = 20_000
TRUNCATED = "\n\n… (truncated: the answer is longer than the grader keeps)"
# Characters of a cell searched for headings: a question's heading is at its cell's top.
SCAN_CHARS = 64 * 1024
# Tags of one cell read, and the longest tag considered: real cells carry a few short ones.
MAX_TAGS = 64
MAX_TAG_CHARS = 200
PLACEHOLDER = "YOUR ANSWER HERE"

TAG, HEADING = "tag", "heading"

# No lazy group before an optional tail here: `(.+?)[ \t#]*$` backtracks quadratically on
# a line of many spaces. The closing hashes are stripped in Python instead.
_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.*)$", re.MULTILINE)
_NOT_WORD = re.compile(r"[\W_]+")
# C0/C1 controls except tab and newline, and the bidirectional overrides that make text
# display in another order than it reads ("Trojan Source").
_INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class ExtractedAnswer:
    """One question's answer as found in a notebook."""

    question: str
    text: str  # "" when the answer cell holds only the placeholder or the question
    cell: int  # 1-based number of the first cell the answer was taken from
    how: str  # TAG or HEADING
    warning: str = ""  # for the student and the instructor: found without its tag, cut short
    truncated: bool = False

    def to_reply(self) -> dict[str, Any]:
        """What the grading process sends to the gradebook (`Graded.answers`)."""
        return {"text": self.text, "cell": self.cell}


@dataclass(frozen=True)
class Landmark:
    """What the template shows around one question, to find its answer without a tag."""

    question: Question
    headings: tuple[str, ...]  # keys (see `_key`) of headings that introduce the question
    title_key: str  # the title's key, looked for inside headings when none matches exactly
    question_lines: frozenset[str]  # the template question cell's lines, squeezed
    placeholders: frozenset[str]  # squeezed lines that are the template's placeholder


@dataclass(frozen=True)
class AnswerGuide:
    """Landmarks for every question, and the text cells the template already holds (so a
    given cell after an answer is never mistaken for part of it)."""

    landmarks: tuple[Landmark, ...]
    given: frozenset[str]
    longest_given: int


# ---------------------------------------------------------------- small pure helpers

def _key(text: str) -> str:
    """Letters and digits only, lower case, single spaces: how headings are compared."""
    return " ".join(_NOT_WORD.sub(" ", text.casefold()).split())


def _squeeze(text: str) -> str:
    """A line or cell compared loosely: emphasis, quotes and spacing ignored, any case."""
    return " ".join(text.replace("*", " ").replace("_", " ").replace(">", " ").casefold().split())


def _prefix(source: Any, limit: int) -> tuple[str, bool]:
    """At most `limit` characters of a cell's source (a string or a list of lines), with
    line endings made `\\n`, and whether anything was left out. Never reads past `limit`."""
    if isinstance(source, str):
        text, more = source[:limit], len(source) > limit
    elif isinstance(source, list):
        parts, size, more = [], 0, False
        for piece in source:
            if not isinstance(piece, str):
                continue
            if size + len(piece) > limit:
                parts.append(piece[: limit - size])
                more = True
                break
            parts.append(piece)
            size += len(piece)
        text = "".join(parts)
    else:
        text, more = "", False
    return text.replace("\r\n", "\n").replace("\r", "\n"), more


def _clean(text: str) -> str:
    return _INVISIBLE.sub("", text)


def normalized_tag(tag: Any) -> str:
    """`Written: Why_BN` and `written:why_bn` are the same tag; "" for anything not a tag."""
    if not isinstance(tag, str) or len(tag) > MAX_TAG_CHARS:
        return ""
    return "".join(tag.split()).casefold()


def _tags(cell: Any) -> set[str]:
    metadata = cell.get("metadata") if isinstance(cell, Mapping) else None
    tags = metadata.get("tags") if isinstance(metadata, Mapping) else None
    if isinstance(tags, str):
        tags = [tags]
    if not isinstance(tags, list):
        return set()
    return {t for t in map(normalized_tag, tags[:MAX_TAGS]) if t.startswith(ANSWER_TAG_PREFIX)}


def answer_tags(cell: Any) -> set[str]:
    """The question ids a cell is tagged as answering (`written:ID`, any case, spaces ignored)."""
    return {t[len(ANSWER_TAG_PREFIX):] for t in _tags(cell)}


def _kind(cell: Any) -> str:
    return cell.get("cell_type", "") if isinstance(cell, Mapping) else ""


def _source(cell: Any) -> Any:
    return cell.get("source", "") if isinstance(cell, Mapping) else ""


def _headings(cell: Any) -> list[str]:
    if _kind(cell) != "markdown":
        return []
    text, _ = _prefix(_source(cell), SCAN_CHARS)
    return [key for key in (_key(m.group(1)) for m in _HEADING.finditer(text)) if key]


# ---------------------------------------------------------------- the guide, from the template

def answer_guide(questions: Sequence[Question], template: Any = None) -> AnswerGuide:
    """Landmarks for `questions`, from the template students received when there is one
    (the trusted notebook `grader assign` made), else from the spec alone (titles, and
    the first heading of each prompt)."""
    cells = list(template.get("cells", [])) if isinstance(template, Mapping) else []
    where: dict[str, int] = {}
    for index, cell in enumerate(cells):
        for qid in answer_tags(cell):
            where.setdefault(qid.casefold(), index)
    answer_cells = set(where.values())
    given = {_squeeze(_prefix(_source(c), SCAN_CHARS)[0]) for i, c in enumerate(cells)
             if i not in answer_cells and _kind(c) in ("markdown", "raw")}
    given.discard("")
    marks = []
    for q in questions:
        headings = [key for key in (_key(m.group(1)) for m in _HEADING.finditer(q.prompt)) if key][:1]
        lines: set[str] = set()
        placeholders = {_squeeze(PLACEHOLDER)}
        at = where.get(q.id.casefold())
        if at is not None:
            blank = _prefix(_source(cells[at]), SCAN_CHARS)[0]
            placeholders |= {_squeeze(line) for line in blank.split("\n")}
            if at > 0 and _kind(cells[at - 1]) == "markdown":
                headings += _headings(cells[at - 1])
                question_text = _prefix(_source(cells[at - 1]), SCAN_CHARS)[0]
                lines = {_squeeze(line) for line in question_text.split("\n")}
        placeholders.discard("")
        lines.discard("")
        marks.append(Landmark(q, tuple(dict.fromkeys(h for h in headings if h)), _key(q.title),
                              frozenset(lines), frozenset(placeholders)))
    return AnswerGuide(tuple(marks), frozenset(given), max(map(len, given), default=0))


# ---------------------------------------------------------------- extraction

@dataclass
class _Text:
    """An answer being assembled, within its character budget."""

    parts: list[str]
    size: int = 0
    truncated: bool = False
    first: int | None = None  # index of the first cell that gave text

    def add(self, index: int, raw: Any, mark: Landmark, *, drop_question: bool, drop_headings: bool = False) -> None:
        """Append a cell's text, without the placeholder's lines (and, in a cell the question
        may have been merged into, the question's own lines and headings)."""
        room = MAX_ANSWER_CHARS - self.size
        if room <= 0:
            self.truncated = self.truncated or bool(_prefix(raw, 4096)[0].strip())
            return
        # Read a little past the room: lines taken out below may free some of it.
        text, more = _prefix(raw, room + 4096)
        kept = []
        for line in text.split("\n"):
            squeezed = _squeeze(line)
            if squeezed in mark.placeholders or (drop_question and squeezed in mark.question_lines):
                continue
            if drop_headings and _HEADING.match(line):
                continue
            kept.append(line)
        part = _clean("\n".join(kept)).strip("\n")
        if not part.strip():
            self.truncated = self.truncated or more
            return
        if len(part) > room or more:
            part, self.truncated = part[:room], True
        self.parts.append(part)
        self.size += len(part) + 2
        self.first = index if self.first is None else self.first

    def text(self) -> str:
        joined = "\n\n".join(self.parts).strip()
        return joined + TRUNCATED if self.truncated and joined else joined


def _is_given(cell: Any, guide: AnswerGuide) -> bool:
    """Whether a text cell is one the template holds (a student's answer never is)."""
    if not guide.given:
        return False
    text, more = _prefix(_source(cell), 2 * guide.longest_given + 64)
    return not more and _squeeze(text) in guide.given


def _continues(cell: Any, guide: AnswerGuide) -> bool:
    """Whether a cell after an answer's first cell is more of the same answer: a text cell
    with no heading, no answer tag, and not one the template holds."""
    return (_kind(cell) in ("markdown", "raw") and not _headings(cell) and not _tags(cell)
            and not _is_given(cell, guide))


def _by_tag(cells: list[Any], tagged: list[int], mark: Landmark, guide: AnswerGuide) -> ExtractedAnswer:
    """The tagged cells, in order, then (when the template tells given cells apart) the
    untagged text cells the student added below the last one: a split answer."""
    text = _Text([])
    for index in tagged:
        text.add(index, _source(cells[index]), mark, drop_question=True)
    at = tagged[-1] + 1
    while guide.given and at < len(cells) and _continues(cells[at], guide):
        text.add(at, _source(cells[at]), mark, drop_question=False)
        at += 1
    return _answer(mark, text, tagged[0], TAG, "")


def _below_question(cells: list[Any], index: int, mark: Landmark, guide: AnswerGuide) -> _Text:
    """The answer under the question cell at `index`: what the student merged into that
    cell (its lines that are not the question's), then the text cells below it."""
    text = _Text([])
    if mark.question_lines:  # without the template, a question cell cannot be told from an answer
        text.add(index, _source(cells[index]), mark, drop_question=True, drop_headings=True)
    at = index + 1
    while at < len(cells) and _continues(cells[at], guide):
        text.add(at, _source(cells[at]), mark, drop_question=False)
        at += 1
    return text


def _by_heading(cells: list[Any], heads: list[int], mark: Landmark, guide: AnswerGuide) -> ExtractedAnswer | None:
    """The answer below the last question cell with a non-empty one below it (students who
    copied the question answer below the copy)."""
    chosen = None
    for index in reversed(heads):  # each walk stops at the next heading: linear in all
        chosen = _answer(mark, _below_question(cells, index, mark, guide), index, HEADING, "")
        if chosen.text:
            break
    if chosen is None or not chosen.text:
        return None  # the question is there, nothing below it: no answer cell found
    where = cell_names(cells)[chosen.cell - 1] if 0 < chosen.cell <= len(cells) else f"cell {chosen.cell}"
    warning = (f"Written answer '{mark.question.title}': taken from {where} onwards, below its "
               f"question, because no cell is tagged `{mark.question.tag}` (the tag was deleted, or the cells "
               f"were merged, split or copied into a new notebook). Check that it is your whole answer, and "
               f"put the tag back on the answer cell (in Jupyter: View > Cell Toolbar > Tags).")
    return ExtractedAnswer(chosen.question, chosen.text, chosen.cell, HEADING,
                           f"{warning} {chosen.warning}".strip(), chosen.truncated)


def _answer(mark: Landmark, text: _Text, index: int, how: str, warning: str) -> ExtractedAnswer:
    body = text.text()
    truncated = text.truncated and bool(body)
    if truncated:
        warning = (f"{warning} Written answer '{mark.question.title}' is longer than the "
                   f"{MAX_ANSWER_CHARS:,} characters the grader keeps; only its beginning will be read.").strip()
    first = index if text.first is None else text.first
    return ExtractedAnswer(mark.question.id, body, first + 1, how, warning, truncated)


def _question_cells(cells: list[Any], marks: Sequence[Landmark]) -> dict[str, list[int]]:
    """Question id -> indices of markdown cells with a heading that introduces it: one of
    the template's headings exactly, else (when none matches) one containing the title."""
    exact: dict[str, list[int]] = {m.question.id: [] for m in marks}
    loose: dict[str, list[int]] = {m.question.id: [] for m in marks}
    for index, cell in enumerate(cells):
        heads = _headings(cell)
        if not heads:
            continue
        for mark in marks:
            if any(h in mark.headings for h in heads):
                exact[mark.question.id].append(index)
            elif len(mark.title_key) >= 8 and any(mark.title_key in h for h in heads):
                loose[mark.question.id].append(index)
    return {qid: exact[qid] or loose[qid] for qid in exact}


def extract_answers(notebook: Any, questions: Sequence[Question], *, template: Any = None,
                    guide: AnswerGuide | None = None) -> dict[str, ExtractedAnswer]:
    """Each question's answer in `notebook` (a loaded v4 notebook, read as data), by tag or
    else below its question; a question whose answer cell cannot be found is left out.

    `template` (the notebook students received) or a `guide` made from it once for a whole
    batch teaches the fallback what the question cell and the placeholder look like."""
    if not questions:
        return {}
    if guide is None:
        guide = answer_guide(questions, template)
    cells = notebook.get("cells") if isinstance(notebook, Mapping) else None
    cells = cells if isinstance(cells, list) else []
    wanted = {m.question.id.casefold(): m for m in guide.landmarks}
    tagged: dict[str, list[int]] = {m.question.id: [] for m in guide.landmarks}
    tagged_anywhere: set[int] = set()
    for index, cell in enumerate(cells):
        for qid in answer_tags(cell):
            tagged_anywhere.add(index)
            mark = wanted.get(qid)
            if mark is not None:
                tagged[mark.question.id].append(index)
    found: dict[str, ExtractedAnswer] = {}
    heads: dict[str, list[int]] | None = None
    for mark in guide.landmarks:
        qid = mark.question.id
        if tagged[qid]:
            found[qid] = _by_tag(cells, tagged[qid], mark, guide)
            continue
        if heads is None:  # one pass over the cells, at the first question without its tag
            heads = _question_cells(cells, guide.landmarks)
        answer = _by_heading(cells, [i for i in heads[qid] if i not in tagged_anywhere], mark, guide)
        if answer is not None:
            found[qid] = answer
    return found


def answers_reply(found: Mapping[str, ExtractedAnswer]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The answers as the grading process replies them, and the warnings for the result."""
    return ({qid: a.to_reply() for qid, a in found.items()},
            [a.warning for a in found.values() if a.warning])


__all__ = ["HEADING", "MAX_ANSWER_CHARS", "PLACEHOLDER", "TAG", "AnswerGuide", "ExtractedAnswer", "Landmark",
           "answer_guide", "answer_tags", "answers_reply", "extract_answers", "normalized_tag"]
