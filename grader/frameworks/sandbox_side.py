"""Which package a sandbox worker loads for an assignment's framework (`grader.sandbox.hooks`).

The sandbox names no framework: the front ends ask here, by the spec's `framework` and
`keras` keys, and hand the worker what they get. Nothing is imported to answer: the
worker imports the package itself (or, under bubblewrap, a mounted copy of its folder).
"""
from __future__ import annotations

from pathlib import Path

from grader.sandbox.hooks import FrameworkSide

_HERE = Path(__file__).resolve().parent
# What TensorFlow reads once, at import: before the worker's Python starts.
_TENSORFLOW_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0", "KERAS_HOME": "/tmp/.keras"}


def sandbox_side(framework: str = "keras", keras: str = "3") -> FrameworkSide:
    """The worker's framework package for an assignment written in `framework` ("keras",
    with `keras` "3" or "2", or "torch")."""
    if framework == "torch":
        return FrameworkSide("torch", "grader.frameworks.torch.child", _HERE / "torch" / "child")
    keras = str(keras)
    env = dict(_TENSORFLOW_ENV, **({"TF_USE_LEGACY_KERAS": "1"} if keras == "2" else {}))
    return FrameworkSide("keras", "grader.frameworks.keras.child", _HERE / "keras" / "child",
                         options={"keras": keras}, env=env)


__all__ = ["sandbox_side"]
