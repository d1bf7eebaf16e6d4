"""A reference model's outputs, remembered across submissions for inputs that repeat.

The plugin keeps each reference model for the life of the grading process, and a test whose
inputs do not depend on the submission (a visible test's, or any test's when the same
notebook is graded again) asks the reference for the same numbers submission after
submission. For a ResNet50 that was two forward passes a submission, and two traced
ResNet50 functions (~0.17 GiB) held by the grading process only to answer them.

When a remembered output is used, and why that is exactly what a fresh call would give:
- only for a Keras 3 model that `forward.stateless()` accepts and that has no seed
  generator (no Dropout, no noise layer), whose every layer is one of Keras' own classes
  (no Lambda, no subclass): the call then reads nothing but the inputs, the variables and
  the layers' settings, and writes nothing (`forward.call_model` drops the statistics a
  training call would move), so the same three give the same outputs and leave the model
  as it was, in either mode;
- the key is the model object (held weakly: a model built later at the same address is
  another model), the `training` flag, the inputs' dtype, shape and bytes, a digest of the
  bytes of every variable (moving statistics included), and the layers' plain settings
  (`trainable`, `epsilon`, the activation function, ...), so a test that changes a weight
  or a setting gets a fresh call;
- the weights are digested (about 45 ms for a ResNet50's 94 MB, `state_digest`) only for inputs this model
  has already been called with: inputs that never repeat (a hidden test's, drawn per
  submission) cost nothing more than before;
- the call that fills an entry runs eagerly, not traced: a model whose answers come from
  here is never called again for those inputs, so tracing it would only hold memory.

Bounded: at most `MAX_ENTRIES` keys and `MAX_BYTES` of outputs in the process, least
recently used first out; an output larger than that is never kept (and its weights never
digested again). Outputs are handed out as fresh copies.
"""
from __future__ import annotations

import hashlib
import types
import weakref
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from grader.frameworks.keras.forward import seed_states, stateless

MAX_ENTRIES = 64
MAX_BYTES = 16 << 20

_UNSAFE_LAYERS = {"Lambda", "TFSMLayer", "TorchModuleWrapper", "JaxLayer", "FlaxLayer"}


@dataclass
class _Entry:
    model: weakref.ref
    digest: bytes | None = None  # the variables' and settings' digest the outputs were computed with
    outputs: list[np.ndarray] | None = None  # None: these inputs seen once, nothing kept yet
    too_large: bool = False  # or its state unreadable: called every time, never digested again

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.outputs) if self.outputs else 0


_ENTRIES: "OrderedDict[tuple, _Entry]" = OrderedDict()
hits = 0  # counted for the tests and the benches
digests = 0


def reference_outputs(model: Any, inputs: Any, training: bool | None,
                      run: Callable[[bool], list[np.ndarray]]) -> list[np.ndarray]:
    """`run(trace)`'s flat outputs, or a copy of what it returned before for the same
    model, variables, settings, inputs and mode. `run(False)` must call the model without
    tracing it."""
    global hits, digests
    inputs_key = _inputs_key(inputs)
    if inputs_key is None or not rememberable(model):
        return run(True)
    key = (id(model), training, inputs_key)
    entry = _ENTRIES.get(key)
    if entry is not None and entry.model() is not model:
        del _ENTRIES[key]  # another model at a freed model's address
        entry = None
    if entry is None:
        _remember(key, _Entry(weakref.ref(model)))
        return run(True)
    _ENTRIES.move_to_end(key)
    if entry.too_large:
        return run(True)
    try:
        digest = state_digest(model)
    except Exception:  # noqa: BLE001 - a state we cannot read is never vouched for: call the model
        entry.too_large = True
        return run(True)
    digests += 1
    if entry.outputs is not None and entry.digest == digest:
        hits += 1
        return [array.copy() for array in entry.outputs]
    outputs = run(entry.outputs is not None)  # traced only when the weights moved under a kept answer
    kept = [np.array(array, copy=True) for array in outputs]
    if sum(a.nbytes for a in kept) > MAX_BYTES:
        entry.too_large, entry.outputs, entry.digest = True, None, None
    else:
        entry.digest, entry.outputs = digest, kept
        _trim()
    return outputs


def rememberable(model: Any) -> bool:
    """Whether a call of `model` reads only its inputs, variables and layer settings, and
    writes nothing (see the module's docstring)."""
    if not stateless(model) or seed_states(model):
        return False
    try:
        layers = list(model._flatten_layers(include_self=True, recursive=True))
    except Exception:  # noqa: BLE001 - a model we cannot walk is called every time
        return False
    return all(type(layer).__module__.startswith("keras.") and type(layer).__name__ not in _UNSAFE_LAYERS
               for layer in layers)


def state_digest(model: Any) -> bytes:
    """Every variable's shape, dtype and CRC-32, read in place, and every layer's plain
    settings. CRC-32 rather than a cryptographic hash: it is twice as fast (26 vs 57 ms for
    a ResNet50's 94 MB), nothing here is adversarial (student code never runs in this
    process), and a change within 32 consecutive bits (any one weight) always changes it;
    a wider change goes unseen with odds of 1 in 4 billion."""
    h = hashlib.sha1(usedforsecurity=False)
    for variable in model.variables:
        value = _read(variable)
        h.update(f"{value.shape}{value.dtype.str}{zlib.crc32(_bytes(value))}\0".encode())
    for layer in model._flatten_layers(include_self=True, recursive=True):
        h.update(repr(_settings(layer)).encode("utf-8", "backslashreplace"))
    return h.digest()


def _read(variable: Any) -> np.ndarray:
    """The variable's value; on TensorFlow a view of its buffer (np.asarray of the variable
    itself copies: 80 ms for a ResNet50 instead of 14)."""
    handle = getattr(variable, "value", None)
    read = getattr(handle, "value", None)
    if callable(read):
        try:
            return np.asarray(read())
        except Exception:  # noqa: BLE001 - another backend: the plain read below
            pass
    return np.asarray(variable)


def _settings(layer: Any) -> tuple:
    """The attributes a call may read that are not variables: plain values (epsilon, axis,
    units, ...), `trainable`, and functions (an activation) by name and identity."""
    out: list[tuple] = [(type(layer).__qualname__, bool(getattr(layer, "trainable", True)))]
    for name, value in sorted(vars(layer).items()):
        if name.startswith("_") or name.endswith("_function"):
            continue
        if value is None or isinstance(value, (bool, int, float, str)):
            out.append((name, value))
        elif isinstance(value, tuple) and all(isinstance(v, (bool, int, float, str, type(None))) for v in value):
            out.append((name, value))
        elif isinstance(value, (types.FunctionType, types.BuiltinFunctionType, types.MethodType)):
            out.append((name, getattr(value, "__module__", ""), getattr(value, "__qualname__", ""), id(value)))
    return tuple(out)


def _inputs_key(inputs: Any) -> tuple | None:
    if not isinstance(inputs, np.ndarray) or inputs.dtype.kind not in "fiub":
        return None
    return inputs.dtype.str, inputs.shape, hashlib.sha1(_bytes(inputs), usedforsecurity=False).digest()


def _bytes(array: np.ndarray) -> np.ndarray:
    """An array's memory as bytes, whatever its dtype (bfloat16 has no buffer format)."""
    return np.ascontiguousarray(array).reshape(-1).view(np.uint8)


def _remember(key: tuple, entry: _Entry) -> None:
    _ENTRIES[key] = entry
    _trim()


def _trim() -> None:
    while len(_ENTRIES) > MAX_ENTRIES or (len(_ENTRIES) > 1 and held_bytes() > MAX_BYTES):
        _ENTRIES.popitem(last=False)


def held_bytes() -> int:
    return sum(entry.nbytes for entry in _ENTRIES.values())


def clear() -> None:
    global hits, digests
    _ENTRIES.clear()
    hits = digests = 0


__all__ = ["reference_outputs", "rememberable", "state_digest", "held_bytes", "clear", "MAX_ENTRIES", "MAX_BYTES"]
