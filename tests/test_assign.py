"""Master -> template: nothing secret reaches students, nothing needed is lost.

Most tests use the real conv_bn master, because that is what a mistake would leak. Small
hand-made notebooks cover the cases it does not contain (hidden cells, markdown answers,
nested indentation, malformed markers).
"""
from __future__ import annotations

import ast
import copy
import importlib.util
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # a checkout, not an installed package
    sys.path.insert(0, str(REPO))

from grader.authoring.assign import (  # noqa: E402
    BEGIN_SOLUTION, END_SOLUTION, MasterError, annotate, assign, checksum, edited_locked_cells,
    make_template, read_master,
)

ASSIGNMENT = REPO / "assignments" / "conv_bn"
MASTER_PY = ASSIGNMENT / "source" / "conv_bn.py"
MASTER_IPYNB = ASSIGNMENT / "source" / "conv_bn.ipynb"
EXERCISES = ["standardize", "batchnorm_forward", "happyModel", "convolutional_model"]


@pytest.fixture(scope="module")
def master():
    return read_master(MASTER_PY)


@pytest.fixture(scope="module")
def template(master):
    return make_template(master)


def _graded(nb):
    return [c for c in nb.cells if c.metadata.get("grader", {}).get("grade")]


def _solution_lines(nb):
    lines, inside = [], False
    for cell in nb.cells:
        for line in cell.source.split("\n"):
            if line.strip() == BEGIN_SOLUTION:
                inside = True
            elif line.strip() == END_SOLUTION:
                inside = False
            elif inside and line.strip():
                lines.append(line.strip())
    return lines


# --- the real master -------------------------------------------------------------------


def test_template_contains_no_solution_text(master, template):
    solution = _solution_lines(master)
    assert len(solution) > 20
    code_lines = {line.strip() for c in template.cells if c.cell_type == "code" for line in c.source.split("\n")}
    leaked = [line for line in solution if len(line) >= 10 and line in code_lines]
    assert not leaked, f"solution lines in the template: {leaked}"
    everything = "\n".join(c.source for c in template.cells)
    assert BEGIN_SOLUTION not in everything and END_SOLUTION not in everything


def test_each_graded_cell_is_a_parseable_stub(template):
    graded = _graded(template)
    assert [c.metadata["grader"]["exercise"] for c in graded] == EXERCISES
    for cell in graded:
        assert "raise NotImplementedError()" in cell.source and "# YOUR CODE HERE" in cell.source
        tree = ast.parse(cell.source)
        assert [n.name for n in tree.body if isinstance(n, ast.FunctionDef)] == [cell.metadata["grader"]["exercise"]]


def test_graded_cells_keep_their_tags(master, template):
    master_tags = [c.metadata["tags"] for c in master.cells if c.cell_type == "code" and c.metadata.get("tags")]
    assert master_tags == [[name] for name in EXERCISES]
    assert [c.metadata.get("tags") for c in _graded(template)] == master_tags
    # The written answer cells keep theirs too: it is how their answers are found.
    answer_tags = [c.metadata["tags"] for c in master.cells if c.cell_type == "markdown" and c.metadata.get("tags")]
    assert answer_tags == [["written:why_bn_after_conv"], ["written:standardize_inputs"]]
    assert [c.metadata.get("tags") for c in template.cells if c.cell_type == "markdown" and c.metadata.get("tags")] \
        == answer_tags


def test_every_other_code_cell_is_locked_with_its_checksum(template):
    for cell in template.cells:
        info = cell.metadata.get("grader")
        if cell.cell_type != "code":
            assert info is None
        elif not info.get("grade"):
            assert info == {"locked": True, "checksum": checksum(cell.source)}


def test_outputs_and_execution_counts_are_cleared(master):
    executed = copy.deepcopy(master)
    for n, cell in enumerate(c for c in executed.cells if c.cell_type == "code"):
        cell.execution_count = n + 1
        cell.outputs = [new_output("stream", name="stdout", text="the answer is 42\n")]
    template = make_template(executed)
    code = [c for c in template.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)


def test_template_is_valid_and_drops_authoring_metadata(template):
    nbformat.validate(template)
    assert "jupytext" not in template.metadata
    assert template.metadata["kernelspec"]["name"] == "python3"
    assert template.metadata["grader"] == {"assignment": "conv_bn"}  # how check() finds the assignment
    assert not any("lines_to_next_cell" in c.metadata for c in template.cells)


def test_annotate_keeps_solutions_but_labels_cells(master):
    solved = annotate(master)
    assert [c.metadata["grader"]["exercise"] for c in _graded(solved)] == EXERCISES
    assert BEGIN_SOLUTION in _graded(solved)[0].source
    assert edited_locked_cells(solved) == []


# --- locked cells ----------------------------------------------------------------------


def test_edited_locked_cells_reports_an_edit(template):
    student = copy.deepcopy(template)
    assert edited_locked_cells(student) == []
    locked = [i for i, c in enumerate(student.cells) if c.metadata.get("grader", {}).get("locked")]
    student.cells[locked[2]].source += "\nX_train = X_train[:10]"
    assert edited_locked_cells(student) == [locked[2]]


def test_edited_locked_cells_ignores_graded_cells_and_whitespace(template):
    student = copy.deepcopy(template)
    graded = _graded(student)[0]
    graded.source = graded.source.replace("raise NotImplementedError()", "return X_train, X_test")
    locked = next(c for c in student.cells if c.metadata.get("grader", {}).get("locked"))
    locked.source = locked.source.replace("\n", "\r\n") + "   \n\n"
    assert edited_locked_cells(student) == []


# --- percent .py and .ipynb masters, assign() -------------------------------------------


def test_py_and_ipynb_masters_give_the_same_template():
    from_py = make_template(read_master(MASTER_PY))
    from_ipynb = make_template(read_master(MASTER_IPYNB))
    assert nbformat.writes(from_py) == nbformat.writes(from_ipynb)


def test_assign_writes_the_template(tmp_path):
    out_py = assign(MASTER_PY, tmp_path / "from_py")
    out_ipynb = assign(MASTER_IPYNB, tmp_path / "from_ipynb")
    assert out_py.name == out_ipynb.name == "conv_bn.ipynb"
    assert out_py.read_text() == out_ipynb.read_text()
    assert _graded(nbformat.read(out_py, as_version=4))


def test_assign_rejects_other_file_types(tmp_path):
    other = tmp_path / "master.txt"
    other.write_text("print('hi')")
    with pytest.raises(MasterError, match="master.txt"):
        assign(other, tmp_path)


# --- cases the real master does not contain --------------------------------------------


def _tagged(source, *tags):
    cell = new_code_cell(source)
    cell.metadata["tags"] = list(tags)
    return cell


def test_hidden_cells_and_regions_are_removed():
    master = new_notebook(cells=[
        _tagged("def f(x):\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION", "f"),
        _tagged("assert f(1) == 2  # secret", "hidden"),
        new_code_cell("### BEGIN HIDDEN TESTS\nassert f(41) == 42\n### END HIDDEN TESTS"),
        new_code_cell("assert f(0) == 1\n### BEGIN HIDDEN TESTS\nassert f(-1) == 0\n### END HIDDEN TESTS\nprint('ok')"),
    ])
    template = make_template(master)
    text = "\n".join(c.source for c in template.cells)
    assert "secret" not in text and "41" not in text and "f(-1)" not in text and "HIDDEN" not in text
    assert [c.source for c in template.cells[1:]] == ["assert f(0) == 1\nprint('ok')"]
    assert template.cells[1].metadata["grader"]["locked"]


def test_stub_takes_the_region_indentation():
    source = ("def g(xs):\n    total = 0\n    for x in xs:\n        ### BEGIN SOLUTION\n"
              "        total += x * x\n        ### END SOLUTION\n    return total")
    template = make_template(new_notebook(cells=[_tagged(source, "g")]))
    stub = template.cells[0].source
    assert "        # YOUR CODE HERE\n        raise NotImplementedError()\n    return total" in stub
    ast.parse(stub)


def test_markdown_answers_are_replaced():
    answer = new_markdown_cell("Why?\n\n### BEGIN SOLUTION\nBecause the valley is round.\n### END SOLUTION")
    template = make_template(new_notebook(cells=[answer]))
    assert template.cells[0].source == "Why?\n\nYOUR ANSWER HERE"
    assert "grader" not in template.cells[0].metadata


def test_exercise_name_is_the_tag_naming_a_defined_function():
    cell = _tagged("import numpy as np\n\ndef h():\n    ### BEGIN SOLUTION\n    pass\n    ### END SOLUTION", "week2", "h")
    graded = make_template(new_notebook(cells=[cell])).cells[0]
    assert graded.metadata["grader"] == {"grade": True, "exercise": "h"}
    assert graded.metadata["tags"] == ["week2", "h"]


@pytest.mark.parametrize("source, problem", [
    ("def f():\n    ### BEGIN SOLUTION\n    return 1", "never closed"),
    ("def f():\n    return 1\n    ### END SOLUTION", "no '### BEGIN SOLUTION'"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION", "inside"),
])
def test_malformed_markers_name_the_cell(source, problem):
    master = new_notebook(cells=[new_markdown_cell("intro"), _tagged(source, "f")])
    with pytest.raises(MasterError, match=rf"cell 1.*{problem}"):
        make_template(master)


def test_a_solution_without_a_tag_is_an_error():
    master = new_notebook(cells=[new_code_cell("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION")])
    with pytest.raises(MasterError, match="no tag"):
        make_template(master)


# --- build.py --------------------------------------------------------------------------


def _load_build():
    spec = importlib.util.spec_from_file_location("conv_bn_build", ASSIGNMENT / "build.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def _comparable(nb):
    return (dict(nb.metadata),
            [(c.cell_type, c.get("id"), c.source, dict(c.metadata)) for c in nb.cells])


def test_build_outputs_are_up_to_date(tmp_path):
    written = _load_build().build(tmp_path)
    assert len(written) >= 12
    for fresh in written:
        committed = ASSIGNMENT / fresh.relative_to(tmp_path)
        assert committed.exists(), f"{committed} is missing: run python assignments/conv_bn/build.py"
        if fresh.suffix == ".ipynb":
            same = _comparable(nbformat.read(fresh, as_version=4)) == _comparable(nbformat.read(committed, as_version=4))
        else:
            same = fresh.read_bytes() == committed.read_bytes()
        assert same, f"{committed.relative_to(REPO)} is stale: run python assignments/conv_bn/build.py"


def test_release_template_equals_make_template(master):
    released = nbformat.read(ASSIGNMENT / "release" / "conv_bn.ipynb", as_version=4)
    assert _comparable(released) == _comparable(make_template(master))
    assert (ASSIGNMENT / "release" / "faces.py").read_bytes() == (ASSIGNMENT / "faces.py").read_bytes()
