"""The one line that installs what a student kit needs: the grader, one TensorFlow, the notebook's imports.

TensorFlow is an extra of the grader (pyproject.toml) so that an install holds exactly one
TensorFlow distribution: `keras` (tensorflow-cpu, for Keras 3 kits) or `keras2` (tensorflow
and tf-keras, for Keras 2 kits). `student` adds what a kit's notebook imports and a Jupyter
kernel. The kit's README and the docs print this line; tests install with it.
"""
from __future__ import annotations

# assignment.toml's `keras` key -> the extra that brings its TensorFlow
KERAS_EXTRA = {"3": "keras", "2": "keras2"}


def extras_for(keras: str) -> str:
    """`student,keras` for a Keras 3 kit: the extras in the order the line shows them."""
    return f"student,{KERAS_EXTRA.get(str(keras), 'keras')}"


def install_line(wheel: str, keras: str) -> str:
    """`pip install "grader-0.1.0-py3-none-any.whl[student,keras]"`, quoted for any shell."""
    return f'pip install "{wheel}[{extras_for(keras)}]"'


__all__ = ["KERAS_EXTRA", "extras_for", "install_line"]
