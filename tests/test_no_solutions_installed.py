"""No solution in anything a student installs (issue 21 §3): neither the grader package nor
an exported kit's files hold a function that, called with an exercise's inputs and its
defaults, returns what the reference returns. The checks take their right answers from
the reference (recorded into kits), and their mistake recipes refuse to compute the right
formula.

Every function is found by its signature, not by name: module-level functions public or
private, and the helpers a conftest's fixture hands the tests as a namespace. The scan of
the whole package runs in a child process with its own working directory, since it calls
functions it knows nothing about.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Run in a child: import every module of the grader package (or of a kit folder), call every
# function whose signature takes an exercise's arguments, and report which answer like the
# reference. The reference is called with the same arguments in the same process, and the
# reference itself is scanned too, as the control that the scan can find an answer.
_SCAN = textwrap.dedent(r'''
    import importlib, importlib.util, inspect, json, pkgutil, signal, sys
    from pathlib import Path
    import numpy as np

    root, target = Path(sys.argv[1]), sys.argv[2]
    sys.path.insert(0, str(root))
    from grader.checks.batchnorm import make_hidden_batchnorm_inputs
    from grader.checks.standardize import make_hidden_standardize_inputs
    from grader.kit import leak_forms
    import reference.conv_bn as keras_ref
    import reference.conv_bn_torch as torch_ref

    def nchw(a):
        return np.ascontiguousarray(np.moveaxis(a, -1, 1))

    cases = []  # (arguments, the reference's answer): both layouts, eps given and by default
    for seed in (0, 1):
        X_train, X_test = make_hidden_standardize_inputs(seed)
        x, gamma, beta = make_hidden_batchnorm_inputs(seed)
        for ref, layout in ((keras_ref, lambda a: a), (torch_ref, nchw)):
            a, b, xx = layout(X_train), layout(X_test), layout(x)
            cases.append(((a, b), ref.standardize(a, b)))
            cases.append(((xx, gamma, beta), ref.batchnorm_forward(xx, gamma, beta)))
        cases.append(((x, gamma, beta, 1e-3), keras_ref.batchnorm_forward(x, gamma, beta, 1e-3)))
        cases.append(((nchw(x), gamma, beta, 1e-5), torch_ref.batchnorm_forward(nchw(x), gamma, beta, 1e-5)))

    def modules():
        if target == "package":
            import grader
            found = []
            for info in pkgutil.walk_packages(grader.__path__, "grader."):
                if info.name.endswith("__main__"):  # runs the command line on import
                    continue
                try:
                    found.append(importlib.import_module(info.name))
                except Exception:
                    continue
            return found
        return leak_forms.kit_modules(Path(target))

    def functions(module):
        for name, value in sorted(vars(module).items()):
            if name.startswith("__"):
                continue
            fixture = leak_forms._fixture_function(value)
            if fixture is not None:
                for attr, helper in sorted(leak_forms._fixture_namespace(fixture).items()):
                    yield f"{module.__name__}.{name}().{attr}", helper
            elif inspect.isfunction(value) and value.__module__ == module.__name__:
                yield f"{module.__name__}.{name}", value

    def timeout(*_):
        raise TimeoutError

    signal.signal(signal.SIGALRM, timeout)
    candidates = [f for m in modules() for f in functions(m)]
    candidates.append(("reference.conv_bn.standardize (control)", keras_ref.standardize))
    called, answering = set(), []
    for name, function in candidates:
        try:
            signature = inspect.signature(function)
        except (TypeError, ValueError):
            continue
        for args, expected in cases:
            try:
                signature.bind(*args)
            except TypeError:
                continue
            called.add(name)
            signal.alarm(30)
            try:
                with np.errstate(all="ignore"):
                    result = function(*leak_forms._copy(args))
            except BaseException:
                continue
            finally:
                signal.alarm(0)
            if leak_forms.answers_alike(result, expected):
                answering.append(name)
                break
    print(json.dumps({"modules": len(modules()), "called": sorted(called), "answering": sorted(set(answering))}))
''')


def _scan(target: str, cwd: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", _SCAN, str(ROOT), target], cwd=cwd, capture_output=True,
                          text=True, timeout=900, env={"HOME": str(cwd), "TMPDIR": str(cwd), "PATH": "/usr/bin:/bin",
                                                       "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_no_function_in_the_grader_package_answers_like_the_reference(tmp_path):
    found = _scan("package", tmp_path)
    assert found["modules"] > 100
    # the recipes are among the functions called, so the scan reaches them (the batch-norm
    # recipes take the reference's output as a fifth argument: no exercise call fits them)
    for name in ("grader.checks.standardize._combined_stats", "grader.checks.standardize._own_stats",
                 "grader.checks.standardize._centered_only", "grader.checks.arrays.max_difference"):
        assert name in found["called"], name
    assert found["answering"] == ["reference.conv_bn.standardize (control)"], found["answering"]


def test_the_recipe_engines_refuse_the_right_formula():
    """A recipe must name its deliberate difference: asked for none, it raises instead of
    returning the answer."""
    from grader.checks import batchnorm, standardize

    X_train, X_test = standardize.make_hidden_standardize_inputs(0)
    for axis in ((0, 1, 2), (2, 1, 0), (-4, -3, -2)):
        with pytest.raises(ValueError, match="right recipe"):
            standardize._train_stats(X_train, X_test, axis=axis, ddof=0)
    with pytest.raises(ValueError):
        standardize._train_stats(X_train, X_test, axis=(0, 1, 2), ddof=1e-9)
    x, gamma, beta = batchnorm.make_hidden_batchnorm_inputs(0)
    with pytest.raises(ValueError, match="right formula"):
        batchnorm._misnormalize(x, gamma, beta, 1e-3, axes=(0, 1, 2), ddof=0, divisor="eps_inside")
    with pytest.raises(ValueError, match="right formula"):
        batchnorm._recipe()(x, gamma, beta, 1e-3, None)
    # an axis of length 1 pools nothing: (0, 1, 2) and (0, 2) are the same choice here
    flat = x[:, :1]
    with pytest.raises(ValueError, match="right formula"):
        batchnorm._misnormalize(flat, gamma, beta, 1e-3, axes=(0, 2), ddof=0, divisor="eps_inside")


def _kit(name: str, out: Path) -> Path:
    from grader.assignment.spec import load_assignment
    from grader.kit.export import build_kit

    return build_kit(load_assignment(name), out / f"{name}_kit", samples=False)


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ["conv_bn", "conv_bn_torch"])
def test_no_function_in_an_exported_kit_answers_like_the_reference(assignment, tmp_path):
    kit = _kit(assignment, tmp_path)
    folder = kit.root
    conftests = sorted(folder.rglob("conftest.py"))
    if assignment == "conv_bn_torch":
        assert conftests, "the torch kit ships its tests' helper file"
    found = _scan(str(folder), tmp_path)
    if assignment == "conv_bn_torch":  # the fixture's helpers are reached and called
        assert any("conftest.nchw()." in name for name in found["called"]), found["called"]
    assert found["answering"] == ["reference.conv_bn.standardize (control)"], found["answering"]


_CORRECT_HELPER = textwrap.dedent('''\
    from types import SimpleNamespace

    import numpy as np
    import pytest


    def _tidy(a, b):
        axes = (0, 2, 3)
        m, s = a.mean(axis=axes, keepdims=True), a.std(axis=axes, keepdims=True)
        return ((a - m) / s).astype(np.float32), ((b - m) / s).astype(np.float32)


    def _bn(x, gamma, beta, eps=1e-5):
        axes = (0, 2, 3)
        m, v = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
        return gamma.reshape(1, -1, 1, 1) * (x - m) / np.sqrt(v + eps) + beta.reshape(1, -1, 1, 1)


    @pytest.fixture(scope="session")
    def helpers():
        return SimpleNamespace(norm=_bn, other=lambda a, b: a)
    ''')


def test_the_leak_scan_finds_a_correct_helper_in_a_conftest_and_behind_a_fixture(tmp_path):
    from grader.checks.batchnorm import make_hidden_batchnorm_inputs
    from grader.kit.leak_forms import answering_functions, kit_modules

    sys.path.insert(0, str(ROOT))
    from reference.conv_bn_torch import batchnorm_forward, standardize

    tests = tmp_path / "spec" / "tests"
    tests.mkdir(parents=True)
    (tests / "conftest.py").write_text(_CORRECT_HELPER, encoding="utf-8")
    x, gamma, beta = make_hidden_batchnorm_inputs(0)
    x = x.transpose(0, 3, 1, 2).copy()
    a, b = x * 10 + 100, x[:2] * 10 + 110
    calls = [("standardize", (a, b), {}, standardize(a, b)),
             ("batchnorm_forward", (x, gamma, beta, 1e-5), {}, batchnorm_forward(x, gamma, beta, 1e-5))]
    found = answering_functions(calls, kit_modules(tmp_path))
    assert len(found) == 3, found
    assert any("spec_tests_conftest._tidy` returns what reference.standardize" in f for f in found), found
    assert any("spec_tests_conftest._bn` returns what reference.batchnorm_forward" in f for f in found), found
    assert any("spec_tests_conftest.helpers().norm` returns what reference.batchnorm_forward" in f
               for f in found), found


@pytest.mark.slow
def test_kit_export_refuses_a_conftest_that_exposes_a_correct_helper(tmp_path):
    """The whole export, on a copy of conv_bn_torch whose conftest hands the tests a working
    batch norm through its fixture: nothing is written, and the refusal names the helper."""
    import shutil

    from grader.assignment.spec import load_assignment
    from grader.kit.export import KitError, build_kit

    copy = tmp_path / "conv_bn_torch"
    shutil.copytree(ROOT / "assignments" / "conv_bn_torch", copy, ignore=shutil.ignore_patterns("samples"))
    shutil.copyfile(ROOT / "reference" / "conv_bn_torch.py", copy / "reference.py")
    shutil.copyfile(ROOT / "assignments" / "conv_bn" / "faces.py", copy / "faces.py")
    toml = (copy / "assignment.toml").read_text(encoding="utf-8")
    toml = toml.replace('reference = "../../reference/conv_bn_torch.py"', 'reference = "reference.py"')
    toml = toml.replace('support = ["../conv_bn/faces.py"]', 'support = ["faces.py"]')
    (copy / "assignment.toml").write_text(toml, encoding="utf-8")
    conftest = copy / "tests" / "conftest.py"
    conftest.write_text(conftest.read_text(encoding="utf-8") + textwrap.dedent('''

        def _answer(x, gamma, beta, eps=1e-5):
            axes = (0,) + tuple(range(2, np.ndim(x)))
            m, v = np.mean(x, axis=axes, keepdims=True), np.var(x, axis=axes, keepdims=True)
            shape = (1, -1) + (1,) * (np.ndim(x) - 2)
            return np.reshape(gamma, shape) * (x - m) / np.sqrt(v + eps) + np.reshape(beta, shape)


        @pytest.fixture
        def solved():
            return SimpleNamespace(batchnorm=_answer)
        '''), encoding="utf-8")
    out = tmp_path / "out"
    with pytest.raises(KitError) as refused:
        build_kit(load_assignment(copy), out, samples=False)
    assert "conftest._answer` returns what reference.batchnorm_forward" in str(refused.value)
    assert "conftest.solved().batchnorm` returns what reference.batchnorm_forward" in str(refused.value)
    assert not out.exists() or not any(out.iterdir())
