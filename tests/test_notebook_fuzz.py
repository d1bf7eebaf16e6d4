"""Property-based tests of the notebook reader: whatever a submitted file holds,
`load_notebook` answers with a notebook or a `LoadError` and `extract_program` with a
`Program`, never another exception. An exception there would reach the batch as a crash
instead of a message naming the file and the problem.

Inputs: random bytes, random JSON, random nbformat-shaped structures (odd cell types,
sources, ids, outputs, metadata, versions), and random Python-ish cell sources built
from fragments students really write plus the damage files really carry (null bytes,
lone surrogates, stray backslashes, unclosed strings, deep nesting, huge numbers).
Each chunk the reader keeps must be exactly one statement, as the sandbox compiles it.
Crashes found here are kept below as plain regression tests.
"""
from __future__ import annotations

import ast
import json
import os
import tempfile

import nbformat
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grader.notebook import LoadError, Program, extract_program, load_notebook
from grader.notebook.reading import _load
from grader.notebook.schema import Rejected

FUZZ = settings(max_examples=80, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

EXERCISES = st.lists(st.sampled_from(["happyModel", "f", "g", "", "a.b", "déf", "(", "happyModel"]), max_size=3)

# --- Python-ish cell sources ----------------------------------------------------------------

FRAGMENTS = st.sampled_from([
    "def happyModel():\n    return 1\n", "def f(x):\n    return x\n", "async def g():\n    await h()\n",
    "@decorator\n", "@dec(\n    'é')\n", "class C:\n    x = 1\n", "import numpy as np\n", "from os import path\n",
    "from __future__ import annotations\n", "from grader import check\n", "x = 1; y = 'ü'; z = 3\n",
    "N = 2**10\n", "BIG = 10**10**10\n", "K = " + "9" * 5000 + "\n", "T = (1, [2, {3: 4}])\n", "D = np.float32\n",
    "happyModel = None\n", "%matplotlib inline\n", "!pip install x\n", "x = !ls\n", "np.zeros?\n", "%%time\n",
    "s = '''unclosed\n", '"""doc\n', "x = (1 +\n% 2)\n", "y = 1 + \\\n    2\n", "\\\n", "z = 3\\ \n",
    "if True:\n    def happyModel():\n        pass\n", "    indented = 1\n", "\tx = 1\n", "\f", "\r\n", "\r",
    "\x00", "\ud800", "é = 'ß'\n", "𝑓 = 1\n", "def happyModel(:\n", "x = [" * 30 + "]" * 30 + "\n",
    "(" * 250 + ")" * 250 + "\n", "lambda: (yield)\n", "print('hi')\n", "model.fit(x)\n", "#" + "x" * 100 + "\n",
    "def happyModel():\n" + "    if x:\n" * 1 + "        pass\n", "x: int = 5\n", "a, (b, c) = 1, (2, 3)\n",
    "del x\n", "return 1\n", "await x\n", "match x:\n    case 1:\n        pass\n", "global q\n", ";\n", "\n\n",
]) | st.text(max_size=30)

SOURCES = st.lists(FRAGMENTS, max_size=8).map("".join)
SOURCE_FIELD = SOURCES | st.lists(SOURCES, max_size=3) | st.none() | st.integers() | st.lists(st.integers(), max_size=2)

# --- JSON and notebook-shaped structures ------------------------------------------------------

SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(10 ** 40), max_value=10 ** 40)
           | st.floats(allow_nan=False) | st.text(max_size=10))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=20)

TAGS = st.none() | st.text(max_size=12) | st.lists(st.sampled_from(["happyModel", "f", " f ", "a,b", ""]) | JSON,
                                                    max_size=4)
CELL_METADATA = st.fixed_dictionaries({}, optional={
    "tags": TAGS, "nbgrader": st.fixed_dictionaries({}, optional={"grade_id": JSON | st.just("happyModel")}),
    "collapsed": JSON, "jupyter": JSON, "execution": JSON, "scrolled": JSON, "name": JSON, "format": JSON,
}) | JSON
OUTPUT = st.fixed_dictionaries({"output_type": st.sampled_from(["stream", "display_data", "execute_result", "error",
                                                                 "pyout", "bogus"]) | JSON},
                                optional={"name": JSON, "text": JSON, "data": JSON, "metadata": JSON,
                                          "execution_count": JSON, "ename": JSON, "evalue": JSON,
                                          "traceback": JSON})
CELL = st.fixed_dictionaries({}, optional={
    "cell_type": st.sampled_from(["code", "markdown", "raw", "heading", "banana"]) | JSON,
    "source": SOURCE_FIELD, "input": SOURCE_FIELD, "metadata": CELL_METADATA,
    "outputs": st.lists(OUTPUT | JSON, max_size=3) | JSON, "execution_count": JSON,
    "id": st.sampled_from(["a", "a", "bad id!", "x" * 70]) | JSON, "attachments": JSON,
    "level": JSON, "prompt_number": JSON, "language": JSON, "extra": JSON,
}) | JSON
VERSIONS = st.sampled_from([1, 2, 3, 4, 4, 4, 5, 0, -1, "4", 4.0, True, None, 10 ** 30])
NOTEBOOK = st.fixed_dictionaries({}, optional={
    "nbformat": VERSIONS, "nbformat_minor": st.sampled_from([0, 1, 4, 5, 6, 99, -1, "5", None, 10 ** 30]) | JSON,
    "metadata": st.fixed_dictionaries({}, optional={"kernelspec": JSON, "language_info": JSON, "title": JSON,
                                                     "orig_nbformat": JSON, "authors": JSON}) | JSON,
    "cells": st.lists(CELL, max_size=5) | JSON,
    "worksheets": st.lists(st.fixed_dictionaries({}, optional={"cells": st.lists(CELL, max_size=4) | JSON,
                                                              "metadata": JSON}) | JSON, max_size=2) | JSON,
    "extra": JSON,
})


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory() as path:
        yield path


def load_bytes(folder: str, data: bytes):
    path = os.path.join(folder, "fuzz.ipynb")
    with open(path, "wb") as f:
        f.write(data)
    # load_notebook turns any exception into a LoadError as a last resort; the reader's
    # own stages must not need that: each problem is one they recognize and word.
    try:
        _load(path)
    except Rejected:
        pass
    result = load_notebook(path)
    assert isinstance(result, (LoadError, nbformat.NotebookNode)), type(result)
    if isinstance(result, LoadError):
        text = str(result)
        assert text.startswith(f"{path}: ") and result.problem, text
        assert "\n" not in text and "Traceback" not in text, text
    return result


def check_program(nb, exercises) -> Program:
    prog = extract_program(nb, exercises)
    assert isinstance(prog, Program)
    for chunk in prog.chunks:
        tree = ast.parse(chunk.source)  # what the sandbox will compile: one whole statement
        assert len(tree.body) == 1, chunk.source
        assert chunk.kind in ("import", "def", "class", "assign") and chunk.line >= 1
    for name, located in prog.located.items():
        assert name in exercises and not name in prog.missing
        assert any(c.cell == located.cell and c.line == located.line and c.kind == "def" for c in prog.chunks)
    for reason in list(prog.missing.values()) + list(prog.warnings):
        assert isinstance(reason, str) and reason and "\n" not in reason.strip("\n")
    return prog


@FUZZ
@given(data=st.binary(max_size=300))
def test_random_bytes_load_as_a_value(folder, data):
    load_bytes(folder, data)


@FUZZ
@given(value=JSON)
def test_random_json_loads_as_a_value(folder, value):
    load_bytes(folder, json.dumps(value).encode())


@FUZZ
@given(notebook=NOTEBOOK, exercises=EXERCISES)
def test_notebook_shaped_structures_load_and_extract_as_values(folder, notebook, exercises):
    result = load_bytes(folder, json.dumps(notebook).encode())
    if not isinstance(result, LoadError):
        nbformat.validate(result)  # what load_notebook returns is a valid v4 notebook
        check_program(result, exercises)
    check_program(notebook, exercises)  # and the raw structure, as a caller might pass it


@FUZZ
@given(sources=st.lists(SOURCES, min_size=1, max_size=4), exercises=EXERCISES,
       tagged=st.lists(st.booleans(), max_size=4))
def test_any_python_source_extracts_to_whole_statements(folder, sources, exercises, tagged):
    cells = []
    for i, source in enumerate(sources):
        tags = ["happyModel"] if i < len(tagged) and tagged[i] else []
        cells.append(nbformat.v4.new_code_cell(source, metadata={"tags": tags}))
    nb = nbformat.v4.new_notebook(cells=cells)
    check_program(nb, exercises)
    try:
        data = nbformat.writes(nb).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: json escapes it, and the reader must cope
        data = json.dumps(nbformat.from_dict(nb)).encode()
    result = load_bytes(folder, data)
    if not isinstance(result, LoadError):
        check_program(result, exercises)


@FUZZ
@given(value=JSON | st.lists(CELL, max_size=3) | st.builds(lambda cells: {"cells": cells}, JSON))
def test_extract_program_takes_anything_it_is_handed(value):
    check_program(value, ["happyModel"])


# --- mutations of a realistic notebook --------------------------------------------------------


def _realistic() -> dict:
    """A small notebook with every part real front ends write."""
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output, new_raw_cell

    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                                "language_info": {"name": "python", "version": "3.11"}})
    nb.cells = [
        new_markdown_cell("# Week 1\n![x](attachment:a.png)", attachments={"a.png": {"image/png": "iVBORw0KGgo="}}),
        new_code_cell("import numpy as np\nEPS = 1e-3\n", execution_count=1,
                      outputs=[new_output("stream", name="stdout", text="hi\n")]),
        new_code_cell("def happyModel():\n    return 1\n", metadata={"tags": ["happyModel"], "collapsed": False},
                      execution_count=2, outputs=[new_output("execute_result", data={"text/plain": "1"},
                                                             execution_count=2),
                                                  new_output("display_data", data={"image/png": "iVBORw0KGgo="}),
                                                  new_output("error", ename="E", evalue="v", traceback=["t"])]),
        new_raw_cell("raw text", metadata={"format": "text/plain"}),
        new_code_cell("%matplotlib inline\nmodel = happyModel()\n", metadata={"nbgrader": {"grade_id": "f"}}),
    ]
    return json.loads(nbformat.writes(nb))


REALISTIC = _realistic()


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _paths(inner, prefix + (key,))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _paths(inner, prefix + (index,))


PATHS = list(_paths(REALISTIC))[1:]
MUTATION = st.tuples(st.sampled_from(PATHS), st.sampled_from(["replace", "delete", "wrap", "duplicate"]), JSON)


def _mutate(notebook: dict, mutations) -> dict:
    notebook = json.loads(json.dumps(notebook))
    for path, how, value in mutations:
        parent = notebook
        try:
            for step in path[:-1]:
                parent = parent[step]
            key = path[-1]
            current = parent[key]
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced this part
        if how == "replace":
            parent[key] = value
        elif how == "delete":
            del parent[key]
        elif how == "wrap":
            parent[key] = [current]
        elif isinstance(parent, list):
            parent.insert(key, json.loads(json.dumps(current)))
    return notebook


@FUZZ
@given(mutations=st.lists(MUTATION, min_size=1, max_size=4), exercises=EXERCISES)
def test_damaged_real_notebooks_load_and_extract_as_values(folder, mutations, exercises):
    notebook = _mutate(REALISTIC, mutations)
    result = load_bytes(folder, json.dumps(notebook).encode())
    if not isinstance(result, LoadError):
        nbformat.validate(result)
        check_program(result, exercises)
    check_program(notebook, exercises)


def test_the_realistic_notebook_itself_loads_and_grades(folder):
    result = load_bytes(folder, json.dumps(REALISTIC).encode())
    assert not isinstance(result, LoadError), result
    prog = check_program(result, ["happyModel"])
    assert prog.located["happyModel"].how == "tag"
    assert len(result.cells[2].outputs) == 3  # valid outputs are kept


# --- regressions: inputs the fuzzing found ----------------------------------------------------


def test_cells_that_are_not_a_list_extract_to_an_empty_program():
    for value in ({"cells": None}, {"cells": 3}, {"cells": "x = 1"}, None, [1, 2]):
        prog = extract_program(value, ["happyModel"])
        assert prog.chunks == () and "happyModel" in prog.missing


@pytest.mark.parametrize("notebook, words", [
    ({"nbformat": 1, "worksheets": [None, {}]}, ["format-1", "'cells'"]),
    ({"nbformat": 1, "cells": [[""]]}, ["cell 1", "not an object"]),
    ({"nbformat": 2, "worksheets": [{}, {}]}, ["format-2", "worksheet 1", "'cells'"]),
    ({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": ["code"], "source": ""}]},
     ["cell 1", "unknown cell type"]),
    ({"nbformat": 4, "nbformat_minor": 5, "metadata": {"a": [[[[[]]]]] * 2 + [[0] * 3]}, "cells": [],
      "deep": json.loads("[" * 300 + "]" * 300)}, ["nested too deeply", "200 levels"]),
])
def test_odd_structures_get_their_own_message(folder, notebook, words):
    """Each of these used to escape the reader's stages as a TypeError, KeyError,
    AttributeError or RecursionError and reach the student as "could not be read as a
    notebook (TypeError: 'NoneType' object is not subscriptable)"."""
    result = load_bytes(folder, json.dumps(notebook).encode())
    assert isinstance(result, LoadError), result
    for word in words:
        assert word in result.problem, result.problem


@pytest.mark.parametrize("minor", [[], -1, "5", None])
def test_a_malformed_minor_version_is_repaired(folder, minor):
    v3 = {"nbformat": 3, "nbformat_minor": minor, "metadata": {},
          "worksheets": [{"cells": [{"cell_type": "code", "input": "def happyModel():\n    return 1\n",
                                     "outputs": [], "language": "python", "metadata": {}}]}]}
    v4 = {"nbformat": 4, "nbformat_minor": minor, "metadata": {},
          "cells": [{"cell_type": "code", "source": "def happyModel():\n    return 1\n", "metadata": {}}]}
    for notebook in (v3, v4):
        result = load_bytes(folder, json.dumps(notebook).encode())
        assert not isinstance(result, LoadError), result
        assert "happyModel" in extract_program(result, ["happyModel"]).located


def test_a_lone_surrogate_in_a_cell_is_named_not_called_a_null_byte(folder):
    notebook = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "id": "a", "metadata": {}, "outputs": [], "execution_count": None,
         "source": "x = 1\ns = '\ud800'\n"},
        {"cell_type": "code", "id": "b", "metadata": {}, "outputs": [], "execution_count": None, "source": "y = 2"},
    ]}
    result = load_bytes(folder, json.dumps(notebook).encode())
    assert not isinstance(result, LoadError), result
    prog = extract_program(result, [])
    assert [c.source for c in prog.chunks] == ["y = 2"]
    assert any(w.startswith("the cell starting `x = 1` skipped") and "invalid character" in w and "U+D800" in w
               and "line 2" in w
               for w in prog.warnings), prog.warnings
