"""Shared fixtures: one preloaded sandbox worker per test session (its start costs ~4 s),
and helpers that build real notebooks."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import nbformat
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "assignments" / "conv_bn" / "samples"


@pytest.fixture(scope="session")
def worker():
    from grader.sandbox.client import Worker
    with Worker(keras="3") as w:
        yield w


@pytest.fixture(scope="session")
def conv_bn():
    from grader.assignment import load_assignment
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
    from grader.assignment import load_assignment
    return load_assignment(root)
