"""The PyTorch adapter's numerical test of two layers (`grader.checks.equivalence` says
when it is asked): fresh copies with the same seeded random parameters and buffers, run
on the same random inputs, of a wide range of magnitudes, in `eval()` and `train()`.

Only torch's own layer classes are copied (those the rebuild allow-lists, which is every
layer of a student's `RebuiltModule`, and the same classes in the reference): a copy of
such a layer runs torch's code only, never the student's. The input shape comes from the
graph, channels last (`grader.frameworks.torch.shapes`), and is turned back into NCHW.
"""
from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from grader.frameworks.torch.rebuild import PLANS
from grader.frameworks.torch.shapes import nchw

# Largest input (per example) built for a numerical test; bigger layers are compared by spec.
MAX_ELEMENTS = 1 << 18
_CACHE_SIZE = 512
_VERDICTS: OrderedDict[tuple, bool] = OrderedDict()
_SEED = 20261207


def _builtin(layer: Any) -> bool:
    cls = type(layer)
    return isinstance(layer, nn.Module) and cls.__name__ in PLANS and getattr(nn, cls.__name__, None) is cls


def _settings(layer: nn.Module) -> str:
    """What a layer computes besides its tensors: its `extra_repr` and the attributes
    torch's layers keep their settings in (repr of each, for the verdict cache)."""
    names = sorted(k for k, v in vars(layer).items() if not k.startswith("_") and k != "training"
                   and isinstance(v, (int, float, str, bool, tuple, type(None))))
    return f"{layer.extra_repr()}|" + "|".join(f"{k}={getattr(layer, k)!r}" for k in names)


def numerically_same(layer_a: Any, layer_b: Any, input_shape: tuple | None) -> bool:
    """Fresh copies of both layers, with the same random tensors, agree on random inputs
    of `input_shape` (channels last, batch axis first; a batch of 2 is built) in `eval()`
    and `train()`. Remembered per pair of settings and shape."""
    if not (_builtin(layer_a) and _builtin(layer_b)) or type(layer_a) is not type(layer_b):
        return False
    if input_shape is None or len(input_shape) < 2 or any(not isinstance(d, int) for d in input_shape[1:]):
        return False
    shape = nchw((2, *(int(d) for d in input_shape[1:])))
    if int(np.prod(shape)) > 2 * MAX_ELEMENTS:
        return False
    key = (type(layer_a).__name__, _settings(layer_a), _settings(layer_b), shape)
    if key in _VERDICTS:
        _VERDICTS.move_to_end(key)
        return _VERDICTS[key]
    verdict = _run_both(layer_a, layer_b, shape)
    _VERDICTS[key] = verdict
    while len(_VERDICTS) > _CACHE_SIZE:
        _VERDICTS.popitem(last=False)
    return verdict


def _random_state(rng: np.random.Generator, state: dict) -> dict[str, torch.Tensor]:
    """Values no initializer gives (a zero bias or a unit scale hides differences);
    variances stay positive, counters stay as they are."""
    out = {}
    for key, tensor in state.items():
        if not tensor.is_floating_point():
            out[key] = tensor.clone()
            continue
        value = rng.normal(0.0, 0.5, size=tuple(tensor.shape))
        if key.endswith("running_var"):
            value = np.abs(value) + 0.5
        out[key] = torch.from_numpy(value.astype(np.float32)).to(tensor.dtype)
    return out


def _run_both(layer_a: nn.Module, layer_b: nn.Module, shape: tuple) -> bool:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a, b = copy.deepcopy(layer_a), copy.deepcopy(layer_b)
        state_a, state_b = a.state_dict(), b.state_dict()
        if state_a.keys() != state_b.keys() or any(state_a[k].shape != state_b[k].shape for k in state_a):
            return False
        rng = np.random.default_rng(_SEED)
        state = _random_state(rng, state_a)
        a.load_state_dict(state)
        b.load_state_dict({k: v.clone() for k, v in state.items()})
        scale = rng.choice(np.array([0.01, 0.3, 1.0, 7.0, 100.0]), size=shape)
        x = torch.from_numpy((rng.normal(0.0, 1.0, size=shape) * scale).astype(np.float32))
        with torch.no_grad():
            for training in (False, True):
                a.train(training)
                b.train(training)
                ya, yb = a(x.clone()), b(x.clone())
                if ya.shape != yb.shape:
                    return False
                ya, yb = ya.numpy(), yb.numpy()
                tolerance = 1e-5 * max(1.0, float(np.max(np.abs(ya))) if ya.size else 1.0)
                if not np.allclose(ya, yb, rtol=1e-5, atol=tolerance, equal_nan=True):
                    return False
        return True
    except Exception:  # noqa: BLE001 - layers that cannot run alike are not the same
        return False
    finally:
        torch.set_num_threads(threads)


__all__ = ["MAX_ELEMENTS", "numerically_same"]
