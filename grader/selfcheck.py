"""`check("happyModel")` inside a student's notebook: the instructor's grading, on demand.

It runs the visible tests of the exercise asked for, with the same tests, sandbox level and
renderer as `grader grade`, and says plainly that hidden tests also count. Two things make
it something a student can trust while they work:

* In a Jupyter kernel it grades what the student RAN: the latest executed version of each
  graded function, taken from the kernel's input history, in place of that cell of the
  saved notebook (whose other cells are kept). A cell edited and run but not saved is what
  gets checked; outside a kernel the saved file is. The feedback says which.
* One sandbox worker per kernel and Keras flavour stays warm between checks. The first
  check launches it before doing its own preparation, so TensorFlow's import in the worker
  overlaps ours; later checks reuse it. It is stopped at exit, and dies with the kernel
  even on SIGKILL (the worker exits when its control socket closes).

The assignment is found next to the notebook (a student kit's `selfcheck/` folder), then
through GRADER_ASSIGNMENTS, then in the repository (see `grader.assignment.search_folders`).
"""
from __future__ import annotations

import ast
import atexit
import json
import os
import sys
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from grader.results import SubmissionResult


class SelfCheckError(Exception):
    pass


# ---------------------------------------------------------------- the warm worker

_WORKERS: dict[tuple[str, str, tuple[str, ...]], object] = {}
_LOCK = threading.Lock()
STATS = {"workers_started": 0, "checks": 0}


def _launch(keras: str, isolation: str, preload: tuple[str, ...] = ()):
    """This kernel's worker for (keras, isolation, preload): reused when alive, else launched
    now without waiting for it (`_ready` waits, after the caller's own preparation)."""
    from grader.sandbox.client import Worker

    key = (keras, isolation, tuple(preload))
    with _LOCK:
        worker = _WORKERS.get(key)
        if worker is not None and worker.alive():
            return worker
        if worker is not None:
            worker.stop(grace=0.5)
        worker = Worker(keras=keras, isolation=isolation, preload=preload).launch()
        STATS["workers_started"] += 1
        _WORKERS[key] = worker
        return worker


def _ready(worker):
    if not worker.info:
        try:
            worker.wait_ready()
        except Exception:
            with _LOCK:
                for key, known in list(_WORKERS.items()):
                    if known is worker:
                        del _WORKERS[key]
            raise
    return worker


def warm_up(assignment: str | None = None, *, keras: str = "3", sandbox: str = "auto") -> None:
    """Start this kernel's sandbox worker in the background (a notebook's first cell may call
    it, so that even the first check() finds the worker ready). With `assignment`, its spec
    says which Keras and preloads the worker needs."""
    preload: tuple[str, ...] = ()
    if assignment is not None:
        from grader.assignment import load_assignment
        spec = load_assignment(assignment, near=Path.cwd())
        keras, preload = spec.keras, tuple(getattr(spec, "preload", ()))
    _launch(keras, sandbox, preload)


def worker_pids() -> dict[tuple, int]:
    """The warm workers' process ids, for tests and the curious."""
    with _LOCK:
        return {k: w.proc.pid for k, w in _WORKERS.items() if w.proc is not None and w.alive()}


@atexit.register
def stop_workers() -> None:
    with _LOCK:
        workers = list(_WORKERS.values())
        _WORKERS.clear()
    for worker in workers:
        worker.stop(grace=1.0)


# ---------------------------------------------------------------- which notebook, which assignment

def _find_notebook(exercise: str, notebook: str | None) -> Path | None:
    for candidate in (notebook, os.environ.get("GRADER_NOTEBOOK"), os.environ.get("JPY_SESSION_NAME")):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    if notebook:
        raise SelfCheckError(f"{notebook}: no such notebook")
    found = [p for p in sorted(Path.cwd().glob("*.ipynb"))
             if f"def {exercise}(" in p.read_text(encoding="utf-8", errors="replace")]
    if len(found) == 1:
        return found[0]
    if not found:
        return None
    raise SelfCheckError(
        f"could not tell which notebook to check ({len(found)} notebooks here define `{exercise}`); "
        f"call check({exercise!r}, notebook='your_notebook.ipynb')")


def _find_assignment(nb_path: Path | None, exercise: str, assignment: str | None):
    from grader.assignment import known_assignments, load_assignment

    near = nb_path.parent if nb_path is not None else Path.cwd()
    if not assignment and nb_path is not None:
        try:
            meta = json.loads(nb_path.read_text(encoding="utf-8")).get("metadata", {}).get("grader", {})
            if isinstance(meta, dict) and meta.get("assignment"):
                assignment = str(meta["assignment"])
        except (OSError, ValueError, AttributeError):
            pass
    if assignment:
        return load_assignment(assignment, near=near)
    matches = []
    for root in known_assignments(near):
        try:
            spec = load_assignment(root)
        except Exception:  # noqa: BLE001 - someone else's broken spec must not stop this check
            continue
        if exercise in spec.exercises:
            matches.append(spec)
    if matches and matches[0].root.parent == (near / "selfcheck").resolve():
        return matches[0]  # the kit next to the notebook wins
    if len(matches) == 1:
        return matches[0]
    raise SelfCheckError(f"could not tell which assignment `{exercise}` belongs to "
                         f"({len(matches)} found); call check({exercise!r}, assignment='NAME')")


# ---------------------------------------------------------------- what the kernel ran

def _shell():
    """This process's IPython shell, if any. IPython is not imported to ask: a shell exists
    only where it already is, and importing it (~0.3 s) would delay a plain script's check."""
    if "IPython" not in sys.modules:
        return None
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return shell if shell is not None and getattr(shell, "history_manager", None) is not None else None


def kernel_inputs() -> list[str] | None:
    """Every cell executed in this kernel, oldest first; None outside IPython."""
    shell = _shell()
    if shell is None:
        return None
    return [str(text) for text in shell.history_manager.input_hist_raw if str(text).strip()]


def _defines(source: str, name: str) -> bool:
    try:
        tree = ast.parse(_as_python(source))
    except (SyntaxError, ValueError):
        return f"def {name}(" in source
    return any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.name == name
               for n in tree.body)


def _as_python(source: str) -> str:
    lines = [line if not line.lstrip().startswith(("%", "!")) else "" for line in source.splitlines()]
    return "\n".join(lines)


def _graded_cell(cells: list, name: str) -> int | None:
    """The saved notebook's cell for `name`: the one labelled for it, else its last definition."""
    last = None
    for index, cell in enumerate(cells):
        if cell.get("cell_type") != "code":
            continue
        meta = cell.get("metadata") or {}
        grader = meta.get("grader") if isinstance(meta.get("grader"), dict) else {}
        if grader.get("exercise") == name or name in (meta.get("tags") or []):
            return index
        if _defines(str(cell.get("source", "")), name):
            last = index
    return last


@dataclass
class AsRun:
    notebook: object  # nbformat.NotebookNode
    from_kernel: list[str]  # exercises taken from the kernel's history (changed since the save)
    unchanged: list[str]  # exercises whose run code equals the saved file's


def notebook_as_run(saved, exercises, inputs: list[str]) -> AsRun:
    """The saved notebook with each exercise's cell replaced by its latest executed version."""
    import nbformat

    nb = nbformat.from_dict(json.loads(json.dumps(saved)))
    taken, same = [], []
    for name in exercises:
        latest = next((text for text in reversed(inputs) if _defines(text, name)), None)
        if latest is None:
            continue
        index = _graded_cell(nb.cells, name)
        if index is None:
            nb.cells.append(nbformat.v4.new_code_cell(latest))
            taken.append(name)
        elif str(nb.cells[index].source).strip() == latest.strip():
            same.append(name)
        else:
            nb.cells[index].source = latest
            taken.append(name)
    return AsRun(nb, taken, same)


def _history_notebook(inputs: list[str]):
    import nbformat
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(text) for text in inputs]
    return nb


# ---------------------------------------------------------------- check

def _prepare_grading(keras: str, worker) -> None:
    """What grading imports and warms anyway (TensorFlow, pytest, the checks), done while the
    worker imports TensorFlow on the other core: on a first check the two waits overlap.
    matplotlib stays importable as usual: this is the student's kernel."""
    from grader.warm import prepare
    prepare(keras, plotting=True, enough=worker.answered)


_AUTOLOAD = "PYTEST_DISABLE_PLUGIN_AUTOLOAD"


@contextmanager
def _plugins_not_autoloaded():
    """pytest's plugin auto-loading off for one grading, as `grader check` has it: the
    grader's own plugin is all a check uses, and importing every installed plugin costs a
    first check seconds (Hypothesis' alone ~1.5 s). Restored after: it is the kernel's
    environment, not ours."""
    saved = os.environ.get(_AUTOLOAD)
    os.environ[_AUTOLOAD] = "1"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(_AUTOLOAD, None)
        else:
            os.environ[_AUTOLOAD] = saved



def _in_jupyter() -> bool:
    shell = _shell()
    return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"


def check(exercise: str, *, notebook: str | None = None, assignment: str | None = None,
          sandbox: str = "auto", show: bool = True, use_kernel: bool = True) -> SubmissionResult | None:
    """Grade `exercise` as you ran it (in a kernel) or as saved, and show the feedback
    (`show=False`: return it). `use_kernel=False` grades the saved file even in a kernel.

    When the feedback is shown nothing is returned: `check(...)` is usually the last line of
    a cell, and Jupyter would print the returned object's long repr under the feedback.
    """
    if os.environ.get("GRADER_SELF_CHECK", "").lower() in ("off", "0", "false", "no"):
        print(f"[grader] self-check of `{exercise}` skipped (GRADER_SELF_CHECK=off)")
        return None
    inputs = kernel_inputs() if use_kernel else None
    nb_path = _find_notebook(exercise, notebook)
    if nb_path is None and not inputs:
        raise SelfCheckError(f"no notebook here defines `{exercise}`; "
                             f"call check({exercise!r}, notebook='your_notebook.ipynb')")
    spec = _find_assignment(nb_path, exercise, assignment)
    if exercise not in spec.exercises:
        raise SelfCheckError(f"`{exercise}` is not an exercise of {spec.name}: {', '.join(spec.exercises)}")
    worker = _launch(spec.keras, sandbox, tuple(getattr(spec, "preload", ())))  # overlaps the preparation below
    _prepare_grading(spec.keras, worker)
    from grader.grading import grade_submission
    from grader.notebook import LoadError, load_notebook

    STATS["checks"] += 1
    shown_name = nb_path.name if nb_path is not None else "this kernel's history"
    with tempfile.TemporaryDirectory(prefix="grader-check-") as tmp:
        target, said = nb_path, f"checked the saved file {shown_name}: save the notebook and run check() " \
                                f"in a kernel to check the code you ran"
        if inputs:
            saved = load_notebook(nb_path) if nb_path is not None else None
            if nb_path is None or isinstance(saved, LoadError):
                run = AsRun(_history_notebook(inputs), [exercise], [])
            else:
                run = notebook_as_run(saved, spec.exercises, inputs)
            import nbformat
            target = Path(tmp) / (nb_path.name if nb_path is not None else "kernel.ipynb")
            nbformat.write(run.notebook, target)
            if run.from_kernel:
                said = (f"checked the code you ran in this kernel ({', '.join(run.from_kernel)} differ from the "
                        f"saved {shown_name}: save before you submit)")
            else:
                said = f"checked the code you ran in this kernel (the same as the saved {shown_name})"
        with _plugins_not_autoloaded():
            result = grade_submission(target, spec, _ready(worker), include_hidden=False,
                                      only_exercises=frozenset({exercise}))
    result.submission = str(nb_path) if nb_path is not None else "(kernel history)"
    result.warnings.insert(0, said)
    if not show:
        return result
    if _in_jupyter():
        from IPython.display import HTML, display
        from grader.render import render_html_fragment
        display(HTML(render_html_fragment(result, audience="student")))
    else:
        from grader.render import render_text
        print(render_text(result, audience="student"))
    return None
