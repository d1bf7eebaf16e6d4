"""The conv_bn submissions as an nbgrader course, so `nbgrader autograde` grades the same notebooks.

nbgrader knows a notebook only through its own cell metadata, so each cell is given the
role it plays in our format:

* a graded function's cell (our `grader.grade` metadata, or its exercise tag in the
  master) becomes an nbgrader *solution* cell with `grade_id` = the exercise;
* a `check("exercise")` cell becomes an *autograder test* cell worth 1 point. Its source
  is replaced by a few plain asserts on that function, as an nbgrader instructor would
  write them: nbgrader grades a test cell by whether it raises, and our `check()` is a
  no-op there (GRADER_SELF_CHECK=off), so without asserts every test would pass;
* every other cell the student was given becomes a *locked* cell;
* a cell the student created has no metadata in either format and stays that way. In
  `broken_tags` that includes the retyped graded functions, which nbgrader therefore
  cannot find: it executes them, but only after the test cells that use them.

The asserts cost milliseconds, so they do not change the timing; they make nbgrader's
scores meaningful enough to show that it really graded (the benchmark prints them).
Everything else in the course directory is nbgrader's standard layout.
"""
from __future__ import annotations

import copy
import re
import shutil
from pathlib import Path

import nbformat

ASSIGNMENT_ID = "conv_bn"
NOTEBOOK_NAME = "conv_bn.ipynb"
_CHECK_CALL = re.compile(r"""^\s*check\(\s*["'](\w+)["']""", re.MULTILINE)

TESTS = {
    "standardize": """\
_a = np.arange(2 * 4 * 4 * 3, dtype=np.float64).reshape(2, 4, 4, 3)
_train, _test = standardize(_a, _a + 1)
assert _train.dtype == np.float32 and _train.shape == _a.shape
assert np.allclose(_train.mean(axis=(0, 1, 2)), 0, atol=1e-5)
assert np.allclose(_test.mean(axis=(0, 1, 2)), 1 / _a.std(axis=(0, 1, 2)), atol=1e-4)""",
    "batchnorm_forward": """\
_x = np.random.default_rng(0).normal(3, 2, size=(4, 3, 3, 2))
_g, _b = np.array([1.0, 2.0]), np.array([0.0, 1.0])
_mu, _var = _x.mean(axis=(0, 1, 2)), _x.var(axis=(0, 1, 2))
assert np.allclose(batchnorm_forward(_x, _g, _b), _g * (_x - _mu) / np.sqrt(_var + 1e-3) + _b, atol=1e-6)""",
    "happyModel": """\
_names = [type(layer).__name__ for layer in happyModel().layers]
assert _names == ["ZeroPadding2D", "Conv2D", "BatchNormalization", "ReLU", "MaxPooling2D", "Flatten", "Dense"], _names""",
    "convolutional_model": """\
_m = convolutional_model((64, 64, 3))
_names = [type(layer).__name__ for layer in _m.layers]
assert _names.count("BatchNormalization") == 2 and _names.count("ReLU") == 2, _names
assert tuple(_m.outputs[0].shape) == (None, 6)""",
}


def _meta(grade_id: str, *, solution=False, grade=False, locked=False, points=None) -> dict:
    meta = {"grade": grade, "solution": solution, "locked": locked, "grade_id": grade_id, "schema_version": 3}
    if grade:
        meta["points"] = points
    return {"nbgrader": meta}


def to_nbgrader(nb, exercises, *, master: bool):
    """A copy of `nb` carrying nbgrader metadata (see the module docstring for the mapping)."""
    nb = copy.deepcopy(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        ours = cell.metadata.get("grader", {})
        tags = set(cell.metadata.get("tags", []))
        exercise = ours.get("exercise") if ours.get("grade") else None
        if master and exercise is None:
            exercise = next((name for name in exercises if name in tags), None)
        checked = _CHECK_CALL.search(cell.source)
        if exercise in exercises:
            cell.metadata.update(_meta(exercise, solution=True))
        elif checked and checked.group(1) in TESTS and (master or ours.get("locked")):
            cell.source = TESTS[checked.group(1)]
            cell.metadata.update(_meta(f"test_{checked.group(1)}", grade=True, locked=True, points=1))
        elif master or ours.get("locked"):
            cell.metadata.update(_meta(cell.get("id") or f"locked-{i}", locked=True))
    return nb


def build_course(root: Path, master, submissions: list[tuple[str, object]], exercises, *,
                 support: list[Path], cell_timeout: int) -> Path:
    """An nbgrader course directory: config, source/ (master + support files), submitted/."""
    root = Path(root)
    if root.exists():
        shutil.rmtree(root)
    source = root / "source" / ASSIGNMENT_ID
    source.mkdir(parents=True)
    nbformat.write(to_nbgrader(master, exercises, master=True), source / NOTEBOOK_NAME)
    for path in support:
        shutil.copy(path, source / Path(path).name)
    for student, nb in submissions:
        folder = root / "submitted" / student / ASSIGNMENT_ID
        folder.mkdir(parents=True)
        nbformat.write(to_nbgrader(nb, exercises, master=False), folder / NOTEBOOK_NAME)
        for path in support:  # a student submits the folder they were given
            shutil.copy(path, folder / Path(path).name)
    (root / "nbgrader_config.py").write_text(
        "c = get_config()  # noqa: F821\n"
        f"c.CourseDirectory.root = {str(root.resolve())!r}\n"
        "c.CourseDirectory.course_id = 'bench'\n"
        f"c.Execute.timeout = {int(cell_timeout)}\n")
    return root
