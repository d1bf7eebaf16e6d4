"""docs/authoring.md describes everything an assignment author can use: every spec key,
fixture, `submission` method, marker and check. When one is added without documentation,
this fails and names it."""
from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from grader import testing
from grader.checks import CheckFailed
from grader.assignment.spec import SPEC_KEYS
from grader.checks import architecture, arrays, batchnorm, models, standardize
from grader.run.submission import Submission

GUIDE = (Path(__file__).resolve().parent.parent / "docs" / "authoring.md").read_text(encoding="utf-8")


def test_every_spec_key_has_a_row_in_the_keys_table():
    missing = [k.name for k in SPEC_KEYS if f"| `{k.name}` |" not in GUIDE]
    assert not missing, f"document these assignment.toml keys in docs/authoring.md: {missing}"


def test_every_fixture_and_submission_method_is_described():
    for fixture in ("submission", "reference", "hidden_rng"):
        assert f"| `{fixture}` |" in GUIDE, fixture
    public = [n for n, f in inspect.getmembers(Submission, inspect.isfunction)
              if not n.startswith("_") and n not in ("open", "close", "take_output", "use_channel")]
    assert {"call", "call_full", "model", "probe", "probe_model", "source"} <= set(public)
    missing = [n for n in public if f"`{n}(" not in GUIDE]
    assert not missing, f"document these submission methods in docs/authoring.md: {missing}"


def test_every_marker_is_described():
    missing = [n for n in testing.__all__ if n != "CheckFailed" and f"`{n}" not in GUIDE]
    assert not missing, f"document these markers in docs/authoring.md: {missing}"


@pytest.mark.parametrize("module", [architecture, models, arrays, batchnorm, standardize],
                         ids=lambda m: m.__name__)
def test_every_check_is_described(module):
    functions = [n for n in module.__all__ if inspect.isfunction(getattr(module, n))]
    assert functions
    missing = [n for n in functions if f"`{n}(" not in GUIDE]
    assert not missing, f"document these checks of {module.__name__} in docs/authoring.md: {missing}"


def _section(title: str) -> str:
    start = GUIDE.index(title)
    end = GUIDE.find("\n## ", start + len(title))
    return GUIDE[start:end if end > 0 else None]


def _python_blocks(text: str) -> list[str]:
    return [block.split("```", 1)[0] for block in text.split("```python\n")[1:]]


def test_the_error_classes_and_their_fields_are_documented():
    from grader.frameworks.keras.rebuild import ModelRejected
    from grader.sandbox import errors

    section = _section("### Errors a test may catch")
    for cls in (CheckFailed, errors.SandboxError, errors.StudentCodeError, errors.MissingFunction,
                errors.SandboxTimeout, errors.SandboxCrashed, errors.ReplyRejected, errors.ProbeError, ModelRejected):
        assert f"`{cls.__name__}" in section, cls
    student = errors.StudentCodeError("unet_model", {"type": "ValueError", "message": "m",
                                                     "where": "cell In [3] [unet_model]", "line": 4})
    assert (student.where, student.function) == ("cell In [3]", "unet_model")
    for field in ("name", "type", "detail", "traceback", "where", "line", "function", "not_implemented", "via_probe",
                  "output"):
        assert f"`{field}`" in section and hasattr(student, field), field
    failed = CheckFailed("m", hint="h", diagnosis="d", fraction=0.5)
    for field in ("message", "hint", "table", "diagnosis", "fraction"):
        assert f"`{field}`" in section and hasattr(failed, field), field
    assert issubclass(errors.StudentCodeError, errors.SandboxError) and not issubclass(errors.ProbeError,
                                                                                        errors.SandboxError)


def test_the_trace_fields_are_documented():
    import dataclasses

    from grader.run import calltrace

    section = _section("### Explaining a composite function that does not build")
    for cls in (calltrace.Trace, calltrace.TracedCall, calltrace.TracedArg):
        for field in dataclasses.fields(cls):
            if field.name != "notes":
                assert f"`{cls.__name__}.{field.name}" in section or f".{field.name}`" in section, \
                    (cls.__name__, field.name)
    example = _python_blocks(section)[0]
    assert "submission.trace(" in example and "Source(" in example


def test_the_layer_graph_example_runs_on_real_models():
    """The section's example check, run as written: it passes a U-Net-like head ending in a
    1x1 Conv2D and fails one ending in a 3x3 Conv2D, naming what produced the output."""
    import keras

    from grader.checks.architecture import LayerGraph, GraphNode, LayerSpec

    section = _section("## The layer graph, for checks of your own")
    for name in ("producer(k)", "feeds(i)", "consumers(i)", "ancestors(i)"):
        assert f"`LayerGraph.{name}`" in section and hasattr(LayerGraph, name.split("(")[0]), name
    for cls, fields in ((GraphNode, ("spec", "layer", "input_shape", "origin", "location")),
                        (LayerSpec, ("kind", "params", "inputs", "name"))):
        for field in fields:
            assert f"`{cls.__name__}.{field}" in section, (cls.__name__, field)
    namespace: dict = {}
    exec(compile(_python_blocks(section)[0], "authoring.md", "exec"), namespace)  # noqa: S102 - our own docs
    check = namespace["expect_output_from_a_1x1_conv"]

    def head(kernel):
        x = keras.Input((8, 8, 3))
        y = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(x)
        return keras.Model(x, keras.layers.Conv2D(5, kernel, padding="same")(y))

    check(head(1), 5)
    with pytest.raises(CheckFailed, match="The model's output comes from Conv2D 5 @ 3x3"):
        check(head(3), 5)


def test_the_modules_key_and_keras2_sections_exist():
    modules = _section("### The course's helper modules (`[modules]`)")
    assert '= "missing"' in modules and "standins/" in modules and "notes" in modules
    assert "### Keras 2 era notebooks" in GUIDE
