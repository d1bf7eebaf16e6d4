"""bench/compare.py must keep working between the rare full runs, so its pieces are tested
here and the whole script runs once at toy size.

Nothing here asserts a time: the numbers depend on the machine and its load. The nbgrader
arm is skipped (`--no-nbgrader`, and a venv path that must stay absent), because tests
never download.
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
SAMPLES = REPO / "assignments" / "conv_bn" / "samples"
EXERCISES = ["standardize", "batchnorm_forward", "happyModel", "convolutional_model"]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def compare():
    return _load("compare")


@pytest.fixture(scope="module")
def course():
    return _load("_nbgrader_course")


def _fit_cells(nb):
    return [c.source for c in nb.cells if c.cell_type == "code" and ".fit(" in c.source]


def test_bounded_copy_cuts_every_training_cell(compare):
    for kind in ("correct", "broken_tags"):
        nb = compare.bounded(nbformat.read(SAMPLES / f"{kind}.ipynb", as_version=4), kind)
        fits = _fit_cells(nb)
        assert fits, kind
        for source in fits:
            assert "epochs=1," in source and "epochs=10" not in source and "epochs=200" not in source
        assert "n_train=20000" not in "".join(c.source for c in nb.cells)


def test_bounded_copy_refuses_a_training_cell_it_does_not_know(compare):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("model.fit(X, y, epochs=500)")])
    with pytest.raises(compare.UnboundedTraining, match="BOUNDED_EDITS"):
        compare.bounded(nb, "new.ipynb")


def test_grader_sees_the_originals_and_executing_tools_the_bounded_copies(compare, tmp_path):
    subs = compare.write_submissions(tmp_path, 10)
    assert [s.kind for s in subs[:9]] == list(compare.KINDS) + ["correct"]
    assert subs[0].original.read_bytes() == (SAMPLES / "correct.ipynb").read_bytes()
    assert "epochs=10" not in subs[0].executed.read_text()
    assert (subs[0].executed.parent / "faces.py").is_file()  # the notebooks import it from their folder


def test_nbgrader_conversion_gives_each_cell_its_role(course):
    def roles(kind):
        nb = course.to_nbgrader(nbformat.read(SAMPLES / f"{kind}.ipynb", as_version=4), EXERCISES, master=False)
        found = {"solution": [], "grade": [], "locked": 0, "student": 0}
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            meta = cell.metadata.get("nbgrader")
            if meta is None:
                found["student"] += 1
            elif meta["solution"]:
                found["solution"].append(meta["grade_id"])
            elif meta["grade"]:
                assert meta["locked"] and meta["points"] == 1 and "assert" in cell.source
                assert "check(" not in cell.source
                found["grade"].append(meta["grade_id"])
            else:
                assert meta["locked"] and meta["grade_id"]
                found["locked"] += 1
        return found

    correct = roles("correct")
    assert correct["solution"] == EXERCISES
    assert correct["grade"] == [f"test_{e}" for e in EXERCISES]
    assert correct["student"] == 0 and correct["locked"] > 0
    # Retyped graded cells carry no metadata: nbgrader cannot know them as solutions.
    broken = roles("broken_tags")
    assert broken["solution"] == [] and broken["student"] == 5


def test_nbgrader_log_gives_each_student_a_span(compare):
    run = compare.Run(cmd=[], returncode=0, started=100.0, ended=130.0, memory={}, stdout="", stderr_lines=[
        (101.0, "[AutogradeApp | INFO] Creating/updating student with ID 's000_correct': {}"),
        (102.0, "[AutogradeApp | INFO] Autograding ..."),
        (112.0, "[AutogradeApp | INFO] Creating/updating student with ID 's001_template': {}"),
    ])
    assert compare.nbgrader_students(run) == {"s000_correct": (101.0, 112.0), "s001_template": (112.0, 130.0)}


def _check_markdown_tables(text: str) -> int:
    """Every table line has as many cells as its header; returns how many tables there were."""
    tables, columns = 0, None
    for line in text.splitlines():
        if line.startswith("|"):
            assert line.endswith("|"), line
            count = line.count("|")
            if columns is None:
                columns, tables = count, tables + 1
            assert count == columns, f"ragged table line: {line}"
        else:
            columns = None
    return tables


@pytest.mark.slow
def test_compare_runs_end_to_end_at_toy_size(tmp_path):
    out, venv = tmp_path / "out", tmp_path / "never-created-venv"
    cmd = [sys.executable, str(BENCH / "compare.py"), "--submissions", "2", "--sizes", "1,2", "--jobs", "1",
           "--samples", "template", "--exec-submissions", "1", "--cold-repeats", "1", "--exec-cold-repeats", "0",
           "--no-nbgrader", "--nbgrader-venv", str(venv), "--out", str(out)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not venv.exists()

    assert _check_markdown_tables(proc.stdout) == 3
    assert "Cold start" in proc.stdout and "Steady state on 2 submissions" in proc.stdout
    assert "nbgrader: skipped (--no-nbgrader)" in proc.stdout

    data = json.loads((out / "compare.json").read_text())
    assert data["settings"]["submissions"] == 2 and data["settings"]["bounded"] is True
    assert data["machine"]["cores"] >= 1 and data["machine"]["python"]
    assert "--no-nbgrader" in data["command"]
    cold = {c["tool"]: c for c in data["cold"]}
    assert set(cold) == {"grader"} and cold["grader"]["seconds"] > 0
    rows = {(r["tool"], r["workers"]): r for r in data["steady"]}
    assert set(rows) == {("grader", 1), ("nbclient", 1), ("nbgrader", 1)}
    for key in (("grader", 1), ("nbclient", 1)):
        row = rows[key]
        assert row["available"] and row["per_submission_s"] > 0 and row["throughput_per_min"] > 0
        assert row["peak_mib"] > 0 and row["total_s"] > 0
    assert rows[("grader", 1)]["detail"]["graded"] == 2  # the template: graded, with score 0
    assert all(score == 0 for score, _ in rows[("grader", 1)]["detail"]["scores"].values())
    assert not rows[("nbgrader", 1)]["available"] and "skipped" in rows[("nbgrader", 1)]["reason"]
    points = {(p["tool"], p["submissions"]): p for p in data["scaling"]}
    assert {("grader", 1), ("grader", 2), ("nbclient", 1), ("nbclient", 2)} <= set(points)
    assert points[("nbclient", 2)]["projected"] and not points[("grader", 2)]["projected"]

    assert (out / "compare.md").read_text().startswith("Command: `python bench/compare.py ")
    assert (out / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
