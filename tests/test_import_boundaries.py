"""The framework-free core imports no framework and no framework adapter (issue 22 §1).

The checks, the notebook reader, the renderers, the classroom and the result model must
read the same whichever framework an assignment uses: they reach Keras or PyTorch only
through `grader.checks.adapters`, which imports an adapter by name once a model of its
framework exists. Each module is parsed, never imported (importing would pull the very
packages this forbids, and an import hidden inside a function counts as much as one at
the top), so this holds on a machine without TensorFlow or torch.

The sandbox is part of that core: what a framework needs done on the sandbox's side (the
worker's preload, the child's seeding, a returned model described as data) lives in the
framework's own package (`grader/frameworks/<name>/child/`), which the worker loads by
the name it is given (`grader.sandbox.hooks`). Those packages are mounted alone under
bubblewrap, so they import nothing from the rest of the grader.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GRADER = ROOT / "grader"
CORE = ("checks", "notebook", "render", "classroom", "results", "assignment", "sandbox")
FORBIDDEN = ("keras", "tensorflow", "tf_keras", "torch", "grader.frameworks.keras", "grader.frameworks.torch")

# Each framework's sandbox-side package (`grader.sandbox.hooks`): mounted alone.
CHILD_PACKAGES = ("frameworks/keras/child", "frameworks/torch/child")


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


def _framework_strings(path: Path) -> list[str]:
    """Framework modules looked up in `sys.modules` (`sys.modules.get("tensorflow")`,
    `"torch" in sys.modules`, `sys.modules["keras"]`): reaching one without an import."""
    def modules(node: ast.AST) -> bool:
        return isinstance(node, ast.Attribute) and node.attr == "modules"

    def named(node: ast.AST | None) -> list[str]:
        return [node.value] if isinstance(node, ast.Constant) and isinstance(node.value, str) else []

    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and modules(node.func.value) \
                and node.args:
            found += named(node.args[0])
        elif isinstance(node, ast.Subscript) and modules(node.value):
            found += named(node.slice)
        elif isinstance(node, ast.Compare) and any(modules(c) for c in node.comparators):
            found += named(node.left)
    return sorted({name for name in found if forbidden(name)})


@pytest.mark.parametrize("path", _modules(("sandbox",)), ids=lambda p: str(p.relative_to(GRADER)))
def test_the_sandbox_names_no_framework_module(path):
    found = _framework_strings(path)
    assert not found, (f"{path.relative_to(ROOT)} names {found}: what a framework needs in the sandbox belongs in "
                       "its package under grader/frameworks/<name>/child/, called through grader.sandbox.hooks")


def test_the_string_scan_sees_a_sys_modules_lookup(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text('import sys\n"""A docstring about tensorflow."""\nkeras = {"keras": 3}.get("keras")\n'
                     'tf = sys.modules.get("tensorflow")\nif "torch" in sys.modules:\n    sys.modules["tf_keras.layers"]\n',
                     encoding="utf-8")
    assert _framework_strings(probe) == ["tensorflow", "tf_keras.layers", "torch"]


@pytest.mark.parametrize("folder", CHILD_PACKAGES)
def test_framework_child_packages_import_nothing_else_of_the_grader(folder):
    """Under bubblewrap the package is mounted alone (as `grader_framework`): an import of
    the grader's own modules, or an absolute import of the package itself, fails there."""
    package = ".".join(("grader", *folder.split("/")))
    for path in sorted((GRADER / folder).glob("*.py")):
        grader_imports = sorted(n for n in imported_names(path)
                                if (n == "grader" or n.startswith("grader.")) and not n.startswith(package))
        tree = ast.parse(path.read_text(encoding="utf-8"))
        absolute_own = [node.module for node in ast.walk(tree)
                        if isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").startswith("grader")]
        assert not grader_imports and not absolute_own, (path.relative_to(ROOT), grader_imports, absolute_own)


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
