"""Whether this Python holds the framework an assignment's models are written in, asked
without importing it.

TensorFlow and PyTorch are extras of the grader (one TensorFlow per install; torch is
several hundred MB), so a student who installed the grader without `keras`, or an
instructor grading a Keras assignment in a torch-only install, has a grader that starts
but cannot grade. Without this check they met a sandbox worker that "did not start" or a
grading process that "could not start (ModuleNotFoundError: ...)": true, but it does not
say what to do. The answer is always one pip line, and which one depends only on the
assignment's spec, so it is given before any process is started.

Nothing here imports a framework or an adapter: the front ends (`grader grade`, `grader
check`, `check()`) ask before they start anything, and the adapters' own imports raise
`FrameworkMissing` with the same words when something slips past (a package whose import
fails although it is found).
"""
from __future__ import annotations

import importlib.util
import sys

import grader
from pathlib import Path

# The pyproject extra that brings each framework, and the modules it must make importable.
_NEEDS = {
    ("keras", "3"): ("keras", "TensorFlow (Keras 3)", ("tensorflow", "keras")),
    ("keras", "2"): ("keras2", "TensorFlow with tf_keras (Keras 2)", ("tensorflow", "tf_keras")),
    ("torch", ""): ("torch", "PyTorch", ("torch",)),
}


class FrameworkMissing(ImportError):
    """The assignment's framework is not installed; `str()` is the one or two lines that
    say which extra to install."""


def _needs(framework: str, keras: str) -> tuple[str, str, tuple[str, ...]]:
    if framework == "torch":
        return _NEEDS[("torch", "")]
    return _NEEDS.get(("keras", str(keras)), _NEEDS[("keras", "3")])


def absent_modules(framework: str = "keras", keras: str = "3") -> list[str]:
    """The top-level modules the framework needs that this Python cannot find (found is
    not proof the import works, but absent is proof it cannot)."""
    return [name for name in _needs(framework, keras)[2]
            if name not in sys.modules and importlib.util.find_spec(name) is None]


def wheel_name(version: str = grader.__version__) -> str:
    """The grader wheel's file name, as a student kit ships it (and its README installs it)."""
    return f"grader-{version}-py3-none-any.whl"


def install_advice(framework: str = "keras", keras: str = "3", *, kit: bool = False) -> str:
    """What to run: the kit README's own line for a student kit (the grader came as a wheel
    file, and a plain `grader[...]` would look for it on the package index), else the extra."""
    extra = _needs(framework, keras)[0]
    if kit:
        return (f'in the kit folder run pip install "{wheel_name()}[{extra},student]" (the install line of '
                f'its README.md)')
    return f'pip install "grader[{extra}]" (or, from a student kit, the install line of its README.md)'


def not_installed(framework: str = "keras", keras: str = "3", *, kit: bool = False, then: str = "run it again",
                  who: str = "this assignment") -> str:
    """The message, in two sentences: what is missing where, and what to run."""
    what = _needs(framework, keras)[1]
    return (f"{who} needs {what}, which is not installed in this Python ({sys.executable}): "
            f"{install_advice(framework, keras, kit=kit)}, then {then}")


def missing_framework(assignment, *, then: str = "run it again") -> str | None:
    """None when the assignment's framework can be imported here, else the message."""
    framework = getattr(assignment, "framework", "keras")
    keras = getattr(assignment, "keras", "3")
    if not absent_modules(framework, keras):
        return None
    from grader.assignment.spec import KIT_FOLDER

    root = getattr(assignment, "root", None)
    kit = root is not None and Path(root).parent.name == KIT_FOLDER
    return not_installed(framework, keras, kit=kit, then=then, who=assignment.name)


def require_framework(assignment, *, then: str = "run it again") -> None:
    message = missing_framework(assignment, then=then)
    if message is not None:
        raise FrameworkMissing(message)
