"""dls_c4w3a2 end to end: students' notebooks for the course's U-Net exercise, graded as
they are through the real path (sandbox worker, probes, rebuild, the assignment's tests).

The notebooks (tests/dls_c4w3a2_notebooks.py) have the course's layout: graded cells with
or without their `# UNQ_Cn` headers, helper modules and a dataset folder that are not
there, test cells, training and prediction cells. Each graded notebook is shared by the
tests that read it (a module-scoped fixture); several mistakes that do not interfere share
one notebook, so the module grades about fifteen notebooks.
"""
from __future__ import annotations

import json

import pytest

import dls_c4w3a2_notebooks as nbs
from grader.assignment.spec import load_assignment
from grader.run.grading import grade_submission
from grader.results import Status
from grader.run.submission import Submission

pytestmark = pytest.mark.slow
ASSIGNMENT = "dls_c4w3a2"
EXERCISES = ("conv_block", "upsampling_block", "unet_model")
POINTS = {"conv_block": 13.0, "upsampling_block": 8.0, "unet_model": 9.0}


@pytest.fixture(scope="module")
def assignment():
    return load_assignment(ASSIGNMENT)


@pytest.fixture(scope="module")
def graded(tmp_path_factory, assignment, worker):
    """Each notebook graded once for the whole module, on first use."""
    folder = tmp_path_factory.mktemp("dls_c4w3a2")
    done: dict[str, object] = {}

    def grade(name: str, nb=None, **edits):
        if name not in done:
            notebook = nb if nb is not None else nbs.course_notebook(**edits)
            done[name] = grade_submission(nbs.write(folder, notebook, f"{name}.ipynb"), assignment, worker)
        return done[name]
    return grade


def named_tests(result, exercise: str) -> dict[str, object]:
    return {t.nodeid.split("::")[-1]: t for t in result.tests if t.exercise == exercise}


def score_of(result, exercise: str) -> tuple[float, float]:
    tests = named_tests(result, exercise).values()
    return sum(t.score for t in tests), sum(t.max_score for t in tests)


def explain(result) -> str:
    return json.dumps(result.to_dict(), indent=1, default=str)[:6000]


def failed(result, exercise: str, test: str, diagnosis: str):
    """The one test, failed with the expected diagnosis; returned for its message."""
    found = named_tests(result, exercise)[test]
    assert found.status is Status.FAILED, explain(result)
    assert found.diagnosis == diagnosis, explain(result)
    return found


def full_marks(result, *exercises: str) -> None:
    assert not result.errors, explain(result)
    for exercise in exercises or EXERCISES:
        assert score_of(result, exercise) == (POINTS[exercise], POINTS[exercise]), explain(result)


# ------------------------------------------------------------------ the assignment itself

def test_spec_declares_probes_exercises_and_points(assignment):
    assert assignment.keras == "3"
    assert assignment.exercises == EXERCISES
    assert assignment.probes is not None and assignment.probes.name == "probes.py"
    assert assignment.reference.name == "dls_c4w3a2.py"
    assert assignment.total_points == sum(POINTS.values())


def test_validate_assignment_passes(assignment, worker):
    """What `grader validate-assignment dls_c4w3a2` checks: the reference (as a generated
    master) gets full marks, the template zero, the points add up, each sample its score."""
    from grader.authoring.validate import validate

    report = validate(ASSIGNMENT, worker=worker)
    assert report.ok, report.render()
    assert "sample" in report.render()


# ------------------------------------------------------------------ valid notebooks: full marks

@pytest.mark.parametrize("variant", nbs.VARIANTS)
def test_course_notebook_gets_full_marks(graded, assignment, variant):
    """The course's code, without its headers, spelled otherwise (MaxPool2D, HeNormal(),
    'HeNormal', dropout_prob by position, max_pooling=None, (1, 1), n_filters*2*2, no
    `inputs=None` default), or with `tfl.` layers."""
    result = graded(variant, nbs.course_notebook(variant))
    full_marks(result)
    assert result.max_score == assignment.total_points
    assert all(t.status is Status.PASSED for t in result.tests), explain(result)
    assert sum(1 for t in result.tests if t.visibility.value == "hidden") == 3
    # Every graded definition loaded; only imports of what graders do not have failed.
    assert not any(e in w for e in EXERCISES for w in result.warnings), result.warnings
    assert not any("a definition failed" in w for w in result.warnings), result.warnings


def test_course_helper_modules_are_not_a_students_worry(graded, assignment):
    """test_utils and outputs serve the course's test cells only, which never run: the
    spec declares them missing, so a student is not told that their imports failed; the
    instructor still sees it."""
    assert {"test_utils", "outputs"} <= assignment.missing_modules
    result = graded("course", nbs.course_notebook("course"))
    shown = "\n".join(result.warnings)
    assert "test_utils" not in shown and "outputs" not in shown, shown
    notes = "\n".join(result.notes)
    assert "test_utils" in notes and "outputs" in notes, notes


def test_samples_are_the_generated_notebooks(assignment):
    """The samples and the master come from this module: a change here that was not written
    out to assignments/dls_c4w3a2/ would leave validate-assignment checking old code."""
    import nbformat

    folder = assignment.root / "samples"
    assert sorted(p.stem for p in folder.glob("*.ipynb")) == sorted(nbs.SAMPLES)
    for name in nbs.SAMPLES:
        stored = nbformat.read(str(folder / f"{name}.ipynb"), as_version=4)
        fresh = nbs.sample_notebook(name)
        assert [c.source for c in stored.cells] == [c.source for c in fresh.cells], name
        assert stored.metadata["grader"]["expected_score"] == nbs.SAMPLES[name][2]
    master = nbformat.read(str(assignment.root / "source" / "dls_c4w3a2.ipynb"), as_version=4)
    assert [c.source for c in master.cells] == [c.source for c in nbs.master_notebook().cells]


def test_template_keeps_the_course_notebook_without_solutions(assignment):
    """The master is the course notebook with each graded function's body between solution
    markers: the template students (and a kit) get keeps the signatures, docstrings and
    every other cell, and no line of the solutions."""
    from grader.authoring.assign import make_template, read_master
    from grader.assignment.materials import find_master

    template = make_template(read_master(find_master(assignment)))
    text = "\n".join(c.source for c in template.cells)
    assert "def conv_block(inputs=None, n_filters=32, dropout_prob=0, max_pooling=True):" in text
    assert "def unet_model(input_size=(96, 128, 3), n_filters=32, n_classes=23):" in text
    assert text.count("NotImplementedError") >= 3
    for solution in ("MaxPooling2D(pool_size=(2,2))(conv)", "concatenate([up, contractive_input], axis=3)",
                     "Conv2D(n_classes, 1, padding='same')", "BEGIN SOLUTION"):
        assert solution not in text, solution
    assert "model_history = unet.fit(train_dataset, epochs=EPOCHS)" in text


def test_probe_wraps_conv_block_into_a_model_with_both_outputs(tmp_path, assignment, worker):
    """The probe keeps conv_block's two outputs apart, in order, and passes the arguments
    by position (the variant without the `inputs=None` default included)."""
    path = nbs.write(tmp_path, nbs.course_notebook("spelled_otherwise"), "spelled.ipynb")
    submission = Submission(path, assignment, worker).open()
    try:
        pooled = submission.probe_model("conv_block_model", (8, 12, 2), 3, 0.2, True)
        bottleneck = submission.probe_model("conv_block_model", (8, 12, 2), 3, 0.2, None)
        up = submission.probe_model("upsampling_block_model", (2, 3, 5), (4, 6, 1), 2)
    finally:
        submission.close()
    assert [tuple(o.shape) for o in pooled.outputs] == [(None, 4, 6, 3), (None, 8, 12, 3)]
    assert [tuple(o.shape) for o in bottleneck.outputs] == [(None, 8, 12, 3), (None, 8, 12, 3)]
    assert [type(layer).__name__ for layer in pooled.layers].count("Dropout") == 1
    assert len(up.inputs) == 2 and tuple(up.output.shape) == (None, 4, 6, 2)


# ------------------------------------------------------------------ conv_block's mistakes

def test_skip_connection_taken_after_pooling(graded):
    result = graded("skip_after_pooling", conv=nbs.SKIP_AFTER_POOLING, up=nbs.TRANSPOSE_RELU)
    test = failed(result, "conv_block", "test_conv_block_returns_the_pooled_map_and_the_skip_connection",
                  "skip_after_pooling")
    assert "skip connection" in test.message and "after the max-pooling" in test.message, test.message
    assert "8x8" in test.message and "16x16" in test.message, test.message
    tests = named_tests(result, "conv_block")
    assert tests["test_conv_block_outputs"].status is Status.NOT_RUN, explain(result)
    # The bottleneck's settings do not pool, so that test still passes.
    assert tests["test_conv_block_follows_dropout_prob_and_max_pooling"].status is Status.PASSED
    # The U-Net does not build; the trace of the student's calls puts the blame on conv_block.
    unet = failed(result, "unet_model", "test_unet_model_layer_graph", "block_breaks_unet")
    assert "conv_block call 1" in unet.message and "after the pooling" in unet.message, unet.message
    assert "fix `conv_block` first" in unet.hint, unet.hint


def test_max_pooling_ignored(graded):
    result = graded("pooling_ignored", conv=nbs.POOLING_IGNORED, up=nbs.CONCAT_UNUSED)
    test = failed(result, "conv_block", "test_conv_block_follows_dropout_prob_and_max_pooling",
                  "max_pooling_ignored")
    assert "max_pooling=False" in test.message and "bottleneck" in test.message, test.message
    assert "else: next_layer = conv" in test.hint, test.hint
    unet = failed(result, "unet_model", "test_unet_model_layer_graph", "block_breaks_unet")
    assert "conv_block call 5" in unet.message and "max_pooling" in unet.message, unet.message
    assert named_tests(result, "conv_block")[
        "test_conv_block_returns_the_pooled_map_and_the_skip_connection"].status is Status.PASSED


def test_dropout_prob_ignored(graded):
    result = graded("dropout_ignored", conv=nbs.DROPOUT_IGNORED, up=nbs.TRANSPOSE_STRIDE_1)
    test = failed(result, "conv_block", "test_conv_block_follows_dropout_prob_and_max_pooling", "dropout_ignored")
    assert "dropout_prob=0.3" in test.message and "no Dropout layer" in test.message, test.message


def test_dropout_rate_written_in(graded):
    """Dropout(0.3) passes the course's U-Net, not a block asked for another rate."""
    result = graded("dropout_hard_coded", conv=nbs.DROPOUT_HARD_CODED, unet=nbs.FINAL_KERNEL_3)
    tests = named_tests(result, "conv_block")
    assert tests["test_conv_block_follows_dropout_prob_and_max_pooling"].status is Status.PASSED
    hidden = failed(result, "conv_block", "test_conv_block_on_hidden_settings", "dropout_rate_hard_coded")
    assert "written in" in hidden.message, hidden.message


def test_dropout_forced_on_at_inference(graded):
    result = graded("dropout_forced", conv=nbs.DROPOUT_FORCED, up=nbs.UP_NO_HE_NORMAL)
    tests = named_tests(result, "conv_block")
    # Same layers: only what they compute at prediction time is wrong.
    assert tests["test_conv_block_layer_graph"].status is Status.PASSED, explain(result)
    test = failed(result, "conv_block", "test_conv_block_outputs", "dropout_training_hard_coded")
    assert "training=True" in test.message and "conv_block" in test.message, test.message
    assert "without `training`" in test.hint, test.hint
    unet = failed(result, "unet_model", "test_unet_model_outputs", "dropout_training_hard_coded")
    assert "conv_block" in unet.message


def test_missing_he_normal_costs_one_point_in_the_block_only(graded):
    result = graded("dropout_forced", conv=nbs.DROPOUT_FORCED, up=nbs.UP_NO_HE_NORMAL)
    test = failed(result, "upsampling_block", "test_upsampling_block_he_normal_initializer",
                  "initializer_not_he_normal")
    assert "GlorotUniform" in test.message and "he_normal" in test.message, test.message
    assert score_of(result, "upsampling_block") == (POINTS["upsampling_block"] - 1, POINTS["upsampling_block"])
    other = graded("conv_no_he_normal", conv=nbs.CONV_NO_HE_NORMAL, unet=nbs.FINAL_SOFTMAX)
    failed(other, "conv_block", "test_conv_block_he_normal_initializer", "initializer_not_he_normal")
    assert score_of(other, "conv_block") == (POINTS["conv_block"] - 1, POINTS["conv_block"]), explain(other)


# ------------------------------------------------------------------ upsampling_block's mistakes

def test_activation_on_the_transposed_convolution(graded):
    result = graded("skip_after_pooling", conv=nbs.SKIP_AFTER_POOLING, up=nbs.TRANSPOSE_RELU)
    test = failed(result, "upsampling_block", "test_upsampling_block_layer_graph", "transpose_activation")
    assert "Conv2DTranspose" in test.message and "activation='relu'" in test.message, test.message
    assert "without `activation`" in test.hint, test.hint
    assert named_tests(result, "upsampling_block")["test_upsampling_block_outputs"].status is Status.NOT_RUN


def test_transposed_convolution_with_stride_1(graded):
    """The block does not even build (the concatenation meets two sizes); the test says why."""
    result = graded("dropout_ignored", conv=nbs.DROPOUT_IGNORED, up=nbs.TRANSPOSE_STRIDE_1)
    test = failed(result, "upsampling_block", "test_upsampling_block_layer_graph", "transpose_stride")
    assert "strides=(1, 1)" in test.message and "4x4" in test.message and "8x8" in test.message, test.message
    assert "strides=2" in test.hint, test.hint
    unet = failed(result, "unet_model", "test_unet_model_layer_graph", "block_breaks_unet")
    assert "inside upsampling_block call 1" in unet.message, unet.message


def test_concatenation_result_unused(graded):
    result = graded("pooling_ignored", conv=nbs.POOLING_IGNORED, up=nbs.CONCAT_UNUSED)
    test = failed(result, "upsampling_block", "test_upsampling_block_layer_graph", "concatenation_unused")
    assert "contractive_input" in test.message and "skip connection" in test.message, test.message


# ------------------------------------------------------------------ unet_model's mistakes

def test_final_layer_kernel_size(graded):
    result = graded("dropout_hard_coded", conv=nbs.DROPOUT_HARD_CODED, unet=nbs.FINAL_KERNEL_3)
    test = failed(result, "unet_model", "test_unet_model_layer_graph", "final_kernel_size")
    assert "3x3 kernel" in test.message and "1x1" in test.message, test.message
    assert "the cell starting `# UNQ_C3`, line " in test.message, test.message  # unet_model's cell: where they wrote it


def test_final_layer_activation(graded):
    result = graded("conv_no_he_normal", conv=nbs.CONV_NO_HE_NORMAL, unet=nbs.FINAL_SOFTMAX)
    test = failed(result, "unet_model", "test_unet_model_layer_graph", "final_activation")
    assert "activation='softmax'" in test.message and "from_logits=True" in test.message, test.message
    # A missing he_normal in conv_block costs nothing in unet_model.
    assert named_tests(result, "unet_model")["test_unet_model_layer_graph"].score == 0.0


def test_class_count_written_in(graded):
    result = graded("classes_hard_coded", unet=nbs.CLASSES_HARD_CODED)
    tests = named_tests(result, "unet_model")
    assert tests["test_unet_model_layer_graph"].status is Status.PASSED, explain(result)
    test = failed(result, "unet_model", "test_unet_model_on_hidden_settings", "final_classes")
    assert "23 filters" in test.message and "n_classes" in test.message, test.message
    full_marks(result, "conv_block", "upsampling_block")


def test_filter_counts_written_in(graded):
    """Right for the course's 32 filters only: the layer graph (at 32) passes, the outputs
    (checked on a narrower U-Net) and the hidden settings name the mistake."""
    result = graded("filters_hard_coded", unet=nbs.FILTERS_HARD_CODED)
    assert named_tests(result, "unet_model")["test_unet_model_layer_graph"].status is Status.PASSED
    for name in ("test_unet_model_outputs", "test_unet_model_on_hidden_settings"):
        test = failed(result, "unet_model", name, "filters_hard_coded")
        assert "32 filters" in test.message and "n_filters" in test.message, test.message


def test_decoder_paired_with_the_wrong_encoder_block_is_named(graded):
    """The U-Net does not build (Keras: "A `Concatenate` layer requires inputs with
    matching shapes"); the trace of the student's own calls says which pairing is wrong.
    The blocks keep their points."""
    result = graded("wrong_pairing", unet=nbs.WRONG_PAIRING)
    test = failed(result, "unet_model", "test_unet_model_layer_graph", "decoder_pairing")
    assert "upsampling_block call 2" in test.message, test.message
    assert "conv_block call 2's output [1]" in test.message and "conv_block call 3" in test.message, test.message
    assert "does not build" in test.message and "cblock3[1]" in test.hint, (test.message, test.hint)
    full_marks(result, "conv_block", "upsampling_block")


# ------------------------------------------------------------------ valid spellings decided by behaviour

def test_swapped_concatenation_gets_full_marks(graded):
    """`concatenate([contractive_input, up])`: the same network up to the order of the next
    convolution's input channels (the course's instructor's decision)."""
    result = graded("concat_swapped", up=nbs.CONCAT_SWAPPED)
    full_marks(result)
    assert all(t.status is Status.PASSED for t in result.tests), explain(result)


def test_concatenate_on_axis_minus_1_gets_full_marks(graded):
    full_marks(graded("concat_axis_minus_1", up=nbs.CONCAT_AXIS_MINUS_1))


def test_concatenate_default_axis_gets_full_marks(graded):
    full_marks(graded("concat_default_axis", up=nbs.CONCAT_DEFAULT_AXIS))


def test_pooling_with_same_padding_gets_full_marks(graded):
    full_marks(graded("pool_same", conv=nbs.POOL_SAME))


# ------------------------------------------------------------------ the student kit

def test_student_kit_agrees_with_full_grading_on_every_sample(tmp_path, assignment):
    """Every block test runs probes: the kit ships them, records the reference's answers
    (the narrow U-Net's weights only: the kit stays small), and the export's own comparison
    finds the kit's visible results equal to the full grader's on the master and each sample."""
    from grader.kit.export import build_kit

    kit = build_kit(assignment, tmp_path / "kit")
    spec = (kit.spec_dir / "assignment.toml").read_text()
    assert 'probes = "probes.py"' in spec and (kit.spec_dir / "probes.py").is_file() and "secret" not in spec
    assert any("unet_model_outputs" in t for t in kit.tests) and not any("hidden" in t for t in kit.tests)
    assert set(kit.compared) >= {f"{name}.ipynb" for name in nbs.SAMPLES}
    for name, (mine, full) in kit.compared.items():
        assert mine == full, name
    by_test = {r[0]: r for r in kit.compared["dropout_forced.ipynb"][0]}
    assert by_test["test_conv_block_outputs"][2] == "failed"
    size = sum(p.stat().st_size for p in kit.root.rglob("*") if p.is_file())
    assert size < 5_000_000, size
