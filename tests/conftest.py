"""Shared fixtures: one preloaded sandbox worker per test session (its start costs ~4 s),
helpers that build real notebooks, and the system tools some tests need.

Under `CI=true` a missing system tool fails the run at its start: a CI machine without
bubblewrap would otherwise grade at a weaker isolation level and quietly drop the checks
that only hold at full isolation, and one without Chromium would skip the report test;
both would leave the run green. Elsewhere the tests that need a tool skip, saying what is
missing and how to install it.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import nbformat
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "assignments" / "conv_bn" / "samples"
IN_CI = os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")
INSTALL = "to install: `make system` (as root) or `apt-get install bubblewrap chromium`"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium_path() -> str | None:
    return next((shutil.which(n) for n in CHROMIUM_NAMES if shutil.which(n)), None)


def bubblewrap_problem() -> str | None:
    """Why full isolation (bubblewrap) is unavailable here, or None when it works."""
    from grader.sandbox.client import IsolationUnavailable, choose_isolation
    try:
        choose_isolation("strict")
    except IsolationUnavailable as exc:
        return f"bubblewrap does not work here ({exc})"
    return None


def missing_system_tools() -> list[str]:
    problems = []
    bwrap = bubblewrap_problem()
    if bwrap:
        problems.append(bwrap)
    if chromium_path() is None:
        problems.append(f"Chromium is not installed (looked for {', '.join(CHROMIUM_NAMES)})")
    return problems


def require_system_tool(problem: str | None) -> None:
    """Skip the calling test (outside CI) when `problem` says a system tool is missing,
    naming it and how to install it; under CI, fail it."""
    if problem is None:
        return
    message = f"{problem}; {INSTALL}"
    if IN_CI:
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


def pytest_collection_modifyitems(session, config, items):
    """Under pytest-xdist (`make test` runs `-n 2 --dist loadfile`), files holding a `slow`
    test are handed out first, in their usual order, and the quick files after them: the
    scheduler gives a worker its next file when it finishes one, so when the expensive files
    start early the quick ones fill in behind them and both workers end at about the same
    time, instead of one worker starting a 2-minute file while the other sits idle. A
    serial run keeps pytest's order. Every test still runs; only the order changes."""
    if not hasattr(config, "workerinput"):  # set on an xdist worker, the one that collects
        return
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)  # stable: file order kept within each group


def pytest_sessionstart(session):
    if IN_CI:
        problems = missing_system_tools()
        if problems:
            raise pytest.UsageError("CI=true, but the tests need system tools that are missing: "
                                    + "; ".join(problems) + f". {INSTALL}.")


def _run_folder(config) -> Path:
    """One folder for the whole run: an xdist worker's basetemp is a folder of the run's."""
    base = config._tmp_path_factory.getbasetemp()
    return base.parent if hasattr(config, "workerinput") else base


def _wheel_cache(config) -> Path:
    return _run_folder(config) / "wheel-cache"


@pytest.fixture(scope="session", autouse=True)
def _shared_across_workers(request):
    """What several files need and either xdist worker may build first, built once per run:
    wheels repacked for offline pip installs (tests/wheelhouse.py; three tests need
    TensorFlow's 1.7 GB wheel), linked into each test's folder; the generated class and its
    serial grading (tests/generated_class.py), read by the batch and cluster tests."""
    import generated_class
    import wheelhouse
    wheelhouse.CACHE = _wheel_cache(request.config)
    generated_class.SHARED = _run_folder(request.config) / "generated-class"


def pytest_sessionfinish(session):
    if not hasattr(session.config, "workerinput"):  # the controller, or a serial run: all done
        shutil.rmtree(_wheel_cache(session.config), ignore_errors=True)


@pytest.fixture(scope="session")
def bubblewrap() -> None:
    """Use in a test that means full isolation: skips (or fails, under CI) without it."""
    require_system_tool(bubblewrap_problem())


@pytest.fixture(scope="session")
def chromium() -> str:
    """The Chromium binary; skips (or fails, under CI) without one."""
    path = chromium_path()
    require_system_tool(None if path else "Chromium is not installed")
    return path


@pytest.fixture(scope="session")
def worker():
    from grader.frameworks.sandbox_side import sandbox_side
    from grader.sandbox.client import Worker
    with Worker(framework=sandbox_side(keras="3")) as w:
        yield w


@pytest.fixture(scope="session")
def torch_worker():
    """One PyTorch worker (`framework = "torch"`: torch preloaded, no TensorFlow) for every
    module that grades torch code; its import overlaps with this process's own import of
    torch, which the rebuild and the checks need."""
    from grader.frameworks.sandbox_side import sandbox_side
    from grader.sandbox.client import Worker
    w = Worker(framework=sandbox_side("torch")).launch()
    try:
        import torch  # noqa: F401
        w.wait_ready()
        yield w
    finally:
        w.stop()


@pytest.fixture(scope="session")
def keras2_worker():
    """One Keras 2 (tf_keras) worker for every module that grades a `keras = "2"` assignment,
    started on first use (each start costs a TensorFlow import); its import overlaps with
    this process's own import of tf_keras, which the reference and rebuild.py need."""
    from grader.frameworks.sandbox_side import sandbox_side
    from grader.sandbox.client import Worker
    w = Worker(framework=sandbox_side(keras="2")).launch()
    try:
        import tf_keras  # noqa: F401
        w.wait_ready()
        yield w
    finally:
        w.stop()


@pytest.fixture(scope="session")
def conv_bn():
    from grader.assignment.spec import load_assignment
    return load_assignment("conv_bn")


def notebook(path: Path, *cells: str | tuple[str, str]) -> Path:
    """Write a notebook whose code cells are given as source, or (tag, source) for a tagged cell."""
    nb_cells = []
    for cell in cells:
        if isinstance(cell, tuple):
            tag, source = cell
            nb_cells.append(nbformat.v4.new_code_cell(source, metadata={"tags": [tag]}))
        else:
            nb_cells.append(nbformat.v4.new_code_cell(cell))
    nbformat.write(nbformat.v4.new_notebook(cells=nb_cells), str(path))
    return path


@pytest.fixture
def quick_conv_bn(tmp_path, conv_bn):
    """conv_bn with a 3 s call timeout, so tests of runaway code finish quickly."""
    root = tmp_path / "conv_bn_quick"
    shutil.copytree(conv_bn.root / "tests", root / "tests")
    shutil.copy(conv_bn.root / "faces.py", root / "faces.py")
    text = (conv_bn.root / "assignment.toml").read_text()
    text = text.replace('reference = "../../reference/conv_bn.py"', f'reference = "{conv_bn.reference}"')
    text = text.replace("call_timeout = 30", "call_timeout = 3")
    (root / "assignment.toml").write_text(text)
    from grader.assignment.spec import load_assignment
    return load_assignment(root)
