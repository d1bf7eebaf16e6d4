"""`check("happyModel")` inside a student's notebook: the instructor's grading, on demand.

It runs the visible tests of the exercise asked for, with the same tests, sandbox level and
renderer as `grader grade`, and says plainly that hidden tests also count. Two things make
it something a student can trust while they work:

* In a Jupyter kernel it grades what the student RAN: the latest executed version of each
  graded function, taken from the kernel's input history, in place of that cell of the
  saved notebook (whose other cells are kept). A cell edited and run but not saved is what
  gets checked; outside a kernel the saved file is. The feedback says which.
* One sandbox worker per kernel and framework (Keras flavour, or torch) stays warm between
  checks. The first check launches it before doing its own preparation, so the framework's
  import in the worker overlaps ours; later checks reuse it. A PyTorch assignment's worker
  preloads torch and never TensorFlow, and this process warms torch, not TensorFlow. It is
  stopped at exit, and dies with the kernel even on SIGKILL (the worker exits when its
  control socket closes).

The assignment is found next to the notebook (a student kit's `selfcheck/` folder), then
through GRADER_ASSIGNMENTS, then in the repository (see `grader.assignment.spec.search_folders`).
"""
from __future__ import annotations

import ast
import atexit
import json
import os
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from grader.results import SubmissionResult
from grader.kit.find import SelfCheckError, find_assignment, find_notebook, unknown_exercise

__all__ = ["SelfCheckError", "check", "warm_up"]


# ---------------------------------------------------------------- the warm worker

_WORKERS: dict[tuple[str, str, tuple[str, ...], str], object] = {}
_LOCK = threading.Lock()
STATS = {"workers_started": 0, "checks": 0}


def _launch(keras: str, isolation: str, preload: tuple[str, ...] = (), framework: str = "keras"):
    """This kernel's worker for (keras, isolation, preload, framework): reused when alive, else
    launched now without waiting for it (`_ready` waits, after the caller's own preparation)."""
    from grader.frameworks.sandbox_side import sandbox_side
    from grader.sandbox.client import Worker

    key = (keras, isolation, tuple(preload), framework)
    with _LOCK:
        worker = _WORKERS.get(key)
        if worker is not None and worker.alive():
            return worker
        if worker is not None:
            worker.stop(grace=0.5)
        worker = Worker(framework=sandbox_side(framework, keras), isolation=isolation, preload=preload).launch()
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


def warm_up(assignment: str | None = None, *, keras: str = "3", sandbox: str = "auto") -> bool:
    """Start this kernel's sandbox worker in the background, so that even the first check()
    finds it ready (a template's first cell calls it). With `assignment`, its spec says
    which framework, Keras and preloads the worker needs. Never raises and never waits: a
    notebook's first cell must run whatever the machine; the first check() says what is wrong, if
    anything. Returns whether a worker is starting or running."""
    if os.environ.get("GRADER_SELF_CHECK", "").lower() in ("off", "0", "false", "no"):
        return False
    try:
        preload: tuple[str, ...] = ()
        framework = "keras"
        if assignment is not None:
            from grader.assignment.spec import load_assignment
            spec = load_assignment(assignment, near=Path.cwd())
            keras, preload, framework = spec.keras, tuple(getattr(spec, "preload", ())), _framework(spec)
        from grader.frameworks.installed import absent_modules
        if absent_modules(framework, keras):  # no worker could start; the first check() says what to install
            return False
        _launch(keras, sandbox, preload, framework)
        return True
    except Exception:  # noqa: BLE001 - a warm-up is an optimisation, never an error in a student's first cell
        return False


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

def _framework(spec) -> str:
    return str(getattr(spec, "framework", "keras") or "keras")


def _prepare_grading(keras: str, worker, framework: str = "keras") -> None:
    """What grading imports and warms anyway (TensorFlow or torch, pytest, the checks), done
    while the worker imports the same on the other core: on a first check the two waits
    overlap. matplotlib stays importable as usual: this is the student's kernel."""
    from grader.run.warm import prepare
    prepare(keras, plotting=True, enough=worker.answered, framework=framework)


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


# ---------------------------------------------------------------- what the student is told

FIRST_CHECK_SECONDS = 5  # a first check on an idle 2-core machine: 3.5 s (README's speed table)
LONG_NOTICE_AFTER = 10.0  # seconds without a result before the student is told it still runs


def _say(text: str, *, problem: bool = False) -> None:
    """One line for the student, at once (a cell's output appears as it is printed)."""
    print(f"[grader] {text}", file=sys.stderr if problem else sys.stdout, flush=True)


@contextmanager
def _notice_if_long(why: str, after: float = LONG_NOTICE_AFTER):
    """Says once that the check still runs when it takes longer than `after` seconds: a
    first check on a busy machine can take half a minute, and silence reads as a hang."""
    timer = threading.Timer(after, _say, args=(f"still checking after {after:.0f} s: {why}; the result follows",))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def what_was_checked(exercises, nb_name: str | None, run: "AsRun | None", in_kernel: bool) -> str:
    """Which code was graded, in words that are true: the kernel's, or the saved file and why.
    Only the exercises checked are named (an unsaved edit elsewhere is not this check's news)."""
    if in_kernel and nb_name is None:
        return "checked the code you ran in this kernel (no saved notebook was found next to it)"
    saved = f"the saved {nb_name}" if nb_name else "the saved notebook"
    if not in_kernel:
        return (f"checked {saved} (outside a Jupyter kernel, check() reads the saved file: save before "
                f"checking)")
    taken = [e for e in exercises if run is not None and e in run.from_kernel]
    same = [e for e in exercises if run is not None and e in run.unchanged]
    not_run = [e for e in exercises if e not in taken and e not in same]
    parts = []
    if taken:
        parts.append(f"checked the code you ran in this kernel; {_names(taken)} "
                     f"{'differs' if len(taken) == 1 else 'differ'} from {saved}: save the notebook before "
                     f"you submit")
    elif same:
        parts.append(f"checked the code you ran in this kernel (the same as {saved})")
    if not_run:
        parts.append(f"checked {saved} for {_names(not_run)}: {'its cell has' if len(not_run) == 1 else 'their cells have'} "
                     f"not run in this kernel yet (or not since it restarted); run "
                     f"{'it' if len(not_run) == 1 else 'them'}, then check again to check the code you see")
    return "; ".join(parts)


def _names(exercises) -> str:
    return ", ".join(f"`{e}`" for e in exercises)


# ---------------------------------------------------------------- check

def check(exercise: str | None = None, *, notebook: str | None = None, assignment: str | None = None,
          sandbox: str = "auto", show: bool = True, use_kernel: bool = True) -> SubmissionResult | None:
    """Check `exercise` (every exercise when None) as you ran it (in a kernel) or as saved,
    and show the feedback (`show=False`: return it). `use_kernel=False` checks the saved
    file even in a kernel.

    When the feedback is shown nothing is returned: `check(...)` is usually the last line of
    a cell, and Jupyter would print the returned object's long repr under the feedback. A
    mistake in calling it is then one line saying what to do, not a traceback; with
    `show=False` it is raised as SelfCheckError."""
    started = time.perf_counter()
    if os.environ.get("GRADER_SELF_CHECK", "").lower() in ("off", "0", "false", "no"):
        print(f"[grader] self-check of `{exercise or 'every exercise'}` skipped (GRADER_SELF_CHECK=off)")
        return None
    try:
        result = _check(exercise, notebook, assignment, sandbox, use_kernel, show)
    except SelfCheckError as exc:
        if not show:
            raise
        _say(str(exc), problem=True)
        return None
    except KeyboardInterrupt:
        if not show:
            raise
        _say("check interrupted", problem=True)
        return None
    except Exception as exc:  # noqa: BLE001 - the grader's own failure: said in two lines, no frames
        if not show:
            raise
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        _say(f"the grader itself failed ({type(exc).__name__}: {first}); this is not your code's fault: "
             f"restart the kernel and try again, and tell your instructor if it happens again", problem=True)
        return None
    result.execution_time = time.perf_counter() - started  # what the student waited, not the grading alone
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


def _check(exercise: str | None, notebook: str | None, assignment: str | None, sandbox: str,
           use_kernel: bool, show: bool) -> SubmissionResult:
    if exercise is not None and not isinstance(exercise, str):
        raise SelfCheckError(f"check() takes an exercise's name as a string, e.g. check(\"happyModel\"), "
                             f"not {type(exercise).__name__}")
    inputs = kernel_inputs() if use_kernel else None
    nb_path = find_notebook(exercise, notebook)
    if nb_path is None and not inputs:
        what = f"defines `{exercise}`" if exercise else "is a notebook"
        raise SelfCheckError(f"no file in {Path.cwd()} {what}; give it: check({repr(exercise) + ', ' if exercise else ''}"
                             f"notebook='your_notebook.ipynb')")
    spec = find_assignment(nb_path, exercise, assignment)
    if exercise is not None and exercise not in spec.exercises:
        raise unknown_exercise(exercise, spec.name, spec.exercises)
    from grader.frameworks.installed import missing_framework
    problem = missing_framework(spec, then="restart the kernel and check again")
    if problem is not None:  # one line saying which extra to install, not a worker that "did not start"
        raise SelfCheckError(problem)
    checked = [exercise] if exercise is not None else list(spec.exercises)
    with _LOCK:
        known = _WORKERS.get((spec.keras, sandbox, tuple(getattr(spec, "preload", ())), _framework(spec)))
        warm = known is not None and bool(known.info) and known.alive()
    if show and not warm:
        _say(f"starting the grader, about {FIRST_CHECK_SECONDS} s the first time (longer on a busy machine); "
             f"later checks take well under a second")
    library = "torch" if _framework(spec) == "torch" else "TensorFlow"
    why = (f"the first check imports {library}, which is slow on a busy machine" if not warm else
           f"your code is still running (each call into it is stopped after {spec.call_timeout:g} s)")
    with _notice_if_long(why) if show else _nothing():
        worker = _launch(spec.keras, sandbox, tuple(getattr(spec, "preload", ())),
                         _framework(spec))  # overlaps the preparation
        _prepare_grading(spec.keras, worker, _framework(spec))
        return _grade(spec, nb_path, inputs, checked, exercise, worker)


@contextmanager
def _nothing():
    yield


def _grade(spec, nb_path: Path | None, inputs, checked: list[str], exercise: str | None, worker) -> SubmissionResult:
    from grader.run.grading import grade_submission
    from grader.notebook import LoadError, load_notebook

    STATS["checks"] += 1
    nb_name = nb_path.name if nb_path is not None else None
    with tempfile.TemporaryDirectory(prefix="grader-check-") as tmp:
        target, run = nb_path, None
        if inputs:
            saved = load_notebook(nb_path) if nb_path is not None else None
            if nb_path is None or isinstance(saved, LoadError):
                run = AsRun(_history_notebook(inputs), list(checked), [])
                nb_name = None
            else:
                run = notebook_as_run(saved, spec.exercises, inputs)
            import nbformat
            for index, count in _execution_counts(run.notebook.cells, spec.exercises).items():
                run.notebook.cells[index].execution_count = count  # named "cell In [n]" where it is read
            target = Path(tmp) / (nb_path.name if nb_path is not None else "kernel.ipynb")
            nbformat.write(run.notebook, target)
        said = what_was_checked(checked, nb_name, run, in_kernel=inputs is not None)
        only = frozenset({exercise}) if exercise is not None else None
        with _plugins_not_autoloaded():
            result = grade_submission(target, spec, _ready(worker), include_hidden=False, only_exercises=only)
    result.submission = str(nb_path) if nb_path is not None else "(kernel history)"
    result.graded_code = said
    return result


def _execution_counts(cells, exercises) -> dict[int, int]:
    """Cell index -> the execution count ("In [n]") of the kernel input that cell now holds,
    for each exercise's cell taken from (or equal to) the kernel's history."""
    shell = _shell()
    if shell is None:
        return {}
    raw = [str(t) for t in shell.history_manager.input_hist_raw]
    counts = {}
    for name in exercises:
        index = _graded_cell(cells, name)
        if index is None:
            continue
        n = next((n for n in range(len(raw) - 1, 0, -1) if raw[n].strip() and _defines(raw[n], name)), None)
        if n is not None and raw[n].strip() == str(cells[index].get("source", "")).strip():
            counts[index] = n
    return counts
