"""The framework-free core imports no framework and no framework adapter (issue 22 §1).

The checks, the notebook reader, the renderers, the classroom and the result model must
read the same whichever framework an assignment uses: they reach Keras or PyTorch only
through `grader.checks.adapters`, which imports an adapter by name once a model of its
framework exists. Each module is parsed, never imported (importing would pull the very
packages this forbids, and an import hidden inside a function counts as much as one at
the top), so this holds on a machine without TensorFlow or torch.

The sandbox is the framework's own side (the worker preloads it, the child seeds it and
installs Keras 2 semantics), so it is checked against a written list of today's
exceptions: anything new must be added here on purpose, with its reason.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GRADER = ROOT / "grader"
CORE = ("checks", "notebook", "render", "classroom", "results", "assignment")
FORBIDDEN = ("keras", "tensorflow", "tf_keras", "torch", "grader.frameworks.keras", "grader.frameworks.torch")

# Sandbox modules that import a framework or an adapter today, and why: (module path
# under grader/, the imported package, submodules included) -> the reason, for the reader.
SANDBOX_ALLOWED = {
    ("sandbox/worker.py", "tensorflow"): "the worker preloads the assignment's framework once, before forking, and "
                                         "checks that no TensorFlow op ran (a child forked after one hangs)",
    ("sandbox/worker.py", "keras"): "the same, Keras 3 and its layer modules",
    ("sandbox/worker.py", "tf_keras"): "the same, for Keras 2 era assignments",
    ("sandbox/worker.py", "torch"): "the same, for torch assignments",
    ("sandbox/worker.py", "grader.frameworks.torch.describe"): "preloaded so a child describes a module without "
                                                               "importing it after the fork",
    ("sandbox/child.py", "grader.frameworks.keras.keras2"): "Keras 2 semantics installed in the child before the "
                                                            "student's definitions run",
    ("sandbox/child.py", "grader.frameworks.keras.deferred_init"): "a model whose weights stay in the child is built "
                                                                   "without drawing them until something reads them",
    ("sandbox/protocol.py", "grader.frameworks.torch.describe"): "a returned nn.Module described as data, in the "
                                                                 "child",
}


def _modules(parts: tuple[str, ...]) -> list[Path]:
    found: list[Path] = []
    for part in parts:
        path = GRADER / part
        found += [path] if path.is_file() else sorted(path.rglob("*.py"))
    return found


def _package(path: Path, root: Path) -> list[str]:
    """The dotted package a module lives in, as a list ("grader", "checks")."""
    return list(path.relative_to(root).with_suffix("").parts[:-1])


def imported_names(path: Path, root: Path = ROOT) -> set[str]:
    """Every module name the file imports, at any depth: `import a.b`, `from a import b`
    (as a and a.b, since b may be a module), relative imports resolved, and literal names
    given to importlib.import_module or __import__."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = _package(path, root)
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names if alias.name != "*")
        elif isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant) \
                    and isinstance(node.args[0].value, str):
                names.add(node.args[0].value)
    return names


def forbidden(name: str) -> bool:
    return any(name == f or name.startswith(f + ".") for f in FORBIDDEN)


def test_the_parser_sees_imports_at_any_depth_and_relative_ones(tmp_path):
    pkg = tmp_path / "grader" / "checks"
    pkg.mkdir(parents=True)
    probe = pkg / "probe.py"
    probe.write_text("import os\n"
                     "def f():\n    from ..frameworks.keras import walk\n"
                     "class C:\n    def g(self):\n        import torch.nn as nn\n"
                     "def h():\n    import importlib\n    return importlib.import_module('tensorflow')\n",
                     encoding="utf-8")
    names = imported_names(probe, tmp_path)
    assert {"grader.frameworks.keras", "grader.frameworks.keras.walk", "torch.nn", "tensorflow"} <= names
    assert sorted(n for n in names if forbidden(n)) == ["grader.frameworks.keras", "grader.frameworks.keras.walk",
                                                          "tensorflow", "torch.nn"]
    assert not forbidden("grader.frameworks.errors") and not forbidden("torchvision_like")


@pytest.mark.parametrize("path", _modules(CORE), ids=lambda p: str(p.relative_to(GRADER)))
def test_core_module_imports_no_framework(path):
    bad = sorted(n for n in imported_names(path) if forbidden(n))
    assert not bad, (f"{path.relative_to(ROOT)} imports {', '.join(bad)}: the framework-free core reaches a "
                     "framework only through grader.checks.adapters (or grader.frameworks.preload to import one)")


def _covers(entry: tuple[str, str], where: str, name: str) -> bool:
    """An allowed (file, package) pair covers that package, its submodules, and the
    packages above it that `from package.sub import x` names on the way."""
    path, package = entry
    return path == where and (name == package or name.startswith(package + ".") or package.startswith(name + "."))


def test_sandbox_imports_only_the_listed_framework_code():
    found = {(str(p.relative_to(GRADER)), n) for p in _modules(("sandbox",)) for n in imported_names(p)
             if forbidden(n)}
    unlisted = sorted(f for f in found if not any(_covers(e, *f) for e in SANDBOX_ALLOWED))
    assert not unlisted, f"new framework imports in the sandbox, to list with a reason: {unlisted}"
    gone = sorted(e for e in SANDBOX_ALLOWED
                  if not any(f[0] == e[0] and (f[1] == e[1] or f[1].startswith(e[1] + ".")) for f in found))
    assert not gone, f"listed sandbox imports that are gone, to remove from the list: {gone}"


def test_the_core_finds_adapters_without_importing_them():
    """Importing the checks loads no adapter and no framework; the registry loads one only
    when its framework is in sys.modules (run in a fresh interpreter: this one has both)."""
    import subprocess
    import sys
    code = ("import sys\n"
            "import grader.checks.architecture, grader.checks.models, grader.checks.equivalence\n"
            "from grader.checks.adapters import adapter_for, candidates\n"
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('keras', 'tensorflow', 'tf_keras', 'torch')"
            " or m.startswith(('grader.frameworks.keras', 'grader.frameworks.torch')))\n"
            "print(loaded, [a.name for a in candidates()], adapter_for(object()))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[] [] None"
