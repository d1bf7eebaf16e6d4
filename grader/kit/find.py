"""Which notebook and which assignment a student's check is about, or what to do instead.

A student calling `check()` or `grader check` makes the mistakes anyone makes at night: a
misspelled exercise (`happymodel`), a notebook moved out of its kit folder, a path that
does not exist, no argument at all. Each must come back as one or two lines saying what
to do, never as a traceback into the grader: this module turns every such case into a
`SelfCheckError` whose text is written for the student, and the callers print it.
"""
from __future__ import annotations

import difflib
import json
import os
from pathlib import Path

KIT_FOLDER = "selfcheck"


class SelfCheckError(Exception):
    """A student's mistake in calling a check: the message says what to do."""


def did_you_mean(word: str, choices) -> str:
    """`happyModel` for `happymodel`: same letters in another case first, then the closest."""
    choices = list(choices)
    same = [c for c in choices if c.casefold() == word.casefold()]
    if same:
        return same[0]
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return close[0] if close else ""


def unknown_exercise(exercise: str, assignment: str, exercises) -> SelfCheckError:
    guess = did_you_mean(exercise, exercises)
    if guess:
        return SelfCheckError(f"`{exercise}` is not an exercise of {assignment}: did you mean "
                              f"check({guess!r})?")
    return SelfCheckError(f"`{exercise}` is not an exercise of {assignment}; its exercises are "
                          f"{', '.join(exercises)} (or call check() to check them all)")


def notebook_assignment(nb_path: Path | None) -> str:
    """The assignment the notebook names in its metadata (`grader.assignment.spec`), or ""."""
    if nb_path is None:
        return ""
    try:
        meta = json.loads(nb_path.read_text(encoding="utf-8")).get("metadata", {}).get("grader", {})
    except (OSError, ValueError, AttributeError):
        return ""
    return str(meta["assignment"]) if isinstance(meta, dict) and isinstance(meta.get("assignment"), str) else ""


def not_in_kit(name: str, where: Path) -> SelfCheckError:
    return SelfCheckError(
        f"this notebook is not next to its kit's {KIT_FOLDER}/ folder (looked in {where}): move it back into "
        f"the kit folder, or give assignment='path/to/{KIT_FOLDER}/{name or 'NAME'}'")


def find_notebook(exercise: str | None, notebook: str | None) -> Path | None:
    """The notebook to check: the one named, the kernel's own (Jupyter says which), else the
    only candidate in the working folder. None when there is none (a plain script)."""
    if notebook:
        path = Path(notebook)
        if path.is_file():
            return path
        raise SelfCheckError(f"{notebook}: no such notebook; give the path of your .ipynb file "
                             f"(it is in the folder Jupyter shows, next to {KIT_FOLDER}/)")
    for candidate in (os.environ.get("GRADER_NOTEBOOK"), os.environ.get("JPY_SESSION_NAME")):
        if candidate and candidate.endswith(".ipynb") and Path(candidate).is_file():
            return Path(candidate)
    here = [p for p in sorted(Path.cwd().glob("*.ipynb")) if not p.name.startswith(".")]
    found = []
    if exercise is not None:
        found = [p for p in here if f"def {exercise}(" in p.read_text(encoding="utf-8", errors="replace")]
    if not found:  # no exercise named, or a name no notebook defines (the assignment then says "did you mean")
        found = [p for p in here if notebook_assignment(p)] or here
    if len(found) == 1:
        return found[0]
    if not found:
        return None
    named = f"{exercise!r}, " if exercise else ""
    raise SelfCheckError(f"{len(found)} notebooks here could be the one to check ({', '.join(p.name for p in found)}); "
                         f"say which: check({named}notebook='your_notebook.ipynb')")


def find_assignment(nb_path: Path | None, exercise: str | None, assignment: str | None):
    """The assignment to check against: the one named (by the caller or the notebook's
    metadata), else the kit next to the notebook, else the only known one holding the
    exercise. Every failure says what to do."""
    from grader.assignment.spec import AssignmentError, known_assignments, load_assignment

    near = nb_path.parent if nb_path is not None else Path.cwd()
    named = assignment or notebook_assignment(nb_path)
    if named:
        try:
            return load_assignment(named, near=near)
        except AssignmentError as exc:
            if assignment and (Path(assignment) / "assignment.toml").is_file():
                raise SelfCheckError(f"the assignment in {assignment} cannot be read: {exc}") from None
            raise not_in_kit(Path(named).name, near.resolve() / KIT_FOLDER) from None
    specs = []
    for root in known_assignments(near):
        try:
            specs.append(load_assignment(root))
        except Exception:  # noqa: BLE001 - someone else's broken spec must not stop this check
            continue
    if not specs:
        raise not_in_kit("", near.resolve() / KIT_FOLDER)
    kit = (near / KIT_FOLDER).resolve()
    in_kit = [s for s in specs if s.root.parent == kit]
    holding = [s for s in specs if exercise is None or exercise in s.exercises]
    kit_holding = [s for s in holding if s.root.parent == kit]
    if kit_holding:
        return kit_holding[0]  # the kit next to the notebook wins
    if len(holding) == 1:
        return holding[0]
    if exercise is not None and not holding:
        pool = in_kit or specs
        every = [e for s in pool for e in s.exercises]
        raise unknown_exercise(exercise, pool[0].name if len(pool) == 1 else "any assignment found", every)
    raise SelfCheckError(f"{len(holding)} assignments here could be meant ({', '.join(s.name for s in holding)}); "
                         f"say which: check({(exercise + ', ') if exercise else ''}assignment='NAME')")
