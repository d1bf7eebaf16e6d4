"""Reading a notebook is linear in its size and bounded by caps, whatever its shape.

Growth is checked by counting work, not by timing it: the profiler's events (every
Python and built-in call the reader makes) are deterministic, so a 4x larger notebook
must cost about 4x the events on any machine, however loaded. The quadratic reader this
replaced re-split the whole cell for every statement and made 16x the events.
Caps are exercised with the real limits where that is cheap, and lowered with
monkeypatch where a real-size notebook would only slow the suite down.
"""
from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

import grader.notebook.program as program_module
from grader.notebook import LoadError, extract_program, load_notebook, source_of
from grader.notebook.cells import _parse_cell
from grader.notebook.limits import MAX_CELL_CODE_CHARS, MAX_CELLS, MAX_CODE_CHARS

# How many lines of Python and calls (Python and built-in) a function runs: a measure of
# work that does not depend on the machine's speed or load. Work done inside one built-in
# call, such as a long string slice, is not seen: the benchmark times those shapes.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from extraction_bench import count_events as events  # noqa: E402

HAPPY = "def happyModel():\n    return 'graded'\n"


def one_cell_of_tiny_statements(n: int):
    return new_notebook(cells=[new_code_cell("\n".join(f"a{i} = {i}" for i in range(n)) + "\n" + HAPPY)])


def many_cells(n: int):
    return new_notebook(cells=[new_code_cell(f"import os\ndef f{i}():\n    return {i}\n") for i in range(n)])


def one_line_of_statements(n: int):
    return new_notebook(cells=[new_code_cell("; ".join(f"é{i} = 'ü'" for i in range(n)))])


def unparsable_definitions(n: int):
    return new_notebook(cells=[new_code_cell("def happyModel(:\n    pass\n" * n)])


def many_tagged_definitions(n: int):
    cells = [new_code_cell(f"def happyModel():\n    return {i}\n", metadata={"tags": ["happyModel"]}) for i in range(n)]
    return new_notebook(cells=cells)


def deep_blocks(n: int):
    body = "".join("    " * depth + "if x:\n" for depth in range(40)) + "    " * 40 + "pass\n"
    return new_notebook(cells=[new_code_cell("x = 1\n" + body * (n // 40 + 1))])


SHAPES = [one_cell_of_tiny_statements, many_cells, one_line_of_statements,
          unparsable_definitions, many_tagged_definitions, deep_blocks]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda shape: shape.__name__)
def test_extraction_work_grows_linearly(shape):
    small, large = shape(200), shape(800)
    ratio = events(extract_program, large, ["happyModel"]) / events(extract_program, small, ["happyModel"])
    assert ratio < 6, f"4x the notebook cost {ratio:.1f}x the work (linear is about 4x, quadratic 16x)"


@pytest.mark.parametrize("shape", [many_cells, many_tagged_definitions, one_cell_of_tiny_statements],
                         ids=lambda shape: shape.__name__)
def test_loading_work_grows_linearly(tmp_path, shape):
    paths = []
    for n in (100, 400):
        paths.append(tmp_path / f"{n}.ipynb")
        nbformat.write(shape(n), str(paths[-1]))
    small, large = (events(load_notebook, path) for path in paths)
    assert large / small < 6, f"4x the notebook cost {large / small:.1f}x the work to load"


# --- statement source, sliced without re-reading the cell ---------------------------------


TRICKY_CELLS = [
    "x = 'é'; y = 'ü'  # two on one line\nz = [1,\n     'ñ', 2]  ; w = 3\n",
    "@decorator\n@other(\n    'ß')\ndef f(a='€'):\n    return a\n",
    "class C:\n    '''doc é\n    more'''\n    x = 1\nimport os, sys as s\n",
    "if True:\n    pass\nv = '''multi\nline 🐍''' ; u = 1\n",
    "x = 1\n\fy = 2\n",
]


@pytest.mark.parametrize("source", TRICKY_CELLS)
def test_statement_source_is_exactly_what_ast_would_slice(source):
    cell = _parse_cell(0, source)
    assert cell.tree is not None, cell.problem
    for node in cell.tree.body:
        decorators = getattr(node, "decorator_list", [])
        if decorators:
            expected = source.split("\n")[decorators[0].lineno - 1 : node.end_lineno]
            expected[-1] = expected[-1].encode()[: node.end_col_offset].decode()
            assert cell.segment(node) == "\n".join(expected)
        else:
            assert cell.segment(node) == ast.get_source_segment(source, node)


# --- caps -----------------------------------------------------------------------------------


def write_json(tmp_path: Path, data, name="big.ipynb") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def raw_notebook(cells):
    return {"nbformat": 4, "nbformat_minor": 4, "metadata": {}, "cells": cells}


def raw_code(source: str):
    return {"cell_type": "code", "metadata": {}, "source": source, "outputs": [], "execution_count": None}


def test_too_many_cells_is_a_load_error_naming_the_count(tmp_path):
    path = write_json(tmp_path, raw_notebook([raw_code("x = 1")] * (MAX_CELLS + 1)))
    error = load_notebook(path)
    assert isinstance(error, LoadError), type(error)
    assert str(error).startswith(f"{path}: ") and "\n" not in str(error)
    assert f"{MAX_CELLS + 1:,} cells" in error.problem and f"{MAX_CELLS:,}" in error.problem


def test_too_much_code_is_a_load_error_naming_the_size(tmp_path):
    per_cell = "x = 1\n" * 20_000
    cells = [raw_code(per_cell)] * (MAX_CODE_CHARS // len(per_cell) + 1)
    path = write_json(tmp_path, raw_notebook(cells))
    error = load_notebook(path)
    assert isinstance(error, LoadError), type(error)
    assert "of code" in error.problem and "MB" in error.problem and "\n" not in str(error)


def test_a_notebook_just_under_the_caps_loads(tmp_path):
    path = write_json(tmp_path, raw_notebook([raw_code(HAPPY)] + [new_markdown_cell("text")] * (MAX_CELLS - 1)))
    nb = load_notebook(path)
    assert not isinstance(nb, LoadError), nb
    assert extract_program(nb, ["happyModel"]).located["happyModel"].cell == 0


def test_an_oversized_cell_is_skipped_and_the_rest_graded():
    pasted = "DATA = [" + "1, " * (MAX_CELL_CODE_CHARS // 3) + "]\n"
    prog = extract_program(new_notebook(cells=[new_code_cell(pasted), new_code_cell(HAPPY)]), ["happyModel"])
    assert prog.located["happyModel"].cell == 1
    assert [c.cell for c in prog.chunks] == [1]
    assert any(w.startswith("the cell starting `DATA = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1,...` skipped") and "KB" in w
               for w in prog.warnings), prog.warnings


def test_a_graded_definition_in_an_oversized_cell_says_why_it_is_missing():
    pasted = HAPPY + "DATA = [" + "1, " * (MAX_CELL_CODE_CHARS // 3) + "]\n"
    prog = extract_program(new_notebook(cells=[new_code_cell(pasted)]), ["happyModel"])
    assert "happyModel" not in prog.located
    reason = prog.missing["happyModel"]
    assert reason.startswith("the cell starting `def happyModel():` (which defines `happyModel`) was not read")
    assert "KB" in reason


def test_statement_cap_stops_at_a_cell_and_grades_what_came_before(monkeypatch):
    monkeypatch.setattr(program_module, "MAX_STATEMENTS", 50)
    nb = new_notebook(cells=[
        new_code_cell(HAPPY),
        new_markdown_cell("# Part 2"),
        new_code_cell("\n".join(f"a{i} = {i}" for i in range(60))),
        new_code_cell("def other():\n    return 1\n"),
    ])
    prog = extract_program(nb, ["happyModel", "other"])
    assert source_of(prog, "happyModel") == HAPPY.strip()
    assert [c.cell for c in prog.chunks] == [0]
    note = [w for w in prog.warnings if "not read" in w]
    unread = "the cell starting `a0 = 0` and the cells below it were not read"
    assert len(note) == 1 and note[0].startswith(unread) and "50" in note[0]
    assert "no cell defines `other`" in prog.missing["other"] and unread in prog.missing["other"]


def test_code_and_cell_caps_also_bound_notebooks_that_were_not_loaded_from_a_file(monkeypatch):
    monkeypatch.setattr(program_module, "MAX_CODE_CHARS", 100)
    cells = [new_code_cell(HAPPY)] + [new_code_cell("x = 1\n" * 10) for _ in range(3)]
    prog = extract_program(new_notebook(cells=cells), ["happyModel"])
    assert prog.located["happyModel"].cell == 0
    assert any(w.startswith("the 2nd cell starting `x = 1` and the cells below it were not read") and "of code" in w
               for w in prog.warnings), prog.warnings
    monkeypatch.setattr(program_module, "MAX_CELLS", 2)
    cells = [new_code_cell("x = 1") for _ in range(3)] + [new_code_cell(HAPPY)]
    reason = extract_program(new_notebook(cells=cells), ["happyModel"]).missing["happyModel"]
    assert "the 3rd cell starting `x = 1` and the cells below it were not read" in reason
    assert "more than the 2" in reason


def test_a_trailing_backslash_still_continues_the_line():
    """The scanner telling IPython lines from Python finds a continuation without
    re-reading the rest of the line at every backslash."""
    prog = extract_program(new_notebook(cells=[new_code_cell("x = 1 + \\\n    2\n%time y = 2\nz = 3\n")]), [])
    assert [c.source for c in prog.chunks] == ["x = 1 + \\\n    2", "z = 3"]
    assert prog.warnings == ()


# --- schema repairs cost what a clean notebook costs ---------------------------------------


def damaged_cells(damage: str, n: int = 150):
    cells = []
    for i in range(n):
        cell = raw_code(f"x{i} = {i}")
        if damage == "bad output":
            cell["outputs"] = [{"output_type": "stream", "name": "stdout"}]  # no 'text'
        elif damage == "unknown key":
            cell["vscode_extra"] = {"i": i}
        elif damage == "bad metadata":
            cell["metadata"] = {"collapsed": "yes", "jupyter": 3, "tags": ["t"]}
        cells.append(cell)
    nb = raw_notebook(cells)
    if damage == "bad notebook metadata":
        nb["metadata"] = {"kernelspec": {"name": 1}, "language_info": "python", "custom": True}
        nb["unknown_top_level_key"] = 1
    return nb


@pytest.mark.parametrize("damage", ["bad output", "unknown key", "bad metadata", "bad notebook metadata"])
def test_repairing_every_cell_costs_about_what_a_clean_notebook_costs(tmp_path, damage):
    """nbformat describes a damaged notebook with jsonschema, cell by cell through a
    `oneOf` of cell types, and the repair loop re-validated it each round: 4x to 18x the
    work of loading a clean notebook, about 3 ms per damaged cell."""
    clean = write_json(tmp_path, damaged_cells("none"), "clean.ipynb")
    damaged = write_json(tmp_path, damaged_cells(damage), "damaged.ipynb")
    load_notebook(clean)  # compiles the schema validators once, as any first notebook does
    nb = load_notebook(damaged)
    assert not isinstance(nb, LoadError), nb
    nbformat.validate(nb)
    assert len(nb.cells) == 150 and nb.cells[7].source == "x7 = 7"
    if damage == "bad metadata":
        assert nb.cells[0].metadata == {"tags": ["t"]}
    if damage == "bad notebook metadata":
        assert nb.metadata == {"custom": True}
    ratio = events(load_notebook, damaged) / events(load_notebook, clean)
    assert ratio < 2, f"the damaged notebook cost {ratio:.1f}x the work of a clean one"


def test_an_unrepairable_cell_is_described_from_that_cell(tmp_path):
    cells = [raw_code("x = 1") for _ in range(50)]
    cells[30] = {"cell_type": "markdown", "metadata": {}}  # no source
    error = load_notebook(write_json(tmp_path, raw_notebook(cells)))
    assert isinstance(error, LoadError), error
    assert "cell 31" in error.problem and "'source'" in error.problem


def test_hints_for_many_missing_exercises_walk_the_notebook_once():
    """Each missing exercise gets hints about near misses (a lambda, a class, a def
    indented inside a block); finding them walked every statement's whole tree once per
    missing exercise, so ten missing exercises cost ten walks of the notebook."""
    body = "".join(f"    v{i} = [x for x in range({i}) if x]\n" for i in range(60))
    cells = [new_code_cell(f"def helper{j}():\n{body}    return 1\n") for j in range(20)]
    cells.append(new_code_cell("if True:\n    def exercise_3():\n        pass\n"))
    nb = new_notebook(cells=cells)
    one = events(extract_program, nb, ["exercise_3"])
    ten = events(extract_program, nb, [f"exercise_{k}" for k in range(10)])
    assert ten / one < 3, f"ten missing exercises cost {ten / one:.1f}x the work of one"
    prog = extract_program(nb, [f"exercise_{k}" for k in range(10)])
    assert "indented inside an `if` block" in prog.missing["exercise_3"]


def test_too_many_json_objects_is_a_load_error_before_nbformat_copies_them(tmp_path):
    from grader.notebook.limits import MAX_JSON_CONTAINERS

    nb = raw_notebook([raw_code(HAPPY)])
    nb["metadata"]["widgets"] = [{}] * MAX_JSON_CONTAINERS
    path = write_json(tmp_path, nb)
    error = load_notebook(path)
    assert isinstance(error, LoadError), type(error)
    assert f"{MAX_JSON_CONTAINERS:,}" in error.problem and "outputs" in error.problem


def test_outputs_past_the_budget_are_dropped_and_the_notebook_graded(tmp_path):
    """Each output costs a schema check (three, in fact); 200,000 one-line outputs took
    35 s to load. Past the budget they are dropped, so more outputs cost less."""
    from grader.notebook.limits import MAX_OUTPUTS

    stream = {"output_type": "stream", "name": "stdout", "text": "epoch\n"}
    at_budget = raw_notebook([raw_code(HAPPY) | {"outputs": [stream] * MAX_OUTPUTS}])
    past = raw_notebook([raw_code(HAPPY) | {"outputs": [stream] * (4 * MAX_OUTPUTS)}])
    at_path, past_path = write_json(tmp_path, at_budget, "at.ipynb"), write_json(tmp_path, past, "past.ipynb")
    kept = load_notebook(at_path)
    assert len(kept.cells[0].outputs) == MAX_OUTPUTS  # within the budget, outputs stay
    dropped = load_notebook(past_path)
    assert not isinstance(dropped, LoadError), dropped
    assert dropped.cells[0].outputs == [] and dropped.cells[0].source == HAPPY
    assert extract_program(dropped, ["happyModel"]).located["happyModel"].cell == 0
    assert events(load_notebook, past_path) < events(load_notebook, at_path)
