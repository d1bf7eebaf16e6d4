"""Weights drawn only when something reads them, inside the sandbox child (Keras 3).

Why: a call whose model leaves the sandbox without its weights (`weights=False`: the
output checks read the reference's weights in their place, and initializers are compared
from the configuration) still paid for drawing every initial weight while the student's
code built the model: for a ResNet50, 23.6 million random numbers, about 0.8 s of CPU and
94 MB in the child, none of it ever read.

How: while such a call runs (`deferring()`), a Keras 3 variable whose initializer is a
pure function of (shape, dtype) keeps that initializer instead of running it. Anything that
touches the variable's storage afterwards (`get_weights()`, `numpy()`, `assign`, a forward
pass inside the graded function, a later call that sends the weights) runs the initializer
first, outside any graph, and gets the very numbers an eager draw would have given. That
holds because only Keras' own initializers are deferred, and only when they are seeded
with an integer: Keras turns an unseeded initializer's seed into an integer when the
initializer is made (from Python's `random`, which the child seeds), and an integer seed
draws from a stateless generator, so *when* the draw happens changes nothing, neither its
values nor any random state another draw sees. An initializer with a `SeedGenerator`, or a
function of the student's own (which may draw from NumPy's global state), runs at once, as
without this module.

While Keras builds a model symbolically (a layer called on `keras.Input`), it reads each
variable's value inside a scratch graph only for shapes: a deferred variable then gives a
zeros placeholder of its shape, built in that graph, and stays deferred.

Keras 3 only: tf_keras makes its variables elsewhere, and is left alone. This module
imports nothing at import time (the worker imports it before forking, and a child of a
torch or tf_keras worker must not pay for Keras 3); it reaches Keras through `sys.modules`.
"""
from __future__ import annotations

import contextlib
import sys
from typing import Any

_PENDING = "_grader_pending_initializer"  # on a deferred variable: the initializer to run
_BACKEND = "keras.src.backend.tensorflow.core"
_state = {"depth": 0, "installed": False, "deferred": 0, "drawn": 0}


def _variable_class():
    module = sys.modules.get(_BACKEND)
    return getattr(module, "Variable", None)


def available() -> bool:
    """Keras 3 on TensorFlow is imported in this process (the only backend handled)."""
    return _variable_class() is not None


@contextlib.contextmanager
def deferring(enabled: bool = True):
    """Inside, Keras 3 variables made from a deferrable initializer wait for a reader."""
    if not enabled or not _install():
        yield
        return
    _state["depth"] += 1
    try:
        yield
    finally:
        _state["depth"] -= 1


def counts() -> dict[str, int]:
    """How many variables were deferred, and how many of those were drawn after all."""
    return {"deferred": _state["deferred"], "drawn": _state["drawn"]}


def pending(variable: Any) -> bool:
    """Whether this variable's initial value has not been drawn yet."""
    return getattr(variable, "__dict__", {}).get(_PENDING) is not None


def _deferrable(initializer: Any) -> bool:
    """Keras' own initializer, and a pure function of (shape, dtype) (see the docstring)."""
    cls = type(initializer)
    if not (cls.__module__ or "").startswith("keras."):
        return False
    if not hasattr(initializer, "seed"):
        return True  # Zeros, Ones, Constant, Identity: no randomness at all
    return type(getattr(initializer, "seed", None)) is int


def _install() -> bool:
    """Put the hooks on Keras' TensorFlow variable class, once per process."""
    if _state["installed"]:
        return True
    cls = _variable_class()
    if cls is None:
        return False
    try:
        from keras.src.backend.common.symbolic_scope import in_symbolic_scope
        import tensorflow as tf
    except ImportError:
        return False
    original_init = cls._initialize_with_initializer
    original_value = cls.value

    def _initialize_with_initializer(self, initializer):
        if _state["depth"] and _deferrable(initializer):
            self.__dict__["_value"] = None
            self.__dict__[_PENDING] = initializer
            _state["deferred"] += 1
            return
        original_init(self, initializer)

    def _materialize(self):
        initializer = self.__dict__.pop(_PENDING)
        _state["drawn"] += 1
        with tf.init_scope():  # out of any function graph: a real variable, made eagerly
            original_init(self, initializer)
        return self.__dict__.get("_value")

    def _get_value_slot(self):
        d = self.__dict__
        stored = d.get("_value")
        if stored is None and d.get(_PENDING) is not None:
            return _materialize(self)
        return stored

    def _set_value_slot(self, stored):
        self.__dict__["_value"] = stored

    def value(self):
        if self.__dict__.get(_PENDING) is not None and in_symbolic_scope():
            # Shape inference only: a placeholder in the scratch graph, nothing drawn.
            return self._maybe_autocast(tf.zeros(tuple(self._shape), dtype=self._dtype))
        return original_value.fget(self)

    cls._initialize_with_initializer = _initialize_with_initializer
    cls._value = property(_get_value_slot, _set_value_slot)
    cls.value = property(value, doc=original_value.__doc__)
    _state["installed"] = True
    return True


__all__ = ["available", "counts", "deferring", "pending"]
