"""Reading submissions and choosing what runs, on real notebook files.

Messages are checked for the words a student needs (which file, what is wrong, where),
not for exact sentences, so wording can improve without rewriting the tests.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader.notebook import (
    Chunk,
    LoadError,
    Located,
    Program,
    code_cells,
    extract_program,
    load_notebook,
    source_of,
)

HAPPY = "def happyModel():\n    return 'graded'\n"


def notebook(*cells):
    """Cells given as source strings, (source, tags) pairs, or ready-made cells."""
    built = []
    for cell in cells:
        if isinstance(cell, tuple):
            source, tags = cell
            built.append(new_code_cell(source, metadata={"tags": list(tags)}))
        elif isinstance(cell, str):
            built.append(new_code_cell(cell))
        else:
            built.append(cell)
    return new_notebook(cells=built)


def write(tmp_path: Path, nb, name: str = "submission.ipynb") -> Path:
    path = tmp_path / name
    nbformat.write(nb, str(path))
    return path


def write_bytes(tmp_path: Path, data: bytes, name: str = "submission.ipynb") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def program(*cells, exercises=("happyModel",)) -> Program:
    return extract_program(notebook(*cells), exercises)


def sources(prog: Program) -> list[str]:
    return [c.source for c in prog.chunks]


def assert_names(error, path, *words):
    assert isinstance(error, LoadError), error
    text = str(error)
    assert text.startswith(f"{path}: "), text
    assert "\n" not in text
    assert "Traceback" not in text
    for word in words:
        assert word.lower() in text.lower(), f"{word!r} not in {text!r}"


# --- loading ----------------------------------------------------------------------------


def test_valid_notebook_loads_as_v4(tmp_path):
    path = write(tmp_path, notebook(HAPPY))
    nb = load_notebook(path)
    assert isinstance(nb, nbformat.NotebookNode)
    assert nb.nbformat == 4
    assert nb.cells[0].source == HAPPY


def test_accepts_str_and_pathlike(tmp_path):
    path = write(tmp_path, notebook(HAPPY))
    assert isinstance(load_notebook(str(path)), nbformat.NotebookNode)
    assert isinstance(load_notebook(path), nbformat.NotebookNode)


GOOD = nbformat.writes(notebook(HAPPY, "x = 1\n" * 20))

BAD_INPUTS = {
    "empty": (b"", ["empty", "0 bytes"]),
    "whitespace": (b"  \n\n", ["whitespace"]),
    "not_json": (b'{"cells": [1 2]}', ["not valid JSON", "line 1", "column 14", "delimiter"]),
    "truncated": (GOOD.encode()[: len(GOOD) // 2], ["truncated", f"byte {len(GOOD) // 2}"]),
    "truncated_in_string": (b'{"cells": [{"source": "def happ', ["truncated"]),
    "not_a_notebook": (b'{"name": "x", "version": 1}', ["JSON", "not a Jupyter notebook", "'cells'"]),
    "json_list": (b"[1, 2, 3]", ["not a Jupyter notebook", "list"]),
    "missing_cells": (b'{"nbformat": 4, "nbformat_minor": 5, "metadata": {}}', ["missing", "'cells'"]),
    "cells_not_list": (b'{"nbformat": 4, "cells": {}}', ["'cells'", "not a list"]),
    "not_utf8": ('{"cells": [], "x": "café"}'.encode("latin-1"), ["not UTF-8", "0xe9", "position 23"]),
    "html_page": (b"<!DOCTYPE html>\n<html><body>notebook</body></html>", ["HTML", "not a notebook"]),
    "python_script": (b"# %%\nimport numpy as np\n", ["Python script", "not a Jupyter notebook"]),
    "merge_conflict": (
        b'{\n<<<<<<< HEAD\n "cells": []\n=======\n "cells": [1]\n>>>>>>> b\n}',
        ["merge", "line 2"],
    ),
    "two_notebooks": (GOOD.encode() + GOOD.encode(), ["extra", "line"]),
    "zip": (b"PK\x03\x04\x14\x00rest", ["zip", "not a Jupyter notebook"]),
    "future_version": (b'{"nbformat": 5, "nbformat_minor": 0, "cells": []}', ["version 5", "cannot read"]),
    "unknown_cell_type": (
        json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {},
                    "cells": [{"cell_type": "banana", "id": "a", "source": "", "metadata": {}}]}).encode(),
        ["notebook format", "cell 1", "banana"],
    ),
    "cell_without_source": (
        json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
            {"cell_type": "code", "id": "a", "metadata": {}, "outputs": [], "execution_count": None},
        ]}).encode(),
        ["notebook format", "cell 1", "'source'"],
    ),
    "cell_not_object": (
        b'{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": ["x = 1"]}',
        ["cell 1", "not an object"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_a_value_naming_file_and_problem(tmp_path, case):
    data, words = BAD_INPUTS[case]
    path = write_bytes(tmp_path, data, f"{case}.ipynb")
    assert_names(load_notebook(path), path, *words)


def test_directory_named_like_a_notebook(tmp_path):
    path = tmp_path / "x.ipynb"
    path.mkdir()
    assert_names(load_notebook(path), path, "directory")


def test_nonexistent_path(tmp_path):
    path = tmp_path / "nope.ipynb"
    assert_names(load_notebook(path), path, "does not exist")


def test_path_through_a_file(tmp_path):
    parent = write_bytes(tmp_path, b"{}", "file")
    path = parent / "x.ipynb"
    assert_names(load_notebook(path), path, "does not exist")


def test_dangling_symlink(tmp_path):
    path = tmp_path / "link.ipynb"
    path.symlink_to(tmp_path / "gone.ipynb")
    assert_names(load_notebook(path), path, "symbolic link", "does not exist")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads anything")
def test_unreadable_file(tmp_path):
    path = write(tmp_path, notebook(HAPPY))
    path.chmod(0)
    try:
        assert_names(load_notebook(path), path, "not readable", "permission denied")
    finally:
        path.chmod(0o600)


def test_never_raises_on_damaged_files(tmp_path):
    """Cut and corrupt a real notebook at many points: every result is a value."""
    nb = notebook(("def happyModel():\n    return 1\n", ["happyModel"]), "%matplotlib inline")
    raw = nbformat.writes(nb).encode()
    variants = [raw[:n] for n in range(1, len(raw), 7)]
    variants += [raw[:n] + b"\xff" + raw[n + 1 :] for n in range(0, len(raw), 11)]
    variants += [raw.replace(b'"cells"', b'"cels"'), raw.replace(b'"source"', b'"sorce"')]
    variants += [b"[" * 50000, b"null", b"1", b'{"cells": [{"cell_type": "code", "source": 1}]}']
    for i, data in enumerate(variants):
        result = load_notebook(write_bytes(tmp_path, data, f"v{i}.ipynb"))
        assert isinstance(result, (LoadError, nbformat.NotebookNode))
        if isinstance(result, LoadError):
            assert "\n" not in str(result) and str(result).startswith(str(tmp_path))


def test_nbformat3_notebook_is_converted_and_graded(tmp_path, capfd):
    v3 = {
        "nbformat": 3,
        "nbformat_minor": 0,
        "metadata": {"name": "old"},
        "worksheets": [
            {
                "metadata": {},
                "cells": [
                    {"cell_type": "heading", "level": 1, "source": "Week 1", "metadata": {}},
                    {"cell_type": "code", "language": "python", "collapsed": False, "metadata": {},
                     "input": "import math\n" + HAPPY, "outputs": [], "prompt_number": 3},
                ],
            }
        ],
    }
    path = write_bytes(tmp_path, json.dumps(v3).encode())
    nb = load_notebook(path)
    assert isinstance(nb, nbformat.NotebookNode), nb
    assert nb.nbformat == 4 and "worksheets" not in nb
    assert [c.cell_type for c in nb.cells] == ["markdown", "code"]
    prog = extract_program(nb, ["happyModel"])
    assert prog.located["happyModel"] == Located("happyModel", 1, "def", 2)
    assert sources(prog) == ["import math", HAPPY.strip()]
    assert capfd.readouterr().err == ""


def test_cosmetic_problems_are_repaired_not_rejected(tmp_path):
    """Old Jupyter wrote no cell ids; other front ends write odd metadata and outputs."""
    raw = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": {"unexpected": True}},
        "cells": [
            {"cell_type": "code", "source": ["def happyModel():\n", "    return 1\n"],
             "metadata": {"tags": ["happyModel", "happyModel"]}, "execution_count": None,
             "outputs": [{"output_type": "stream", "text": "no 'name' field"}]},
            {"cell_type": "markdown", "source": "text", "metadata": {}, "attachments": {"a.png": 3}},
            {"cell_type": "code", "source": "x = 1"},
            {"cell_type": "code", "source": "y = 2", "id": "not a valid id!", "metadata": {}, "outputs": [7],
             "execution_count": "one", "vscode_extra": True},
        ],
        "unknown_top_level_key": 1,
    }
    nb = load_notebook(write_bytes(tmp_path, json.dumps(raw).encode()))
    assert isinstance(nb, nbformat.NotebookNode), nb
    nbformat.validate(nb)
    assert all(cell.get("id") for cell in nb.cells)
    assert len({cell.id for cell in nb.cells}) == 4
    assert nb.cells[0].source == "def happyModel():\n    return 1\n"
    assert nb.cells[0].metadata.tags == ["happyModel"]
    assert extract_program(nb, ["happyModel"]).located["happyModel"].how == "tag"


def test_utf8_bom_and_utf16_are_read(tmp_path):
    text = nbformat.writes(notebook(HAPPY))
    for name, data in {"bom": b"\xef\xbb\xbf" + text.encode(), "utf16": text.encode("utf-16")}.items():
        nb = load_notebook(write_bytes(tmp_path, data, f"{name}.ipynb"))
        assert isinstance(nb, nbformat.NotebookNode), nb
        assert nb.cells[0].source == HAPPY


# --- locating graded code ---------------------------------------------------------------


def test_tagged_definition_is_located():
    prog = program("import numpy as np", ("x = 1\n\n" + HAPPY, ["happyModel"]))
    assert prog.located == {"happyModel": Located("happyModel", 1, "tag", 3)}
    assert prog.missing == {}
    assert prog.warnings == ()
    assert source_of(prog, "happyModel") == HAPPY.strip()


@pytest.mark.parametrize(
    "metadata",
    [{"nbgrader": {"grade_id": "happyModel", "solution": True}}, {"tags": ["exercise:happyModel"]}],
    ids=["nbgrader", "otter"],
)
def test_other_tagging_conventions(metadata):
    prog = program(new_code_cell(HAPPY, metadata=metadata), "def happyModel():\n    return 'later'\n")
    assert prog.located["happyModel"].how == "tag"
    assert prog.located["happyModel"].cell == 0
    assert "graded" in source_of(prog, "happyModel")


def test_missing_tag_falls_back_to_last_def_with_warning():
    prog = program(
        ("def other():\n    pass\n", ["other"]),
        "def happyModel():\n    return 'first'\n",
        "def happyModel():\n    return 'last'\n",
        exercises=("happyModel", "other"),
    )
    assert prog.located["happyModel"] == Located("happyModel", 2, "def", 1)
    assert "last" in source_of(prog, "happyModel")
    # Two cells start alike: each is told apart by its place among them.
    assert prog.warnings == (
        "`happyModel` found in the 2nd cell starting `def happyModel():` by name; its 'happyModel' tag is missing",
        "`happyModel` is defined 2 times; grading the last one, the 2nd cell starting `def happyModel():` "
        "(line 1), and ignoring the 1st cell starting `def happyModel():` (line 1)")


def test_notebook_without_any_tags_gets_no_tag_warnings():
    prog = program("def helper():\n    pass\n", HAPPY)
    assert prog.located["happyModel"].how == "def"
    assert not any("tag" in w for w in prog.warnings)


def test_tag_on_a_cell_without_the_def_is_reported():
    prog = program(("# YOUR CODE HERE\n", ["happyModel"]), HAPPY)
    assert prog.located["happyModel"] == Located("happyModel", 1, "def", 1)
    assert prog.warnings == ("the cell starting `# YOUR CODE HERE` is tagged 'happyModel' but does not define it; "
                             "grading `def happyModel` found by name in the cell starting `def happyModel():`",)


def test_tagged_definition_beats_a_later_one_which_is_dropped():
    prog = program(
        ("def happyModel():\n    return 'tagged'\n", ["happyModel"]),
        "model = happyModel()",
        "def happyModel():\n    return 'stale'\n",
    )
    defs = [c for c in prog.chunks if c.kind == "def"]
    assert len(defs) == 1 and "tagged" in defs[0].source
    assert prog.located["happyModel"].cell == 0
    assert ("`happyModel` is defined 2 times; grading the tagged one, the 1st cell starting `def happyModel():` "
            "(line 1), and ignoring the 2nd cell starting `def happyModel():` (line 1)") in prog.warnings


def test_last_untagged_definition_wins_and_earlier_is_dropped():
    prog = program("def happyModel():\n    return 'old'\n", "def happyModel():\n    return 'new'\n")
    defs = [c for c in prog.chunks if c.kind == "def"]
    assert [d.cell for d in defs] == [1]
    assert "new" in source_of(prog, "happyModel")


def test_other_rebindings_of_the_graded_name_are_dropped():
    prog = program(
        (HAPPY, ["happyModel"]),
        "happyModel = None\nclass happyModel:\n    pass\nfrom solutions import happyModel\nimport os\n",
    )
    assert sources(prog) == [HAPPY.strip(), "import os"]
    assert sum("would replace" in w for w in prog.warnings) == 3


def test_helpers_are_kept_in_notebook_order():
    prog = program("def helper():\n    return 1\n", (HAPPY, ["happyModel"]), "def helper():\n    return 2\n")
    assert [(c.cell, c.label) for c in prog.chunks] == [
        (0, "the 1st cell starting `def helper():` [helper]"),
        (1, "the cell starting `def happyModel():` [happyModel]"),
        (2, "the 2nd cell starting `def helper():` [helper]"),
    ]


def test_exercise_names_may_be_a_single_string():
    prog = extract_program(notebook(HAPPY), "happyModel")
    assert list(prog.located) == ["happyModel"]


def test_missing_exercise_reason():
    prog = program("x = 1", exercises=("happyModel",))
    reason = prog.missing["happyModel"]
    assert "happyModel" in reason and "no cell" in reason and "def happyModel" in reason
    assert source_of(prog, "happyModel") == ""


def test_a_class_is_an_exercise_too():
    """PyTorch assignments grade `class ConvolutionalModel(nn.Module)`: tagged or found by name."""
    prog = program(("class happyModel:\n    pass\n", ["happyModel"]))
    assert list(prog.located) == ["happyModel"] and not prog.missing
    assert [c.label for c in prog.chunks] == ["the cell starting `class happyModel:` [happyModel]"]


def test_lambda_is_not_accepted_and_says_why():
    prog = program(("happyModel = lambda: 1\n", ["happyModel"]))
    reason = prog.missing["happyModel"]
    assert "lambda" in reason and "def happyModel" in reason
    assert "the cell starting `happyModel = lambda: 1` (line 1) assigns a lambda" in reason
    assert prog.chunks == ()


@pytest.mark.parametrize(
    ("cells", "words"),
    [
        (["if True:\n    def happyModel():\n        pass\n"],
         ["the cell starting `if True:` (line 2)", "indented", "`if` block"]),
        (["from my_solution import happyModel\n"], ["imports"]),
        ([new_markdown_cell("def happyModel():\n    pass")], ["markdown", "Code"]),
        (["def happymodel():\n    pass\n"], ["rename", "happymodel"]),
    ],
    ids=["nested", "imported", "markdown", "renamed"],
)
def test_missing_exercise_hints(cells, words):
    reason = program(*cells).missing["happyModel"]
    for word in words:
        assert word in reason, reason


# --- IPython syntax ---------------------------------------------------------------------


def test_line_magics_and_shell_commands_become_pass():
    prog = program(
        "%matplotlib inline\n!pip install x\nimport numpy as np\nfiles = !ls\nnp.zeros?\n",
        (HAPPY, ["happyModel"]),
    )
    assert sources(prog) == ["import numpy as np", HAPPY.strip()]
    assert prog.chunks[0].line == 3
    assert prog.warnings == ()


def test_magic_inside_a_function_keeps_line_numbers():
    src = "def happyModel():\n    %time x = 1\n    !echo hi\n    return x\n"
    prog = program((src, ["happyModel"]))
    assert prog.chunks[0].source == "def happyModel():\n    pass\n    pass\n    return x"


def test_percent_and_bang_that_are_python_are_untouched():
    src = (
        'def happyModel():\n'
        '    """Docs\n'
        '    !important\n'
        '    % not a magic\n'
        '    """\n'
        '    return ("%d"\n'
        '            % 3)\n'
    )
    prog = program((src, ["happyModel"]))
    assert prog.chunks[0].source == src.strip()


def test_cell_magic_cell_is_skipped():
    prog = program("%%time\nimport os\nmodel.fit(x)\n", (HAPPY, ["happyModel"]))
    assert sources(prog) == [HAPPY.strip()]
    assert prog.warnings == ()


def test_cell_magic_around_the_graded_def_is_explained():
    prog = program("%%time\n" + HAPPY)
    reason = prog.missing["happyModel"]
    assert reason.startswith("the cell starting `%%time` defines `happyModel` but starts with the cell magic `%%time`")
    prog = program("%%time\n" + HAPPY, (HAPPY, ["happyModel"]))
    assert prog.located["happyModel"].cell == 1
    assert any(w.startswith("the cell starting `%%time` skipped: it starts with the cell magic `%%time`")
               for w in prog.warnings)


# --- what runs --------------------------------------------------------------------------


def test_training_and_plotting_are_skipped():
    prog = program(
        (HAPPY, ["happyModel"]),
        "model = happyModel()\nmodel.compile('adam')\nmodel.fit(X, Y, epochs=40)\n"
        "for i in range(3):\n    print(i)\nwith open('f') as f:\n    pass\n"
        "plt.plot(history)\nplt.show()\nget_ipython().run_line_magic('time', '')\n"
        "if __name__ == '__main__':\n    import os\n",
    )
    assert sources(prog) == [HAPPY.strip()]
    assert prog.skipped == 9


def test_imports_are_one_chunk_per_statement():
    prog = program(
        "import numpy as np; import os\nfrom tensorflow.keras import (\n    layers,\n    models,\n)\nimport a.b.c\n"
    )
    assert sources(prog) == [
        "import numpy as np",
        "import os",
        "from tensorflow.keras import (\n    layers,\n    models,\n)",
        "import a.b.c",
    ]
    assert [c.line for c in prog.chunks] == [1, 1, 2, 6]
    assert {c.kind for c in prog.chunks} == {"import"}


def test_future_imports_are_reported_not_run():
    prog = program("from __future__ import annotations\nimport os\n")
    assert sources(prog) == ["import os"]
    assert prog.future == ("annotations",)


KEPT = [
    "LR = 1e-3",
    "N = 2**10",
    "SHAPE = (64, 64, 3)",
    "NEG = -1",
    "SCALE = -1 / 255.0",
    "NAMES = ['a', 'b']",
    "CFG = {'units': [32, 64], 'act': None}",
    "A, (B, C) = 1, (2, 3)",
    "X = Y = 'same'",
    "EPOCHS: int = 40",
    "DTYPE = np.float32",
    "ACT = tf.keras.activations.relu",
]
SKIPPED = [
    "x = load_data()",
    "y = np.zeros(3)",
    "z = 2**10**10",
    "s = 'a' * 10",
    "t = [i for i in range(3)]",
    "a[0] = 1",
    "obj.attr = 1",
    "n += 1",
    "W = undefined_module.attr",
    "P = np.pi * 2",
    "f = lambda x: x",
    "u: int",
]


def test_constant_assignments_kept_others_skipped():
    prog = program("import numpy as np\nimport tensorflow as tf\n" + "\n".join(KEPT + SKIPPED))
    assert sources(prog) == ["import numpy as np", "import tensorflow as tf"] + KEPT
    assert {c.kind for c in prog.chunks[2:]} == {"assign"}
    assert prog.skipped == len(SKIPPED)


def test_module_attribute_needs_an_earlier_import():
    prog = program("DTYPE = np.float32", "import numpy as np")
    assert sources(prog) == ["import numpy as np"]


def test_decorated_and_async_defs_and_classes_are_kept():
    src = (
        "@decorator\n@other(1)\ndef happyModel():\n    pass\n\n"
        "async def fetch():\n    pass\n\n"
        "class Net(Base):\n    x = 1\n"
    )
    prog = program((src, ["happyModel"]))
    assert [(c.kind, c.line, c.label) for c in prog.chunks] == [
        ("def", 1, "the cell starting `@decorator` [happyModel]"),
        ("def", 6, "the cell starting `@decorator` [fetch]"),
        ("class", 9, "the cell starting `@decorator` [Net]"),
    ]
    assert prog.chunks[0].source == "@decorator\n@other(1)\ndef happyModel():\n    pass"
    assert prog.located["happyModel"].line == 1


def test_chunk_sources_and_lines_are_exact():
    src = (
        "# setup\nimport os\n\ns = 'héllo'; k = 2  # comment\n\n\n"
        "def happyModel(\n    a,\n):\n    return a  # done\n"
    )
    prog = program(("\r\n".join(src.split("\n")), ["happyModel"]))
    assert [(c.source, c.line) for c in prog.chunks] == [
        ("import os", 2),
        ("s = 'héllo'", 4),
        ("k = 2", 4),
        ("def happyModel(\n    a,\n):\n    return a", 7),
    ]
    lines = src.split("\n")
    for chunk in prog.chunks:
        assert lines[chunk.line - 1].find(chunk.source.split("\n")[0]) >= 0


# --- cells that do not parse ------------------------------------------------------------


def test_syntax_error_in_graded_cell_makes_exercise_missing_with_line():
    src = "import os\n\ndef happyModel():\n    x = = 1\n    return x\n"
    prog = program(("import math", []), (src, ["happyModel"]))
    reason = prog.missing["happyModel"]
    assert reason.startswith("the cell starting `import os` (tagged 'happyModel') does not parse")
    assert "line 4" in reason and "x = = 1" in reason
    assert sources(prog) == ["import math"]
    assert not any("`import os`" in w for w in prog.warnings)


def test_syntax_error_in_untagged_cell_defining_the_exercise():
    prog = program("def happyModel(:\n    pass\n")
    reason = prog.missing["happyModel"]
    assert reason.startswith("the cell starting `def happyModel(:` (which defines `happyModel`) does not parse")
    assert "line 1" in reason and "def happyModel(:" in reason


def test_syntax_error_elsewhere_is_only_a_warning():
    prog = program("import os", "print 'python 2'\nx = 1\n", (HAPPY, ["happyModel"]))
    assert prog.located["happyModel"].cell == 2
    assert prog.missing == {}
    assert sources(prog) == ["import os", HAPPY.strip()]
    assert len(prog.warnings) == 1
    warning = prog.warnings[0]
    assert warning.startswith("the cell starting `print 'python 2'` skipped: it does not parse")
    assert "line 1" in warning


# --- helpers ----------------------------------------------------------------------------


def test_code_cells_indexes_all_cells_and_joins_line_lists():
    nb = {"cells": [
        {"cell_type": "markdown", "source": "# title"},
        {"cell_type": "code", "source": ["x = 1\n", "y = 2"]},
        {"cell_type": "raw", "source": "raw"},
        {"cell_type": "code", "source": "z = 3"},
    ]}
    assert code_cells(nb) == [(1, "x = 1\ny = 2"), (3, "z = 3")]
    prog = extract_program(nb, [])
    assert [(c.cell, c.label) for c in prog.chunks] == [
        (1, "the cell starting `x = 1`"), (1, "the cell starting `x = 1`"), (3, "the cell starting `z = 3`")]


def test_chunks_are_frozen_values():
    chunk = program("import os").chunks[0]
    assert chunk == Chunk("import os", 0, 1, "import", "the cell starting `import os`")
    with pytest.raises(AttributeError):
        chunk.line = 2  # type: ignore[misc]


def test_the_graders_own_self_check_import_is_not_run(tmp_path):
    """`from grader import check` belongs to the student's kernel; in the sandbox it would only fail."""
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import numpy as np\nfrom grader import check\nimport grader.kit.selfcheck"),
        nbformat.v4.new_code_cell("def standardize(a, b):\n    return a, b", metadata={"tags": ["standardize"]}),
        nbformat.v4.new_code_cell("check('standardize')"),
    ])
    program = extract_program(nb, ["standardize"])
    sources = [c.source for c in program.chunks]
    assert sources == ["import numpy as np", "def standardize(a, b):\n    return a, b"]


def test_a_link_to_a_real_notebook_is_refused_unread(tmp_path):
    """The reader itself refuses a link, so one swapped in after the batch listed the folder
    (or handed straight to `grader check`) is never followed to the file it names."""
    target = tmp_path / "master.ipynb"
    target.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {},
                                  "cells": [{"cell_type": "code", "metadata": {}, "source": "def f(): pass",
                                             "outputs": [], "execution_count": None, "id": "a"}]}))
    assert not isinstance(load_notebook(target), LoadError)
    link = tmp_path / "alice.ipynb"
    link.symlink_to(target)
    assert_names(load_notebook(link), link, "symbolic link", "not read")


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.ipynb"
    os.mkfifo(fifo)
    assert_names(load_notebook(fifo), fifo, "not a regular file")
