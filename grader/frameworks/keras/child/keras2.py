"""Keras 2 semantics for notebooks written for Keras 2 (TF 2.x), inside the sandbox child.

Course notebooks were written for TensorFlow 2.x, whose `tf.keras` was Keras 2. Where
Keras 3 removed or changed something such a notebook relies on, its correct code fails
under Keras 3 for a reason the student never had: `AveragePooling2D()` raises TypeError
(Keras 2 defaulted `pool_size` to 2), `from keras.layers.core import Dense` raises
ModuleNotFoundError. `install()` restores what Keras 2 did, in the child only, before the
student's definitions run; it changes what a layer *accepts*, never what a layer computes
once built, and a model still leaves the sandbox as its ordinary Keras 3 configuration.

Applied whichever `keras` the spec names: a `keras = "2"` worker's `tf.keras` is Keras 2
already, but its `import keras` is Keras 3, so the same restorations apply to it when the
student imports it. Each difference is listed in `DIFFERENCES` (and in docs/authoring.md).
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import re
import sys
import types
from dataclasses import dataclass


@dataclass(frozen=True)
class Difference:
    """One place where Keras 3 broke code written for Keras 2, and what is restored."""
    keras2: str
    keras3: str
    restored: str


DIFFERENCES: tuple[Difference, ...] = (
    Difference("`AveragePooling1D/2D/3D()` without `pool_size` pooled 2 (2x2, 2x2x2) windows",
               "`pool_size` is required: TypeError",
               "the Keras 2 default pool size"),
    Difference("`Dense(units)` took a float (`Dense(n / 2)`), truncated to an int",
               "ValueError: expected a positive integer",
               "the float truncated as Keras 2 did"),
    Difference("`BatchNormalization(fused=...)` chose an implementation (same outputs)",
               "ValueError: unrecognized keyword argument",
               "the argument ignored"),
    Difference("layer modules `keras.layers.core`, `.convolutional`, `.normalization`, `.merge`, `.pooling`, "
               "`.advanced_activations`, `.recurrent`, `.embeddings`, `.noise`, `.wrappers`, `.local`, "
               "`keras.layers.experimental.preprocessing` (also under `tensorflow.keras`)",
               "ModuleNotFoundError",
               "each name importable from them, taken from `keras.layers`"),
    Difference("`keras.utils.data_utils`, `.vis_utils`, `.np_utils`, `.generic_utils`, `.layer_utils`, "
               "`.conv_utils`, `.io_utils`, `.image_utils`",
               "ModuleNotFoundError",
               "each name importable from them, taken from `keras.utils`"),
    Difference("`keras.engine`, `keras.engine.topology`, `.training`, `.base_layer`, `.input_layer`, "
               "`.sequential`, `.functional`",
               "ModuleNotFoundError",
               "each name taken from `keras.layers`, `keras.models` or `keras`"),
    Difference("`keras.backend` held the backend functions (`K.int_shape`, `K.concatenate`, ...)",
               "AttributeError: most moved to `tf.keras.backend`",
               "the missing names taken from Keras 3's legacy backend"),
)

_PREFIXES = ("keras", "tensorflow.keras")
_LAYER_MODULES = ("core", "convolutional", "normalization", "merge", "pooling", "advanced_activations",
                  "recurrent", "embeddings", "noise", "wrappers", "local", "convolutional_recurrent",
                  "experimental", "experimental.preprocessing", "preprocessing")
_UTILS_MODULES = ("data_utils", "vis_utils", "np_utils", "generic_utils", "layer_utils", "conv_utils",
                  "io_utils", "image_utils")
_ENGINE_MODULES = ("", ".topology", ".training", ".base_layer", ".input_layer", ".sequential", ".functional")


def legacy_targets(name: str) -> tuple[str, ...]:
    """Where the names of a Keras 2 module path live now, or () when `name` is not one."""
    for prefix in _PREFIXES:
        for sub in _LAYER_MODULES:
            if name == f"{prefix}.layers.{sub}":
                return (f"{prefix}.layers",)
        for sub in _UTILS_MODULES:
            if name == f"{prefix}.utils.{sub}":
                return (f"{prefix}.utils",)
        for sub in _ENGINE_MODULES:
            if name == f"{prefix}.engine{sub}":
                return (f"{prefix}.layers", f"{prefix}.models", prefix)
    return ()


class _LegacyModule(types.ModuleType):
    """A Keras 2 module path whose names are read, on first use, from where they live now."""

    def __getattr__(self, attr: str):
        child = sys.modules.get(f"{self.__name__}.{attr}")
        if child is not None:
            return child
        if attr.startswith("__") and attr != "__all__":
            raise AttributeError(attr)
        targets = [importlib.import_module(t) for t in self.__grader_targets__]
        if attr == "__all__":
            return sorted({n for t in targets for n in dir(t) if not n.startswith("_")})
        for target in targets:
            if hasattr(target, attr):
                return getattr(target, attr)
        raise AttributeError(f"module {self.__name__!r} (a Keras 2 path) has no attribute {attr!r}, and "
                             f"{' / '.join(self.__grader_targets__)} has none either")


class _LegacyPaths(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Last on `sys.meta_path`: asked only when no real module of that name exists."""

    def find_spec(self, name, path=None, target=None):
        if not legacy_targets(name):
            return None
        return importlib.machinery.ModuleSpec(name, self, is_package=True)

    def create_module(self, spec):
        module = _LegacyModule(spec.name)
        module.__grader_targets__ = legacy_targets(spec.name)
        module.__path__ = []  # so `keras.layers.experimental.preprocessing` is found below it
        return module

    def exec_module(self, module):
        return None


class _AfterKerasImport(importlib.abc.MetaPathFinder):
    """First on `sys.meta_path` while Keras 3 is not imported yet (a tf_keras child): lets
    the real import run, then restores the Keras 2 defaults on it. Asked once."""

    def find_spec(self, name, path=None, target=None):
        if name != "keras":
            return None
        _remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader = spec.loader
        original = loader.exec_module

        def exec_module(module):
            original(module)
            _restore_keras(module)

        loader.exec_module = exec_module
        return spec


def _remove(finder) -> None:
    try:
        sys.meta_path.remove(finder)
    except ValueError:
        pass


_MARK = "_grader_keras2"


def _wrap_init(cls, adapt) -> None:
    """Replace `cls.__init__` by one that adapts the arguments first (once per class)."""
    original = cls.__init__
    if getattr(original, _MARK, False):
        return

    def __init__(self, *args, **kwargs):
        args, kwargs = adapt(args, kwargs)
        original(self, *args, **kwargs)

    __init__.__doc__ = original.__doc__
    __init__.__signature__ = _signature(original)
    setattr(__init__, _MARK, True)
    cls.__init__ = __init__


def _signature(func):
    import inspect
    try:
        return inspect.signature(func)
    except (TypeError, ValueError):
        return None


def _default_pool_size(default):
    def adapt(args, kwargs):
        if not args and "pool_size" not in kwargs:
            kwargs["pool_size"] = default
        return args, kwargs
    return adapt


def _float_units(args, kwargs):
    if args and isinstance(args[0], float):
        args = (int(args[0]), *args[1:])
    elif isinstance(kwargs.get("units"), float):
        kwargs["units"] = int(kwargs["units"])
    return args, kwargs


def _drop_fused(args, kwargs):
    kwargs.pop("fused", None)
    return args, kwargs


def _restore_keras(keras) -> None:
    """The Keras 2 behaviours on an imported Keras 3 (`keras` the module)."""
    version = str(getattr(keras, "__version__", ""))
    if not re.match(r"3\.", version):
        return
    layers = getattr(keras, "layers", None)
    if layers is None:
        return
    for name, default in (("AveragePooling1D", 2), ("AveragePooling2D", (2, 2)), ("AveragePooling3D", (2, 2, 2))):
        cls = getattr(layers, name, None)
        if isinstance(cls, type):
            _wrap_init(cls, _default_pool_size(default))
    if isinstance(getattr(layers, "Dense", None), type):
        _wrap_init(layers.Dense, _float_units)
    if isinstance(getattr(layers, "BatchNormalization", None), type):
        _wrap_init(layers.BatchNormalization, _drop_fused)
    _extend_backend(keras)


def _extend_backend(keras) -> None:
    """`import keras.backend as K; K.int_shape(x)`: names Keras 3 moved to its legacy backend."""
    backend = getattr(keras, "backend", None)
    if backend is None or "__getattr__" in vars(backend):
        return
    try:
        legacy = importlib.import_module("keras.src.legacy.backend")
    except ImportError:
        return

    def __getattr__(attr):
        if not attr.startswith("_") and hasattr(legacy, attr):
            return getattr(legacy, attr)
        raise AttributeError(f"module 'keras.backend' has no attribute {attr!r}")

    backend.__getattr__ = __getattr__


_INSTALLED = []


def install() -> None:
    """Give Keras 2 era code Keras 2 semantics from now on, in this process (the sandbox
    child, before the student's definitions run). Idempotent."""
    if _INSTALLED:
        return
    _INSTALLED.append(True)
    sys.meta_path.append(_LegacyPaths())
    keras = sys.modules.get("keras")
    if keras is not None and hasattr(keras, "layers"):
        _restore_keras(keras)
    else:
        sys.meta_path.insert(0, _AfterKerasImport())
