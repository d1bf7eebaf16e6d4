"""The pytest plugin: assignment tests are plain pytest, graded in the grading process.

It gives tests the `submission` and `reference` fixtures (and `hidden_rng` for hidden
inputs), reads the `points` / `exercise` / `visibility` / `depends` markers, and turns
each test's outcome into a `TestResult`. Two ways in:

- `grader.run.grading.grade_submission` runs pytest on an assignment's tests with a context
  already holding the submission (the CLI, batch grading, platform bundles);
- an instructor runs `pytest assignments/NAME/tests --notebook SUBMISSION.ipynb`, and the
  plugin opens the notebook itself and prints the feedback at the end.
"""
from __future__ import annotations

import hashlib
import importlib.util
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from grader.checks import CheckFailed
from grader.results import Status, SubmissionResult, TestResult, Visibility, open_notes, take_notes

CONTEXT = pytest.StashKey["GradingContext"]()


@dataclass
class GradingContext:
    assignment: Any  # grader.assignment.spec.Assignment
    submission: Any  # grader.run.submission.Submission
    include_hidden: bool = True
    only_exercises: frozenset[str] | None = None  # a self-check of one exercise runs only its tests
    results: list[TestResult] = field(default_factory=list)
    outcomes: dict[str, Status] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    owns_worker: bool = False
    _reference: Any = None

    def for_collection(self) -> "GradingContext":
        """The context tests are collected with once for many submissions: it keeps every
        test, in the assignment's order; each grade then selects its own (select_items)."""
        return GradingContext(self.assignment, None)

    def reference_module(self):
        if self._reference is None:
            # A student kit replays recorded answers; an export records them (grader.kit).
            from grader.kit.record import reference_for
            self._reference = reference_for(self) or self.reference_from_source()
        return self._reference

    def reference_from_source(self):
        if self._reference is None:
            path = Path(self.assignment.reference)
            # Keyed by path too: two copies of an assignment may have different references.
            digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
            name = f"_grader_reference_{self.assignment.name}_{digest}"
            module = sys.modules.get(name)
            if module is None:
                spec = importlib.util.spec_from_file_location(name, path)
                module = importlib.util.module_from_spec(spec)
                sys.modules[name] = module
                spec.loader.exec_module(module)
            self._reference = _ReferenceModels.of(module)
        return self._reference


def _seed_for(key: tuple) -> int:
    """Seed Keras from what is being built, so a reference model has the same weights in
    every grading process and whichever test builds it first: the numbers feedback quotes
    from it ("expected 0.73, found 0.12") are then the same on every regrade. The seed is
    returned for PyTorch, which is seeded around the build only (`_torch_kept`)."""
    import hashlib
    import sys
    seed = int.from_bytes(hashlib.sha256(repr(key).encode("utf-8", "backslashreplace")).digest()[:4], "little")
    try:
        import keras  # TensorFlow imports it anyway; tf_keras processes have it too
    except ImportError:  # pragma: no cover - the kit's replay builds no reference models
        return seed
    keras.utils.set_random_seed(seed)
    if "tf_keras" in sys.modules:
        sys.modules["tf_keras"].utils.set_random_seed(seed)
    return seed


def _torch_kept():
    """The PyTorch side of keeping reference models, when torch is in use at all (a
    reference module that builds PyTorch models imported it already)."""
    if "torch" not in sys.modules:
        return None
    from grader.frameworks.torch import kept
    return kept


def _is_module_class(attr: type) -> bool:
    kept = _torch_kept()
    return kept is not None and kept.is_module_class(attr)


def _is_kept_module(held) -> bool:
    kept = _torch_kept()
    return kept is not None and isinstance(held, kept.KeptModule)


class _ReferenceModels:
    """The reference module, with the models it builds kept for the life of the process.

    Building a reference model costs ~0.1 s and every submission's tests build the same few,
    so they are built once per grading process (per function and hashable arguments). Only
    models are kept: the model checks restore the weights they touch, while arrays a test
    might change in place are recomputed on every call. A PyTorch module is handed out as
    freshly built each time (`grader.frameworks.torch.kept`: weights, modes, no recorded
    input shape), since a module carries more of its last use than a Keras model does.
    """

    _by_module: dict[str, "_ReferenceModels"] = {}

    def __init__(self, module):
        self._module = module
        self._models: dict[tuple, Any] = {}

    @classmethod
    def of(cls, module) -> "_ReferenceModels":
        if module.__name__ not in cls._by_module:
            cls._by_module[module.__name__] = cls(module)
        return cls._by_module[module.__name__]

    def __getattr__(self, name: str):
        attr = getattr(self._module, name)
        if name.startswith("_") or not callable(attr) or (isinstance(attr, type) and not _is_module_class(attr)):
            return attr  # a PyTorch module class (`ConvolutionalModel(...)`) builds a model like a function

        def call(*args, **kwargs):
            key = (name, args, tuple(sorted(kwargs.items())))
            try:
                hash(key)
            except TypeError:
                return attr(*args, **kwargs)
            if key in self._models:
                held = self._models[key]
                lent = held.lend() if _is_kept_module(held) else held
                if lent is not None:
                    return lent
                del self._models[key]  # a test replaced one of its layers: build it again
            seed = _seed_for(key)
            torch_kept = _torch_kept()
            if torch_kept is None:
                value = attr(*args, **kwargs)
            else:
                value = torch_kept.build_seeded(lambda: attr(*args, **kwargs), seed)
            if hasattr(value, "layers") and hasattr(value, "get_weights"):
                self._models[key] = value
            elif torch_kept is not None and torch_kept.is_module(value):
                self._models[key] = torch_kept.KeptModule(value)
            return value

        return call


# ---------------------------------------------------------------- configuration

def pytest_addoption(parser):
    group = parser.getgroup("grader", "grade a notebook submission with an assignment's tests")
    group.addoption("--notebook", default=None, help="the submitted notebook to grade")
    group.addoption("--assignment", dest="grader_assignment", default=None,
                    help="assignment name or folder (default: the one the tests live in)")
    group.addoption("--visible-only", action="store_true", default=False,
                    help="run only visible tests, as a student's self-check does")
    group.addoption("--sandbox", dest="grader_sandbox", default="auto",
                    help="isolation: auto, strict (bubblewrap or refuse), namespace, process")
    group.addoption("--grader-json", default=None, help="also write the result as JSON to this path")


def pytest_configure(config):
    for line in ("points(value): points this test is worth",
                 "exercise(name): the graded function this test checks",
                 "visibility(value): visible, hidden, after_due_date or after_published",
                 "depends(*names): run only if these tests passed",
                 "title(text): the test's name in feedback (default: the function name)"):
        config.addinivalue_line("markers", line)
    notebook = config.getoption("notebook", None)
    if notebook and CONTEXT not in config.stash:
        config.stash[CONTEXT] = _context_from_options(config, Path(notebook))


def _context_from_options(config, notebook: Path) -> GradingContext:
    from grader.assignment.spec import find_assignment_for, load_assignment
    from grader.frameworks.sandbox_side import sandbox_side
    from grader.sandbox.client import Worker
    from grader.run.submission import Submission

    name = config.getoption("grader_assignment")
    if name is None:
        for arg in config.args:
            found = find_assignment_for(Path(arg).resolve())
            if found:
                name = found
                break
    if name is None:
        raise pytest.UsageError("--notebook needs --assignment NAME (or run the tests of an assignment folder)")
    assignment = load_assignment(name)
    worker = Worker(framework=sandbox_side(assignment.framework, assignment.keras),
                    isolation=config.getoption("grader_sandbox"), preload=assignment.preload).start()
    submission = Submission(notebook, assignment, worker).open()
    ctx = GradingContext(assignment, submission, include_hidden=not config.getoption("visible_only"),
                         owns_worker=True)
    ctx.started = time.perf_counter()
    return ctx


def _ctx(config) -> GradingContext | None:
    return config.stash.get(CONTEXT, None)


def pytest_collection_modifyitems(session, config, items):
    ctx = _ctx(config)
    if ctx is None:
        return
    keep, drop = select_items(ctx, items)
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = keep
    number_items(items)


def select_items(ctx: GradingContext, items: list) -> tuple[list, list]:
    """The tests this grade runs, in feedback order (the assignment's order of exercises,
    not the test files' names), and the ones it leaves out."""
    keep, drop = [], []
    for item in items:
        wanted = ctx.include_hidden or _visibility(item) is Visibility.VISIBLE
        if ctx.only_exercises is not None and _marker_arg(item, "exercise", "") not in ctx.only_exercises:
            wanted = False
        (keep if wanted else drop).append(item)
    order = {name: i for i, name in enumerate(ctx.assignment.exercises)}
    keep.sort(key=lambda it: order.get(_marker_arg(it, "exercise", ""), len(order)))
    return keep, drop


def number_items(items: list) -> None:
    """Number the tests to run, and forget whether an earlier run of the same collected
    items (grader.run.collected) recorded them."""
    for number, item in enumerate(items, start=1):
        item.stash[_NUMBER] = str(number)
        item.stash[_RECORDED] = False


_NUMBER = pytest.StashKey[str]()
_RECORDED = pytest.StashKey[bool]()


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="session")
def grading_context(request) -> GradingContext:
    ctx = _ctx(request.config)
    if ctx is None:
        pytest.skip("no submission to grade: pass --notebook SUBMISSION.ipynb")
    return ctx


@pytest.fixture(scope="session")
def submission(grading_context):
    return grading_context.submission


@pytest.fixture(scope="session")
def reference(grading_context):
    return grading_context.reference_module()


@pytest.fixture
def hidden_rng(request, grading_context):
    """Inputs no student has seen: seeded by the instructor's secret, the test's name and the
    submission's content. With the secret and the name only, every student would get the
    same hidden inputs, and one leak would let anyone hard-code the answers; with the
    content too, they differ between submissions yet stay the same when one is regraded."""
    import numpy as np
    content = str(getattr(grading_context.submission, "digest", ""))
    secret = grading_context.assignment.secret
    if _visibility(request.node) is Visibility.VISIBLE:  # a student kit must draw the same inputs
        from grader.kit.replay import visible_secret
        secret = visible_secret(grading_context.assignment)
        content = ""  # the same for every submission: a kit answers them from a recording
    text = f"{secret}:{request.node.name}:{content}"
    digest = hashlib.sha256(text.encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "big"))


# ---------------------------------------------------------------- markers

def _marker_arg(item, name: str, default=None):
    marker = item.get_closest_marker(name)
    return marker.args[0] if marker is not None and marker.args else default


def _visibility(item) -> Visibility:
    try:
        return Visibility(_marker_arg(item, "visibility", "visible"))
    except ValueError:
        return Visibility.VISIBLE


def _title_of(module, name: str) -> str:
    """The title a student sees for the test function `name` of `module` (its `title`
    marker, else its name in words): a not-run reason must name what the student read."""
    marks = getattr(getattr(module, name, None), "pytestmark", [])
    for mark in marks if isinstance(marks, list) else []:
        if getattr(mark, "name", "") == "title" and mark.args:
            return str(mark.args[0])
    base = name[5:] if name.startswith("test_") else name
    return base.replace("_", " ")


def _display_name(item) -> str:
    title = _marker_arg(item, "title")
    if title:
        return str(title)
    base = getattr(item, "originalname", None) or item.name.split("[")[0]
    base = base[5:] if base.startswith("test_") else base
    name = base.replace("_", " ")
    if "[" in item.name:
        name += " [" + item.name.split("[", 1)[1]
    return name


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef, request):
    """A fixture wider than one test (module, session) is computed once and handed to every
    test that asks for it, visible and hidden alike: it runs on the visible channel, whose
    children never receive hidden inputs, whichever test happens to set it up first (a
    hidden test's child may already hold what the student's code recorded of them)."""
    ctx = _ctx(request.config)
    submission = getattr(ctx, "submission", None)
    if fixturedef.scope == "function" or not hasattr(submission, "use_channel"):
        return (yield)
    previous = submission.channel
    submission.use_channel("visible")
    try:
        return (yield)
    finally:
        submission.use_channel(previous)


@pytest.hookimpl(tryfirst=True)  # before fixtures: their calls belong to the test's channel too
def pytest_runtest_setup(item):
    ctx = _ctx(item.config)
    if ctx is None:
        return
    open_notes()  # what the test's checks accept but want said (grader.results.note)
    # A hidden test's calls run in children of their own, never shared with visible tests.
    if hasattr(ctx.submission, "use_channel"):
        ctx.submission.use_channel(_visibility(item).value)
    marker = item.get_closest_marker("depends")
    for needed in (marker.args if marker else ()):
        key = f"{item.module.__name__}::{needed}"
        if "::" not in needed and ctx.outcomes.get(key) is not Status.PASSED:
            pytest.skip(f"fix `{_title_of(item.module, needed)}` first")
    from grader.testing import unmet_dependency  # another file's test, or a whole exercise
    if unmet_dependency(marker, ctx.results):
        pytest.skip(unmet_dependency(marker, ctx.results))


# ---------------------------------------------------------------- outcomes

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    ctx = _ctx(item.config)
    if ctx is None or item.stash.get(_RECORDED, False):
        return
    report = outcome.get_result()
    if call.when == "setup" and report.passed:
        return
    if call.when == "teardown" and report.passed:
        return
    item.stash[_RECORDED] = True
    result = _to_result(item, call, report, ctx)
    ctx.results.append(result)
    ctx.outcomes[f"{item.module.__name__}::{getattr(item, 'originalname', item.name)}"] = result.status


def _to_result(item, call, report, ctx: GradingContext) -> TestResult:
    max_score = float(_marker_arg(item, "points", 1.0))
    result = TestResult(
        name=_display_name(item), exercise=str(_marker_arg(item, "exercise", "")), score=0.0,
        max_score=max_score, status=Status.FAILED, visibility=_visibility(item),
        number=item.stash.get(_NUMBER, ""), duration=round(call.duration, 4), nodeid=item.nodeid)
    submission = ctx.submission
    if submission is not None and hasattr(submission, "take_output"):
        result.output = submission.take_output()
    result.notes = take_notes()
    if report.skipped:
        result.status = Status.NOT_RUN
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        result.message = reason.removeprefix("Skipped: ")
        return result
    if report.passed:
        result.status, result.score = Status.PASSED, max_score
        return result
    _explain(result, call.excinfo.value if call.excinfo else None, ctx)
    return result


def _explain(result: TestResult, exc: BaseException | None, ctx: GradingContext) -> None:
    from grader.sandbox import client

    if isinstance(exc, CheckFailed):
        result.message, result.hint, result.table = exc.message, exc.hint, exc.table
        result.diagnosis = exc.diagnosis
        result.score = round(result.max_score * exc.fraction, 6)
    elif isinstance(exc, client.StudentCodeError):
        if exc.not_implemented:
            result.message = f"`{exc.name}` is not implemented yet."
            result.hint = "Replace `raise NotImplementedError()` with your code."
            result.diagnosis = "not_implemented"
        else:
            result.message = f"Your `{exc.name}` raised {exc.type}: {exc.detail}".rstrip(": ")
            if getattr(exc, "via_probe", False) and exc.where:  # the grader's wrapper is not theirs to find
                result.message += f" ({exc.where}, line {exc.line})" if exc.line else f" ({exc.where})"
            result.student_traceback = exc.traceback
            result.diagnosis = "raised"
    elif isinstance(exc, client.MissingFunction):
        result.message, result.diagnosis = str(exc), "missing"
        result.hint = "Keep the graded function's name and signature exactly as given in the assignment."
    elif isinstance(exc, client.SandboxTimeout):
        result.message, result.diagnosis = str(exc), "timeout"
    elif isinstance(exc, client.SandboxError):
        result.message, result.diagnosis = str(exc), "sandbox"
    elif isinstance(exc, AssertionError):
        result.message = str(exc) or "a check failed"
    else:
        # A bug in the check or the reference, not the student's fault: say so loudly.
        result.message = (f"the grader's own check failed ({type(exc).__name__}: {exc}); "
                          f"this is not your fault, please tell your instructor")
        result.diagnosis = "grader_error"
        ctx.warnings.append(f"internal error in test {result.nodeid}: {type(exc).__name__}: {exc}")


# ---------------------------------------------------------------- direct pytest use

def pytest_terminal_summary(terminalreporter, exitstatus, config):
    ctx = _ctx(config)
    if ctx is None or not ctx.owns_worker:
        return
    from grader.render import render_text
    result = build_result(ctx, time.perf_counter() - getattr(ctx, "started", time.perf_counter()))
    terminalreporter.write_sep("=", "grader feedback")
    terminalreporter.write_line(render_text(result, color=terminalreporter.isatty(), audience="instructor"))
    path = config.getoption("grader_json")
    if path:
        import json
        Path(path).write_text(json.dumps(result.to_dict(), indent=2), encoding="utf-8")


def pytest_unconfigure(config):
    ctx = _ctx(config)
    if ctx is not None and ctx.owns_worker:
        ctx.submission.close()
        if ctx.submission.worker is not None:
            ctx.submission.worker.stop()


def build_result(ctx: GradingContext, seconds: float) -> SubmissionResult:
    sub = ctx.submission
    worker = getattr(sub, "worker", None)
    isolation = worker.level if worker is not None else ""
    if sub.session is not None and sub.session.seccomp and sub.session.seccomp != "on":
        isolation += f", seccomp {sub.session.seccomp}"
    if sub.session is not None and sub.session.privileges and sub.session.privileges != "ok":
        isolation += f", capabilities {sub.session.privileges}"
    if sub.session is not None and getattr(sub.session, "tmp", "ok") not in ("", "ok"):
        isolation += f", /tmp {sub.session.tmp}"  # each child's own /tmp (sandbox/private_tmp.py)
    return SubmissionResult(
        submission=str(sub.path), assignment=ctx.assignment.name, tests=list(ctx.results),
        errors=[str(sub.load_error)] if sub.load_error else [],
        warnings=list(dict.fromkeys(sub.warnings + ctx.warnings)), execution_time=seconds,
        isolation=isolation, hidden_tests_run=ctx.include_hidden, notes=list(getattr(sub, "notes", [])))
