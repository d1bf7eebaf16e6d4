"""`check("happyModel")` inside a student's notebook: the instructor's grading, on demand.

It grades the SAVED notebook (the same file the instructor will collect) with the same
tests, sandbox and renderer as `grader grade`, running only the visible tests of the
exercise asked for, and says plainly that hidden tests also count.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from grader.results import SubmissionResult


class SelfCheckError(Exception):
    pass


def _find_notebook(exercise: str, notebook: str | None) -> Path:
    for candidate in (notebook, os.environ.get("GRADER_NOTEBOOK"), os.environ.get("JPY_SESSION_NAME")):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    found = [p for p in sorted(Path.cwd().glob("*.ipynb"))
             if f"def {exercise}(" in p.read_text(encoding="utf-8", errors="replace")]
    if len(found) == 1:
        return found[0]
    raise SelfCheckError(
        f"could not tell which notebook to check ({len(found)} notebooks here define `{exercise}`); "
        f"call check({exercise!r}, notebook='your_notebook.ipynb')")


def _find_assignment(nb_path: Path, exercise: str, assignment: str | None) -> str:
    if assignment:
        return assignment
    try:
        meta = json.loads(nb_path.read_text(encoding="utf-8")).get("metadata", {}).get("grader", {})
        if isinstance(meta, dict) and meta.get("assignment"):
            return str(meta["assignment"])
    except (OSError, ValueError):
        pass
    from grader.assignment import ASSIGNMENTS_DIR, load_assignment
    matches = []
    for spec in sorted(ASSIGNMENTS_DIR.glob("*/assignment.toml")):
        if exercise in load_assignment(spec.parent).exercises:
            matches.append(spec.parent.name)
    if len(matches) == 1:
        return matches[0]
    raise SelfCheckError(f"could not tell which assignment `{exercise}` belongs to; "
                         f"call check({exercise!r}, assignment='NAME')")


def _in_jupyter() -> bool:
    try:
        from IPython import get_ipython
        shell = get_ipython()
        return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"
    except ImportError:
        return False


def check(exercise: str, *, notebook: str | None = None, assignment: str | None = None,
          sandbox: str = "auto", show: bool = True) -> SubmissionResult | None:
    """Grade `exercise` in the saved notebook and show the feedback (`show=False`: return it).

    When the feedback is shown nothing is returned: `check(...)` is usually the last line of
    a cell, and Jupyter would print the returned object's long repr under the feedback.
    """
    if os.environ.get("GRADER_SELF_CHECK", "").lower() in ("off", "0", "false", "no"):
        print(f"[grader] self-check of `{exercise}` skipped (GRADER_SELF_CHECK=off)")
        return None
    from grader.assignment import load_assignment
    from grader.grading import grade_submission
    from grader.render import render_html_fragment, render_text
    from grader.sandbox.client import Worker

    nb_path = _find_notebook(exercise, notebook)
    spec = load_assignment(_find_assignment(nb_path, exercise, assignment))
    if exercise not in spec.exercises:
        raise SelfCheckError(f"`{exercise}` is not an exercise of {spec.name}: {', '.join(spec.exercises)}")
    with Worker(keras=spec.keras, isolation=sandbox) as worker:
        result = grade_submission(nb_path, spec, worker, include_hidden=False,
                                  only_exercises=frozenset({exercise}))
    result.warnings.insert(0, f"checked the saved file {nb_path.name}: save the notebook first to check your "
                              f"latest code")
    if not show:
        return result
    if _in_jupyter():
        from IPython.display import HTML, display
        display(HTML(render_html_fragment(result, audience="student")))
    else:
        print(render_text(result, audience="student"))
    return None
