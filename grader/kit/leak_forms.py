"""The leak scan's checks for solutions that are not reference source lines.

A kit (and the grader package students install beside it) can hand out a solution in
forms a text search for the reference's code never finds:

* a saved Keras model or a model config that rebuilds the reference (`model_from_json`
  of a pasted config scored marks with no layer written);
* a saved PyTorch module or state file (`torch.load` restores pickled code), or a module
  description as the sandbox sends one (`grader.frameworks.torch.child.describe`: module tree,
  fx graph and state), which `rebuild_torch` turns back into a working module;
* a function that returns what the reference returns: the grader package once held
  `reference_standardize` and `reference_batchnorm`, each a working answer a notebook
  could call. For a reference that returns a PyTorch module, a function returning a module
  whose layer graph matches the reference's is that answer (random weights make outputs
  differ, the architecture is what the exercise asks for).

`rebuildable_models` reads every file of the kit; `answering_functions` calls the functions
(public and private) of the package's checks and of the kit's own modules, its test helper
files (`conftest.py`) included, and those a conftest's fixtures hand the tests as a
namespace (`nchw.standard`), with the arguments the visible tests gave the reference, and
names each one whose result equals the reference's: `from conftest import _helper` is as
easy as a public name, and a kit's tests folder sits next to the notebook.
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import pkgutil
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

MODEL_CLASSES = frozenset({"Sequential", "Functional", "Model"})
SAVED_MODEL_SUFFIXES = (".keras", ".h5", ".hdf5", ".pb", ".pt", ".pth", ".ckpt", ".safetensors")
# Functions that run TensorFlow are not called: the export process must not start TF work
# it does not need, and what they compute is Keras' own layer, not the package's.
_SKIPPED_SOURCE = ("keras", "tensorflow")


def _found(tree: Any, rebuilds: Callable[[dict], str | None], depth: int = 0) -> Iterator[str]:
    """The name of every object in a JSON tree that `rebuilds` recognizes as a model; a
    recognized object is not searched further. Deeper than 60 levels is not searched."""
    if depth > 60:
        return
    if isinstance(tree, dict):
        name = rebuilds(tree)
        if name is not None:
            yield name
            return
        for value in tree.values():
            yield from _found(value, rebuilds, depth + 1)
    elif isinstance(tree, list):
        for value in tree:
            yield from _found(value, rebuilds, depth + 1)


def _keras_model_config(node: dict) -> str | None:
    """A Keras model config, which `model_from_json` rebuilds."""
    config = node.get("config")
    if node.get("class_name") in MODEL_CLASSES and isinstance(config, dict) and "layers" in config:
        return str(node["class_name"])
    return None


def _module_description(node: dict) -> str | None:
    """A PyTorch module described as the sandbox sends one: its module tree and fx graph."""
    graph = node.get("graph")
    if isinstance(node.get("modules"), list) and isinstance(graph, dict) and "nodes" in graph:
        return str(node.get("class_name", "a module"))
    return None


def rebuildable_models(folder: Path) -> list[str]:
    """Every file of `folder` that holds a saved Keras model or a model config, a saved
    PyTorch module, or a PyTorch module description."""
    found = []
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        where = path.relative_to(folder)
        if path.suffix.lower() in SAVED_MODEL_SUFFIXES:
            found.append(f"{where} is a saved model file, which rebuilds a model")
            continue
        if path.suffix.lower() not in (".json", ".ipynb", ".py", ".txt", ".toml", ".md"):
            continue
        text = path.read_bytes().decode("utf-8", "replace")
        if '"class_name"' not in text and "'class_name'" not in text:
            continue
        if '"modules"' in text:
            try:
                described = sorted(set(_found(json.loads(text), _module_description)))
            except ValueError:
                described = []
            if described:
                found.append(f"{where} holds a PyTorch module description ({', '.join(described)}), which "
                             f"rebuilds the module")
                continue
        try:
            kinds = sorted(set(_found(json.loads(text), _keras_model_config)))
        except ValueError:
            kinds = ["a model"] if '"layers"' in text and any(f'"{k}"' in text for k in MODEL_CLASSES) else []
        if kinds:
            found.append(f"{where} holds a Keras model config ({', '.join(kinds)}), which rebuilds the model")
    return found


# ---------------------------------------------------------------- functions that answer like the reference

def _same(found: Any, expected: Any, depth: int = 0) -> bool:
    if depth > 10:
        return False
    if isinstance(expected, (tuple, list)):
        return (isinstance(found, (tuple, list)) and len(found) == len(expected) and len(expected) > 0
                and all(_same(f, e, depth + 1) for f, e in zip(found, expected)))
    if isinstance(expected, (np.ndarray, np.generic, float)):
        try:
            a = np.asarray(found, dtype=np.float64)
            b = np.asarray(expected, dtype=np.float64)
        except (TypeError, ValueError):
            return False
        return a.shape == b.shape and b.size > 1 and bool(np.allclose(a, b, rtol=1e-4, atol=1e-4, equal_nan=False))
    return False


def answers_alike(found: Any, expected: Any) -> bool:
    """`found` equals the reference's `expected` within the checks' tolerances (1e-4): the
    rule by which a function is a working answer."""
    return _same(found, expected)


def _arrays(value: Any, depth: int = 0) -> Any:
    """Tensors as arrays, so a PyTorch reference's answers compare like NumPy ones."""
    from grader.kit.torch_models import is_tensor, tensor_array

    if depth > 10:
        return value
    if is_tensor(value):
        try:
            return tensor_array(value)
        except Exception:  # noqa: BLE001 - a tensor without a NumPy twin answers nothing comparable
            return None
    if isinstance(value, (tuple, list)):
        return type(value)(_arrays(v, depth + 1) for v in value)
    return value


def _copy(value: Any) -> Any:
    from grader.kit.torch_models import is_tensor

    if isinstance(value, np.ndarray):
        return value.copy()
    if is_tensor(value):  # a function under test may write into its arguments
        return value.detach().clone()
    if isinstance(value, (tuple, list)):
        return type(value)(_copy(v) for v in value)
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return value


def _callable_here(value: Any) -> bool:
    try:
        source = inspect.getsource(value)
    except (OSError, TypeError):
        source = ""
    return not any(word in source for word in _SKIPPED_SOURCE)


def _fixture_function(value: Any) -> Callable | None:
    """The function behind a pytest fixture (pytest wraps it so that a direct call fails)."""
    unwrap = getattr(value, "_get_wrapped_function", None)
    if callable(unwrap) and hasattr(value, "_fixture_function_marker"):
        try:
            return unwrap()
        except Exception:  # noqa: BLE001 - another pytest's wrapper: not a fixture we can open
            return None
    return None


def _fixture_namespace(fixture: Callable) -> dict[str, Any]:
    """What a fixture that takes no other fixture hands the tests, when it is a namespace of
    helpers (`nchw.standard(...)`): a test file reaches them by attribute, and so can a
    notebook that imports the conftest and calls the fixture's function."""
    try:
        if inspect.signature(fixture).parameters or inspect.isgeneratorfunction(fixture):
            return {}
        value = fixture()
    except Exception:  # noqa: BLE001 - a fixture that needs pytest to run hands a notebook nothing
        return {}
    if isinstance(value, (type, type(inspect))) or not hasattr(value, "__dict__"):
        return {}
    return {k: v for k, v in vars(value).items() if inspect.isfunction(v)}


def _functions(module: Any) -> Iterator[tuple[str, Callable]]:
    """Every function the module defines, private ones included (an underscore stops no
    import), and the helpers its fixtures hand out as a namespace."""
    for name, value in sorted(vars(module).items()):
        if name.startswith("__"):
            continue
        fixture = _fixture_function(value)
        if fixture is not None:
            for attr, helper in sorted(_fixture_namespace(fixture).items()):
                if _callable_here(helper):
                    yield f"{module.__name__}.{name}().{attr}", helper
            continue
        if not inspect.isfunction(value) or value.__module__ != module.__name__:
            continue
        if _callable_here(value):
            yield f"{module.__name__}.{name}", value


def _accepts(function: Callable, args: tuple, kwargs: dict) -> bool:
    """Only functions these arguments fit are called: nothing else could answer, and a
    private helper is not run on arguments it was never meant for."""
    try:
        inspect.signature(function).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return False
    return True


def package_modules() -> list[Any]:
    """The grader package's checks: what a student's notebook can import from the wheel and
    that computes on arrays."""
    import grader.checks

    modules = [grader.checks]
    for info in pkgutil.iter_modules(grader.checks.__path__, "grader.checks."):
        try:
            modules.append(importlib.import_module(info.name))
        except Exception:  # noqa: BLE001 - a module that does not import cannot be called by a student either
            continue
    return modules


def _scan_name(folder: Path, path: Path) -> str:
    parts = path.relative_to(folder).with_suffix("").parts
    return "_grader_kit_scan_" + "_".join("".join(c if c.isalnum() else "_" for c in p) for p in parts)


def kit_modules(folder: Path) -> list[Any]:
    """The kit's own Python files a notebook can import: support files next to it, and the
    tests' helper files (`conftest.py`, at any depth), which a student can import as well."""
    folder = Path(folder)
    modules = []
    paths = sorted(folder.glob("*.py")) + sorted(p for p in folder.rglob("conftest.py") if p.parent != folder)
    for path in paths:
        name = _scan_name(folder, path)
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        try:
            sys.modules[name] = module
            spec.loader.exec_module(module)
        except Exception:  # noqa: BLE001 - not importable: nothing a student could call
            continue
        finally:
            sys.modules.pop(name, None)
        modules.append(module)
    return modules


def _torch_reference(value: Any) -> Any:
    """The real PyTorch module behind an answer (the export's recording view of it), or None."""
    from grader.kit.torch_models import TorchLiveModel, is_torch_module

    if isinstance(value, TorchLiveModel):
        return value._model
    return value if is_torch_module(value) else None


def _same_module(found: Any, expected: Any) -> bool:
    """`found` is a module whose layer graph matches the reference's, layer for layer."""
    from grader.kit.torch_models import is_torch_module

    if not is_torch_module(found):
        return False
    from grader.checks.explain import explain_difference
    from grader.checks.graph import layer_graph
    try:
        return explain_difference(layer_graph(expected), layer_graph(found), exercise="the reference") is None
    except Exception:  # noqa: BLE001 - a module the checks cannot read is no working answer
        return False


def answering_functions(calls: list[tuple[str, tuple, dict, Any]], modules: list[Any]) -> list[str]:
    """Each public function that, given the arguments a visible test gave the reference,
    returns the reference's answer: a working solution a notebook could call."""
    found: dict[str, str] = {}
    candidates = [c for module in modules for c in _functions(module)]
    for reference_name, args, kwargs, expected in calls:
        module = _torch_reference(expected)
        if module is not None:
            for name, function in candidates:
                if name in found or not _accepts(function, args, kwargs):
                    continue
                try:
                    result = function(*_copy(args), **_copy(kwargs))
                except Exception:  # noqa: BLE001 - a function these arguments do not fit answers nothing
                    continue
                if _same_module(result, module):
                    found[name] = (f"`{name}` returns a module with the layers of reference.{reference_name}'s "
                                   f"on a visible test's arguments: a working solution students could call")
            continue
        expected = _arrays(expected)
        if not isinstance(expected, (np.ndarray, tuple, list)):
            continue
        for name, function in candidates:
            if name in found or not _accepts(function, args, kwargs):
                continue
            try:
                with np.errstate(all="ignore"):
                    result = function(*_copy(args), **_copy(kwargs))
            except Exception:  # noqa: BLE001 - a function these arguments do not fit answers nothing
                continue
            if _same(_arrays(result), expected):
                found[name] = (f"`{name}` returns what reference.{reference_name} returns on a visible "
                               f"test's inputs: a working solution students could call")
    return [found[k] for k in sorted(found)]


__all__ = ["answering_functions", "answers_alike", "kit_modules", "package_modules", "rebuildable_models"]
