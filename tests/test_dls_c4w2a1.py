"""dls_c4w2a1 end to end: students' existing notebooks for the course's Residual Networks
exercise, in its variants, graded as they are through the real path (sandbox worker,
probes, rebuild, the assignment's pytest tests).

The notebooks (tests/dls_c4w2a1_notebooks.py) have the course's layout: no tags, helper
modules and data files that are not there, test cells that call the blocks on arrays,
training and prediction cells. Each graded notebook is shared by the tests that read it
(module-scoped fixtures): grading one costs 5-15 s, most of it building ResNet50 twice.
"""
from __future__ import annotations

import importlib.util
import json

import pytest

import dls_c4w2a1_notebooks as nbs
from grader.assignment.spec import load_assignment
from grader.run.grading import grade_submission
from grader.notebook.cellnames import cell_names
from grader.results import Status
from grader.run.submission import Submission

pytestmark = pytest.mark.slow
ASSIGNMENT = "dls_c4w2a1"
EXERCISES = ("identity_block", "convolutional_block", "ResNet50")
# The course modules the spec declares missing that each variant imports: noted for the
# instructor, never a student's warning. (`resnets_utils` has a stand-in; the Keras 2 era
# module paths are restored in the sandbox.)
DECLARED_MISSING = {"current": ("scipy", "test_utils", "public_tests", "outputs"),
                    "2021": ("scipy", "test_utils", "public_tests", "outputs"),
                    "helper_names": ("scipy", "test_utils", "public_tests", "outputs"),
                    "keras2": ("pydot", "scipy")}


@pytest.fixture(scope="module")
def assignment():
    return load_assignment(ASSIGNMENT)


@pytest.fixture(scope="module")
def graded(tmp_path_factory, assignment, worker):
    """Each notebook graded once for the whole module, on first use."""
    folder = tmp_path_factory.mktemp("dls_c4w2a1")
    done: dict[str, object] = {}

    def grade(name: str, nb):
        if name not in done:
            done[name] = grade_submission(nbs.write(folder, nb, f"{name}.ipynb"), assignment, worker)
        return done[name]
    return grade


def correct(graded, variant: str):
    return graded(variant, nbs.course_notebook(variant))


def shortcut_mistakes(graded):
    """identity_block with BatchNormalization hard-coded to training=True; convolutional_block
    whose shortcut BatchNormalization reads the main path (its Conv2D then goes nowhere)."""
    return graded("mistakes_a", nbs.course_notebook(identity=nbs.BN_TRAINING_TRUE,
                                                    convolutional=nbs.SHORTCUT_ON_MAIN_PATH))


def merge_mistakes(graded):
    """identity_block adding the shortcut after the final ReLU; convolutional_block without
    BatchNormalization on the shortcut."""
    return graded("mistakes_b", nbs.course_notebook(identity=nbs.ADD_AFTER_RELU,
                                                    convolutional=nbs.NO_SHORTCUT_BN))


def stage_mistake(graded):
    return graded("mistakes_c", nbs.course_notebook(resnet=nbs.STAGE2_STRIDE_2))


def named_tests(result, exercise: str) -> dict[str, object]:
    return {t.nodeid.split("::")[-1]: t for t in result.tests if t.exercise == exercise}


def score_of(result, exercise: str) -> tuple[float, float]:
    tests = named_tests(result, exercise).values()
    return sum(t.score for t in tests), sum(t.max_score for t in tests)


def explain(result) -> str:
    return json.dumps(result.to_dict(), indent=1, default=str)[:6000]


# ------------------------------------------------------------------ the assignment itself

def test_spec_declares_keras_3_probes_and_points(assignment):
    assert assignment.keras == "3"
    assert assignment.exercises == EXERCISES
    assert assignment.probes is not None and assignment.probes.name == "probes.py"
    assert assignment.reference.name == "dls_c4w2a1.py"
    assert assignment.total_points == 28


def test_validate_assignment_passes(assignment, worker):
    """What `grader validate-assignment dls_c4w2a1` checks: the reference (as a generated
    master) gets full marks, the template zero, the points add up."""
    from grader.authoring.validate import validate

    report = validate(ASSIGNMENT, worker=worker)
    assert report.ok, report.render()


# ------------------------------------------------------------------ correct notebooks, all three variants

@pytest.mark.parametrize("variant", nbs.VARIANTS)
def test_course_notebook_gets_full_marks_without_import_warnings(graded, assignment, variant):
    """Every variant gets full marks, and no student is told that an import failed: the
    course's helpers are declared in the spec (`[modules]`), a stand-in for `resnets_utils`
    (the helper_names generation's BatchNormalization comes from it), the rest noted for the
    instructor only."""
    result = correct(graded, variant)
    assert not result.errors, explain(result)
    assert result.max_score == assignment.total_points, explain(result)
    assert result.score == result.max_score, explain(result)
    assert all(t.status is Status.PASSED for t in result.tests), explain(result)
    assert len(result.tests) == 10
    assert sum(1 for t in result.tests if t.visibility.value == "hidden") == 3
    warnings = "\n".join(result.warnings)
    assert not any("import" in w for w in result.warnings), warnings
    assert not any("a definition failed" in w for w in result.warnings), warnings
    notes = "\n".join(result.notes)
    absent = [m for m in DECLARED_MISSING[variant] if importlib.util.find_spec(m) is None]
    # One note for the instructor, naming each absent module the notebook imports and where.
    assert len(result.notes) == (1 if absent else 0), notes
    # Each place is one of the notebook's cells as the student finds it (no execution counts
    # saved: by its first line), never a number counting markdown cells.
    names = cell_names(nbs.course_notebook(variant).cells)
    for module in absent:
        assert f"`{module}` (" in notes and "declares missing" in notes, notes
        places = notes.split(f"`{module}` (", 1)[1]
        assert any(places.startswith(f"{name}, line ") for name in names if name.startswith("the ")), notes
    assert "resnets_utils" not in notes, notes


def test_declared_missing_modules_reach_the_instructor_view_only(graded):
    from grader.render import render_html, render_markdown, render_text

    result = correct(graded, "current")
    student = render_text(result, audience="student") + render_markdown(result) + render_html(result)
    instructor = render_text(result, audience="instructor")
    assert "declares missing" not in student and "declares missing" in instructor, instructor
    from grader.render import to_json_line
    assert json.loads(to_json_line(result))["notes"] == result.notes  # --format json is the instructor's
    for module in ("test_utils", "public_tests", "outputs"):  # (`outputs` also names tests: quoted here)
        assert f"`{module}`" not in student, student
        assert f"`{module}`" in instructor, instructor


def test_probes_adapt_to_the_keras2_signature(tmp_path, assignment, worker):
    """`identity_block(X, f, filters, stage, block)`: the probe passes stage and block, and
    the student's layer names (built from them) come back in the model."""
    path = nbs.write(tmp_path, nbs.course_notebook("keras2"), "keras2.ipynb")
    submission = Submission(path, assignment, worker).open()
    try:
        model = submission.probe_model("identity_block_model", (4, 4, 3), 2, (4, 4, 3), training=False)
        conv = submission.probe_model("convolutional_block_model", (6, 6, 3), 3, (2, 3, 5), 1)
    finally:
        submission.close()
    names = {layer.name for layer in model.layers}
    assert {"res2b_branch2a", "bn2b_branch2c"} <= names, names
    assert "res2a_branch1" in {layer.name for layer in conv.layers}
    assert tuple(conv.output.shape) == (None, 6, 6, 5)  # s=1 reached the student's function


# ------------------------------------------------------------------ real mistakes, each with its own message

def test_shortcut_conv_applied_to_the_main_path_is_never_connected(graded):
    result = shortcut_mistakes(graded)
    assert not result.errors, explain(result)
    tests = named_tests(result, "convolutional_block")
    graph = tests["test_convolutional_block_layer_graph"]
    assert graph.status is Status.FAILED
    assert graph.diagnosis == "disconnected_layers", explain(result)
    assert "never connected to the output" in graph.message and "Conv2D" in graph.message, graph.message
    shortcut = tests["test_convolutional_block_shortcut"]
    assert shortcut.status is Status.FAILED and "shortcut" in shortcut.message, shortcut.message
    assert {tests[n].status for n in tests if "outputs" in n} == {Status.NOT_RUN}
    assert score_of(result, "convolutional_block") == (0.0, 10.0), explain(result)


def test_batchnorm_hard_coded_to_training_fails_only_the_inference_output(graded):
    result = shortcut_mistakes(graded)
    tests = named_tests(result, "identity_block")
    # The layers are right: only what they compute in inference mode is wrong.
    assert tests["test_identity_block_skip_connection"].status is Status.PASSED, explain(result)
    assert tests["test_identity_block_layer_graph"].status is Status.PASSED, explain(result)
    for name in ("test_identity_block_outputs", "test_identity_block_outputs_on_hidden_shapes"):
        test = tests[name]
        assert test.status is Status.FAILED, explain(result)
        assert test.diagnosis == "bn_training_hard_coded", explain(result)
        assert "training=True written in" in test.message, test.message
        assert "training=training" in test.hint, test.hint
    assert score_of(result, "identity_block") == (5.0, 10.0)


def test_shortcut_added_after_the_final_relu(graded):
    result = merge_mistakes(graded)
    assert not result.errors, explain(result)
    tests = named_tests(result, "identity_block")
    skip = tests["test_identity_block_skip_connection"]
    assert skip.status is Status.FAILED
    assert skip.diagnosis == "merge_after_activation", explain(result)
    assert "after the final activation" in skip.message, skip.message
    assert tests["test_identity_block_outputs"].status is Status.NOT_RUN
    assert score_of(result, "identity_block") == (0.0, 10.0)


def test_missing_batchnorm_on_the_shortcut(graded):
    result = merge_mistakes(graded)
    tests = named_tests(result, "convolutional_block")
    shortcut = tests["test_convolutional_block_shortcut"]
    assert shortcut.status is Status.FAILED
    assert shortcut.diagnosis == "projection_bn_missing", explain(result)
    assert "shortcut" in shortcut.message and "BatchNormalization" in shortcut.message, shortcut.message
    graph = tests["test_convolutional_block_layer_graph"]
    assert graph.status is Status.FAILED and "BatchNormalization" in graph.message, graph.message


def test_stride_2_in_stage_2_is_named_as_such(graded):
    """With 64x64 images this ResNet50 does not even build (stage 5's map is 1x1 before the
    2x2 average pooling); the test explains why from a larger image instead of only showing
    the student's ValueError."""
    result = stage_mistake(graded)
    assert not result.errors, explain(result)
    assert score_of(result, "identity_block") == (10.0, 10.0), explain(result)
    assert score_of(result, "convolutional_block") == (10.0, 10.0), explain(result)
    tests = named_tests(result, "ResNet50")
    graph = tests["test_layer_graph"]
    assert graph.status is Status.FAILED
    assert graph.diagnosis == "resnet_stage_stride", explain(result)
    assert graph.message.startswith("Stage 2 of your ResNet50 shrinks the feature map"), graph.message
    assert "s=2" in graph.message and "does not even build" in graph.message, graph.message
    # Where the build failed: ResNet50's cell, named by the first line the student sees on it.
    assert "(the cell starting `# UNQ_C3`, line " in graph.message, graph.message
    assert "s=1" in graph.hint, graph.hint
    assert tests["test_output_on_hidden_inputs"].status is Status.NOT_RUN
