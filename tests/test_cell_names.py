"""Cells are named as a person finds them in the notebook they have open: "cell In [12]"
(the execution count beside it, when no other cell shows the same one) or "the cell
starting `def happyModel():`", never a count of cells that includes markdown. The name is
made where cells are read, so every message, chunk label and layer location carries it."""
from __future__ import annotations

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_raw_cell

from grader.notebook import extract_program
from grader.notebook.cellnames import cell_names, first_line, ordinal, split_label

HAPPY = "def happyModel():\n    return 1\n"


def test_a_saved_execution_count_names_its_cell_and_markdown_is_not_counted():
    cells = [new_markdown_cell("# Exercise 1"), new_code_cell("\nimport numpy as np", execution_count=3),
             new_markdown_cell("Write happyModel"), new_code_cell(HAPPY, execution_count=12)]
    assert cell_names(cells) == ["the cell starting `# Exercise 1`", "cell In [3]",
                                 "the cell starting `Write happyModel`", "cell In [12]"]


def test_a_count_two_cells_show_names_neither_and_they_fall_back_to_their_first_lines():
    """A kernel restarted and cells run again: two cells both show [3] on screen."""
    cells = [new_code_cell("import os", execution_count=3), new_code_cell(HAPPY, execution_count=3),
             new_code_cell("x = 1", execution_count=4)]
    assert cell_names(cells) == ["the cell starting `import os`", "the cell starting `def happyModel():`",
                                 "cell In [4]"]


def test_cells_that_start_alike_are_told_apart_by_their_place_among_them():
    cells = [new_code_cell("from grader import check\ncheck('a')"), new_code_cell(HAPPY),
             new_code_cell("from grader import check\ncheck('b')"),
             new_code_cell("from grader import check", execution_count=7)]
    assert cell_names(cells) == ["the 1st cell starting `from grader import check`",
                                 "the cell starting `def happyModel():`",
                                 "the 2nd cell starting `from grader import check`", "cell In [7]"]


def test_an_empty_cell_and_a_count_that_is_no_count():
    cells = [new_code_cell("   \n"), new_raw_cell("raw text"), {"cell_type": "code", "source": "y = 2",
                                                                  "execution_count": True}]
    assert cell_names(cells) == ["the 1st cell", "the cell starting `raw text`", "the cell starting `y = 2`"]
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th"]


def test_a_first_line_is_cut_before_what_a_name_cannot_hold():
    """A double quote would end the `File "..."` a traceback is read by, a backtick the quote
    around the line; a long line is cut where it still reads."""
    assert first_line('x = np.load("data.npy")\n') == "x = np.load(..."
    assert first_line("### Exercise 4: `convolutional_model`") == "### Exercise 4:..."
    assert first_line("  \n\n  # GRADED FUNCTION: happyModel  \nmore") == "# GRADED FUNCTION: happyModel"
    assert first_line("X_train, y_train, X_test, y_test = load_dataset()") == "X_train, y_train, X_test, y_test = lo..."
    assert first_line(["s = '\ud800'\n", None]) == "s = '..."
    assert first_line('"""Exercise 1: happyModel"""') == "'''Exercise 1: happyModel'''"  # quoted otherwise
    assert first_line("\x1b[31m") == ""


def test_a_label_is_split_into_the_cells_name_and_the_function_it_defines():
    assert split_label("cell In [12] [happyModel]") == ("cell In [12]", "happyModel")
    assert split_label("cell In [12]") == ("cell In [12]", "")
    assert split_label("the cell starting `x = a[0]` [f]") == ("the cell starting `x = a[0]`", "f")
    assert split_label("the cell starting `import os`") == ("the cell starting `import os`", "")


def test_extraction_names_cells_in_chunk_labels_warnings_and_reasons():
    nb = new_notebook(cells=[
        new_markdown_cell("# Title"),
        new_code_cell("import numpy as np", execution_count=1),
        new_code_cell(HAPPY, execution_count=5),
        new_code_cell("def happyModel():\n    return 2\n", execution_count=None),
        new_code_cell("print 'python 2'", execution_count=2),
        new_markdown_cell("def other():\n    pass"),
    ])
    prog = extract_program(nb, ["happyModel", "other"])
    assert [c.label for c in prog.chunks] == ["cell In [1]", "the 2nd cell starting `def happyModel():` [happyModel]"]
    assert prog.warnings == (
        "cell In [2] skipped: it does not parse (Missing parentheses in call to 'print'. Did you mean print(...)? "
        "at line 1: `print 'python 2'`)",
        "`happyModel` is defined 2 times; grading the last one, the 2nd cell starting `def happyModel():` (line 1), "
        "and ignoring cell In [5] (line 1)",
    )
    assert prog.missing["other"].endswith(
        "the cell starting `def other():` contains `def other` but is a markdown cell; change its type to Code")


def test_a_saved_file_keeps_its_counts_through_loading(tmp_path):
    from grader.notebook import load_notebook
    path = tmp_path / "nb.ipynb"
    nbformat.write(new_notebook(cells=[new_markdown_cell("# x"), new_code_cell(HAPPY, execution_count=9)]), path)
    prog = extract_program(load_notebook(path), ["happyModel"])
    assert [c.label for c in prog.chunks] == ["cell In [9] [happyModel]"]
