"""Written answers: questions a person grades, declared in the spec.

Code can be checked by tests; the *why* (why BatchNormalization goes right after Conv2D,
whether inputs should be standardized too) needs a reader. A question lives in the spec as

    [[written]]
    id = "why_bn_after_conv"          # the answer cell's tag in the notebook: written:why_bn_after_conv
    title = "Why BatchNormalization right after Conv2D?"
    points = 3
    rubric = [
      { points = 3, text = "Each layer's input distribution stays stable; ..." },
      { points = 0, text = "No reason given." },
    ]

The student's answer is extracted as text and never executed; an instructor scores it
(`grader review`) and the score joins the autograded ones in every output.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

ANSWER_TAG_PREFIX = "written:"
_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]{0,63}")
QUESTION_KEYS = ("id", "title", "points", "prompt", "rubric")


@dataclass(frozen=True)
class RubricLevel:
    points: float
    text: str


@dataclass(frozen=True)
class Question:
    id: str
    title: str
    points: float
    prompt: str = ""  # shown beside the answers; "" when the notebook's own question cell says it
    rubric: tuple[RubricLevel, ...] = ()

    @property
    def tag(self) -> str:
        """The cell tag marking the answer cell in the master, template and submissions."""
        return ANSWER_TAG_PREFIX + self.id

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "points": self.points, "prompt": self.prompt,
                "rubric": [{"points": r.points, "text": r.text} for r in self.rubric]}


def question_from_dict(d: dict[str, Any]) -> Question:
    """For questions read back from our own gradebook (already validated at load)."""
    return Question(id=str(d["id"]), title=str(d.get("title", d["id"])), points=float(d["points"]),
                    prompt=str(d.get("prompt", "")),
                    rubric=tuple(RubricLevel(float(r["points"]), str(r["text"])) for r in d.get("rubric", [])))


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def written_problems(value) -> list[str]:
    """What is wrong with the spec's `written` key, as messages an instructor can act on."""
    if not isinstance(value, list) or not all(isinstance(q, dict) for q in value):
        return ["`written` must be a list of tables: [[written]] on a line of its own, then id, title, points"]
    problems, seen = [], set()
    for n, q in enumerate(value, start=1):
        where = f"[[written]] number {n}"
        unknown = [k for k in q if k not in QUESTION_KEYS]
        if unknown:
            problems.append(f"{where}: unknown key `{unknown[0]}` (valid: {', '.join(QUESTION_KEYS)})")
        qid = q.get("id")
        if not isinstance(qid, str) or not _ID.fullmatch(qid):
            problems.append(f"{where}: `id` must be a short name of letters, digits, _ or - "
                            f"(it becomes the answer cell's tag written:ID), not {qid!r}")
        elif qid in seen:
            problems.append(f"{where}: id {qid!r} is used twice")
        else:
            seen.add(qid)
            where = f"[[written]] {qid!r}"
        points = q.get("points")
        if not _is_number(points) or points <= 0:
            problems.append(f"{where}: `points` must be a number more than 0, not {points!r}")
        for key in ("title", "prompt"):
            if key in q and not isinstance(q[key], str):
                problems.append(f"{where}: `{key}` must be a string in quotes")
        rubric = q.get("rubric", [])
        if not isinstance(rubric, list) or not all(isinstance(r, dict) for r in rubric):
            problems.append(f"{where}: `rubric` must be a list of {{ points = N, text = \"...\" }}")
            continue
        for r in rubric:
            rp = r.get("points")
            if not _is_number(rp) or rp < 0 or (_is_number(points) and rp > points):
                problems.append(f"{where}: a rubric level's points must be between 0 and {points}, not {rp!r}")
            if not isinstance(r.get("text"), str) or not r.get("text", "").strip():
                problems.append(f"{where}: each rubric level needs a `text` saying what earns it")
    return problems


def questions_from_spec(value) -> tuple[Question, ...]:
    """The spec's questions (call after `written_problems` found none)."""
    return tuple(
        Question(id=q["id"], title=str(q.get("title", q["id"])), points=float(q["points"]),
                 prompt=str(q.get("prompt", "")),
                 rubric=tuple(sorted((RubricLevel(float(r["points"]), r["text"].strip()) for r in q.get("rubric", [])),
                                     key=lambda r: -r.points)))
        for q in value or ())
