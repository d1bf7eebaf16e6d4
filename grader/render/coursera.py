"""Coursera's custom-grader feedback: `{"fractionalScore": 0..1, "feedback": "..."}`.

Coursera shows `feedback` as plain text to the learner, so it is the student-audience
terminal rendering without colour. A programming assignment there has parts, each graded
separately (part id in the `partId` environment variable); a notebook covering several
parts is scored per part from the tests of that part's exercises.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from grader.results import SubmissionResult

from grader.render import _common as c
from grader.render.text import render_text

FEEDBACK_MAX_BYTES = 100_000


def _cap(text: str, limit: int) -> str:
    """Cut on a line boundary, never inside a UTF-8 sequence, and say that it was cut."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    note = "\n[feedback truncated: {} more bytes not shown]\n"
    room = limit - len(note.format(len(data))) - 8
    head = data[:max(0, room)].decode("utf-8", errors="ignore")
    if "\n" in head:
        head = head[:head.rindex("\n")]
    return head + note.format(len(data) - len(head.encode("utf-8")))


def _part(result: SubmissionResult, part_id: str,
          parts: dict[str, list[str]] | None) -> tuple[SubmissionResult | None, str]:
    """The result restricted to one part's tests, or None and the reason it cannot be."""
    exercises = {t.exercise for t in result.tests}
    if parts is None:
        # Without a mapping a notebook with a single exercise is that part, and otherwise
        # the part id is taken to name the exercise.
        if len(exercises) <= 1:
            return result, ""
        parts = {e: [e] for e in exercises}
    if part_id not in parts:
        known = ", ".join(sorted(parts)) or "none"
        return None, (f"This grader does not know part {part_id!r} (known parts: {known}). "
                      "This is a problem with the assignment's configuration, not with your "
                      "notebook; please report it to the course staff.")
    wanted = set(parts[part_id])
    return dataclasses.replace(result, tests=[t for t in result.tests if t.exercise in wanted]), ""


def to_coursera(result: SubmissionResult, *, part_id: str | None = None,
                parts: dict[str, list[str]] | None = None,
                max_bytes: int = FEEDBACK_MAX_BYTES) -> dict[str, Any]:
    """Coursera's feedback object for one submission (or one part of it).

    `fractionalScore` is score / max over all tests of the part, hidden ones included
    (it is the grade), and 0 when nothing could be graded or nothing was worth points.
    """
    scored = result
    if part_id is not None:
        part, problem = _part(result, part_id, parts)
        if part is None:
            return {"fractionalScore": 0.0, "feedback": _cap(problem + "\n", max_bytes)}
        scored = part
    fraction = 0.0
    if not scored.errors and scored.max_score > 0:
        fraction = min(1.0, max(0.0, scored.score / scored.max_score))
    feedback = render_text(scored, color=False, audience=c.STUDENT)
    if part_id is not None and not scored.tests and not scored.errors:
        feedback += f"No tests belong to part {part_id!r}.\n"
    return {"fractionalScore": fraction, "feedback": _cap(feedback, max_bytes)}


def write_coursera(result: SubmissionResult, path: str | Path = "/shared/feedback.json",
                   **kwargs: Any) -> Path:
    """Write the feedback file Coursera reads (v2 graders: /shared/feedback.json)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_coursera(result, **kwargs), ensure_ascii=True), encoding="utf-8")
    return path
