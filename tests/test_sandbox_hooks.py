"""The sandbox names no framework: it runs whatever framework package it is handed.

`grader.sandbox.hooks` is the whole interface between the sandbox and a framework. A
worker given no framework is plain Python (nothing preloaded, nothing seeded but Python's
and NumPy's generators); a worker given a package of a third kind, written here in a few
lines, gets that package's preload, seeding, watching, building context and value
encoding in both directions, under every isolation level this machine offers. Keras and
torch are two such packages (grader/frameworks/*/child/), covered by the rest of the suite.
"""
from __future__ import annotations

import textwrap
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from grader.frameworks.sandbox_side import sandbox_side
from grader.sandbox.client import Worker, choose_isolation
from grader.sandbox.hooks import FrameworkSide

ABACUS = textwrap.dedent('''\
    """A third framework, as small as one can be: its values are Fractions."""
    import contextlib
    import fractions

    import numpy as np

    SEEDS, LABELS, EVENTS = [], set(), []
    BUILDING = []

    def preload(options):
        EVENTS.append("preload")
        return {"abacus": options.get("version", "?")}

    def state():
        return {"abacus_events": list(EVENTS)}

    def seed(value):
        SEEDS.append(value)

    def watch(labels):
        LABELS.update(labels)
        EVENTS.append("watch")

    def before_definitions():
        EVENTS.append("before_definitions")

    def after_definitions():
        EVENTS.append("after_definitions")

    @contextlib.contextmanager
    def building(weights):
        BUILDING.append(weights)
        yield

    def encode(value, add_array, weights):
        if isinstance(value, fractions.Fraction):
            return {"$tensor": add_array(np.array([value.numerator, value.denominator], dtype=np.int64))}
        if isinstance(value, complex):  # a value of its own kind, read back only by this package
            return {"$complex": [value.real, value.imag]}
        return None

    def decode(tag, body, array):
        if tag == "$complex":
            real, imag = body
            return complex(float(real), float(imag))
        return None

    def tensor_from_array(array):
        return fractions.Fraction(int(array[0]), int(array[1]))
    ''')

STUDENT = textwrap.dedent('''\
    import sys

    def _abacus():
        return sys.modules.get("abacus") or sys.modules["grader_framework"]

    def half(x):
        return x / 2

    def kind(x):
        return type(x).__name__

    def rotate(z):
        return z * 1j

    def seen():
        m = _abacus()
        return {"seeds": list(m.SEEDS), "labels": sorted(m.LABELS), "events": list(m.EVENTS),
                "building": list(m.BUILDING)}

    def frameworks():
        return sorted(k for k in ("tensorflow", "torch", "keras", "tf_keras") if k in sys.modules)
    ''')

LEVELS = sorted({"process", choose_isolation("auto")})


def chunks() -> list[dict]:
    return [{"source": STUDENT, "line": 1, "label": "cell In [3]", "kind": "def"}]


@pytest.fixture(scope="module")
def abacus(tmp_path_factory) -> FrameworkSide:
    folder = tmp_path_factory.mktemp("frameworks") / "abacus"
    folder.mkdir()
    (folder / "__init__.py").write_text(ABACUS, encoding="utf-8")
    return FrameworkSide("abacus", "abacus", folder, options={"version": "2.0"})


@pytest.mark.parametrize("level", LEVELS)
def test_a_third_framework_plugs_in_without_the_sandbox_knowing_it(abacus, level, monkeypatch):
    monkeypatch.syspath_prepend(str(abacus.folder.parent))  # the grading process encodes arguments with it
    with Worker(framework=abacus, isolation=level) as worker:
        assert worker.info["abacus"] == "2.0"
        assert worker.probe()["abacus_events"] == ["preload"]  # the worker preloaded; nothing else ran there
        session = worker.session(chunks(), seed=11)
        try:
            # Sent as the framework's own value, it arrives as one; it comes back as its array.
            assert session.call("kind", Fraction(3, 4)).value == "Fraction"
            back = session.call("half", Fraction(3, 4), seed=5).value
            np.testing.assert_array_equal(back, [3, 8])
            rotated = session.call("rotate", complex(2, 1)).value
            seen = session.call("seen", seed=7, weights=False).value
            assert session.call("frameworks").value == []  # no TensorFlow, no torch: nothing preloaded them
        finally:
            session.close()
    assert rotated == complex(-1, 2)  # its own tag, written in the child, read by the package here
    assert seen["labels"] == ["cell In [3]"]
    assert seen["events"] == ["preload", "watch", "before_definitions", "after_definitions"]
    assert seen["seeds"][0] == 11 and seen["seeds"][-1] == 7  # the session's seed, then each call's
    assert seen["building"][-1] is False  # weights=False reaches the framework's building context


def test_a_worker_without_a_framework_is_plain_python():
    with Worker(framework=None, isolation="process") as worker:
        assert not {"keras", "tensorflow", "torch"} & set(worker.info)
        assert worker.probe()["framework"] is None
        session = worker.session(chunks())
        try:
            assert session.call("frameworks").value == []
            assert session.call("kind", np.float32(1.5)).value == "float32"
        finally:
            session.close()


def test_the_front_ends_pick_each_frameworks_package():
    keras3, keras2, torch = sandbox_side(), sandbox_side("keras", "2"), sandbox_side("torch")
    assert keras3.package == keras2.package == "grader.frameworks.keras.child"
    assert keras2.env.get("TF_USE_LEGACY_KERAS") == "1" and "TF_USE_LEGACY_KERAS" not in keras3.env
    assert keras2.options == {"keras": "2"}
    assert torch.package == "grader.frameworks.torch.child" and not torch.env
    for side in (keras3, torch):
        assert (side.folder / "__init__.py").is_file() and side.folder == Path(side.module().__file__).parent


@pytest.mark.skipif(choose_isolation("auto") != "full", reason="bubblewrap is not available here")
@pytest.mark.parametrize("framework", ["keras", "torch"])
def test_under_bubblewrap_the_child_sees_its_framework_package_and_nothing_else_of_the_grader(framework):
    """The sandbox package and the framework's own package, each mounted alone: no
    reference, no tests, no grading code (rebuild, checks) where student code runs."""
    side = sandbox_side(framework)
    code = textwrap.dedent('''\
        import importlib.util, os, sys

        def look():
            return {"opt": sorted(os.listdir("/opt/grader")),
                    "package": sorted(n for n in os.listdir("/opt/grader/grader_framework") if n.endswith(".py")),
                    "grader": importlib.util.find_spec("grader") is not None,
                    "loaded": sorted(m for m in sys.modules if m == "grader" or m.startswith("grader."))}
        ''')
    with Worker(framework=side, isolation="full") as worker:
        session = worker.session([{"source": code, "line": 1, "label": "cell In [1]", "kind": "def"}])
        try:
            seen = session.call("look").value
        finally:
            session.close()
    assert set(seen["opt"]) <= {"grader_sandbox", "grader_framework", "venv"}, seen["opt"]
    assert seen["package"] == sorted(p.name for p in side.folder.glob("*.py")), seen["package"]
    assert not seen["grader"] and not seen["loaded"], seen
