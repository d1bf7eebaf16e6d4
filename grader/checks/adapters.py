"""Which framework adapter reads a model: the one seam between the neutral checks and
Keras or PyTorch.

The checks (`grader.checks.graph`, `models`, `equivalence`) never import a framework:
they ask `adapter_for(model)` and call what the `Adapter` holds. An adapter is a small
record of functions living in its own package (`grader.frameworks.keras.adapter`,
`grader.frameworks.torch.adapter`), each module defining `ADAPTER`.

How adapters are found: a name table, not entry points. A model of a framework can only
exist once that framework is imported, so each row names the top-level packages whose
presence in `sys.modules` makes the adapter worth asking, and the adapter's module is
imported only then, once. A torch-only grading process therefore never imports the
Keras adapter (nor TensorFlow), and a Keras one never imports torch. Entry points
(`importlib.metadata`) were rejected: they need the package installed with its metadata,
which a checkout on `PYTHONPATH`, the Gradescope bundle and the student kit's venv do
not all have, and scanning them costs every grading process a walk over the installed
distributions, for two adapters that ship inside this package anyway. A framework from
elsewhere joins with `register(adapter)` (from an assignment's conftest, say), and is
asked before the built-in rows.

Models no adapter owns (a student kit's recorded reference, which holds its graph and
outputs as data) are handled by the checks themselves, framework-free.
"""
from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from typing import Any, Callable

from grader.checks import CheckFailed


@dataclass(frozen=True)
class Adapter:
    """What the checks need from one framework. Optional entries are None when the
    framework has no such operation; the check that needs one says so."""

    name: str
    # Whether this framework made the object (a model or one of its layers); must not
    # import anything the process has not imported.
    owns: Callable[[Any], bool]
    # (model, cap) -> LayerGraph, past `cap` layer calls GraphTooLarge.
    layer_graph: Callable[..., Any]
    # (reference, student, inputs, *, training, rtol, atol, what, merge_order) -> None,
    # CheckFailed when the outputs differ with the reference's weights copied in.
    expect_same_outputs: Callable[..., None]
    # (reference, student, *, merge_order) -> None: the reference's weights written into the student's model.
    copy_weights: Callable[..., None] | None = None
    # (model, inputs, training, who) -> list of arrays; a failed call is a CheckFailed naming `who`.
    outputs: Callable[..., list] | None = None
    # model -> the input shape it was built for, batch axis left out.
    input_shape: Callable[[Any], tuple] | None = None
    # (layer_a, layer_b, input_shape) -> whether fresh copies compute the same (see `grader.checks.equivalence`).
    numerically_same: Callable[[Any, Any, Any], bool] | None = None


@dataclass(frozen=True)
class _Row:
    name: str
    packages: tuple[str, ...]  # any of these imported: the adapter may own something
    module: str  # defines ADAPTER


# Cheapest `owns` first: torch's is one isinstance.
_BUILT_IN = (
    _Row("torch", ("torch",), "grader.frameworks.torch.adapter"),
    _Row("keras", ("keras", "tf_keras"), "grader.frameworks.keras.adapter"),
)
_REGISTERED: list[Adapter] = []
_LOADED: dict[str, Adapter] = {}


def register(adapter: Adapter) -> None:
    """Ask `adapter` before the built-in ones (a second one of the same name replaces the first)."""
    _REGISTERED[:] = [a for a in _REGISTERED if a.name != adapter.name] + [adapter]


def unregister(name: str) -> None:
    """Forget a registered adapter (a test's, or a plugin's being unloaded)."""
    _REGISTERED[:] = [a for a in _REGISTERED if a.name != name]


def _load(row: _Row) -> Adapter:
    adapter = _LOADED.get(row.name)
    if adapter is None:
        adapter = importlib.import_module(row.module).ADAPTER
        _LOADED[row.name] = adapter
    return adapter


def candidates() -> list[Adapter]:
    """The adapters that could own something in this process, in the order they are asked."""
    found = list(_REGISTERED)
    for row in _BUILT_IN:
        if any(package in sys.modules for package in row.packages):
            found.append(_load(row))
    return found


def adapter_for(obj: Any) -> Adapter | None:
    """The adapter of the framework that made `obj` (a model or a layer), or None."""
    for adapter in candidates():
        try:
            if adapter.owns(obj):
                return adapter
        except Exception:  # noqa: BLE001 - an object that breaks `owns` is not that framework's
            continue
    return None


def named(name: str) -> Adapter:
    """A built-in or registered adapter by name, imported if need be (for tests and tools)."""
    for adapter in _REGISTERED:
        if adapter.name == name:
            return adapter
    for row in _BUILT_IN:
        if row.name == name:
            return _load(row)
    raise KeyError(f"no framework adapter named {name!r}; known: {', '.join(known())}")


def known() -> tuple[str, ...]:
    return tuple(dict.fromkeys([a.name for a in _REGISTERED] + [r.name for r in _BUILT_IN]))


def require(model: Any, operation: str) -> Adapter:
    """The model's adapter, providing `operation`; otherwise a CheckFailed saying what was
    found (a test handed the check something that is not a model this grader reads)."""
    adapter = adapter_for(model)
    if adapter is None:
        raise CheckFailed(
            f"Expected a model, found a {type(model).__name__}: the grader reads models of "
            f"{' or '.join(known())} only.",
            hint="return the model itself (not its summary, its weights or None).", diagnosis="not_a_model")
    if getattr(adapter, operation, None) is None:
        raise TypeError(f"the {adapter.name} adapter has no {operation}: this check is not available for "
                        f"{adapter.name} models")
    return adapter


__all__ = ["Adapter", "adapter_for", "candidates", "known", "named", "register", "require", "unregister"]
