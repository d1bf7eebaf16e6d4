"""ResNet50: ZeroPadding2D(3) -> Conv2D(64, 7x7, stride 2) -> BN -> ReLU -> MaxPool(3x3,
stride 2) -> stages 2-5 (one convolutional block, then 2, 3, 5, 2 identity blocks; stage 2
keeps the size, s=1, stages 3-5 halve it, s=2) -> AveragePooling2D(2x2) -> Flatten
-> Dense(classes, softmax).

The model comes back through the probe `resnet50_model` without its 23.6 M weights
(`weights=False`): the output check copies the reference's weights in anyway.
"""
import numpy as np

from grader.checks import CheckFailed
from grader.checks.architecture import expect_architecture
from grader.checks.models import expect_same_outputs
from grader.sandbox.client import SandboxError, StudentCodeError
from grader.testing import depends, exercise, hidden, points

pytestmark = exercise("ResNet50")
PROBE = "resnet50_model"
EXPECTED = "a tf.keras Model"
INPUT_SHAPE, CLASSES = (64, 64, 3), 6
# A larger image survives an extra halving, so a model whose stages shrink the feature map
# too early still builds and can be explained instead of only failing.
DIAGNOSIS_SHAPE = (224, 224, 3)
# Per stage: output channels (F3), blocks (1 convolutional + identity blocks), stride.
STAGES = ((256, 3, 1), (512, 4, 2), (1024, 6, 2), (2048, 3, 2))


def _hw(layer) -> tuple[int, int, int]:
    shape = tuple(layer.output.shape)
    return int(shape[1]), int(shape[2]), int(shape[3])


def _stride(before: int, after: int) -> int:
    """The stride s of a 1x1 'valid' convolution that turns `before` rows into `after`."""
    return next((s for s in range(1, before + 1) if -(-before // s) == after), 0)


def stages_of(model) -> list[tuple[int, int, int, tuple[int, int]]]:
    """(channels, blocks, stride, (rows before, rows after)) per stage, read from the
    shapes around each residual merge: a stage begins where a block changes the channels."""
    layers = list(model.layers)
    pools = [l for l in layers if type(l).__name__ == "MaxPooling2D"]
    adds = [l for l in layers if type(l).__name__ == "Add"]
    if not pools or not adds:
        return []
    stages: list[list] = []
    rows, _, channels = _hw(pools[0])
    for add in adds:
        out_rows, _, out_channels = _hw(add)
        if out_channels != channels or not stages:
            stages.append([out_channels, 0, _stride(rows, out_rows), (rows, out_rows)])
        stages[-1][1] += 1
        rows, channels = out_rows, out_channels
    return [tuple(s) for s in stages]


def expect_stages(model, *, note: str = "") -> None:
    """Each stage's stride and number of blocks, in the course's terms; `note` ends each
    message (how the model was built, when not from the course's 64x64 images)."""
    found = stages_of(model)
    if not found:
        return  # no residual merges or no max-pooling: the layer graph check says what is missing
    if len(found) != len(STAGES):
        shown = ", ".join(f"{c} channels x {b} blocks" for c, b, _, _ in found)
        raise CheckFailed(
            f"Your ResNet50 has {len(found)} stages ({shown}); the specification's has 4 (stages 2-5: "
            f"256, 512, 1024 and 2048 channels, with 3, 4, 6 and 3 blocks).{note}",
            hint="each stage starts with a convolutional_block and continues with identity_blocks of the same "
                 "filters.", diagnosis="resnet_stages")
    for k, ((channels, blocks, stride, (before, after)), (want_c, want_b, want_s)) in enumerate(zip(found, STAGES)):
        stage = k + 2
        if stride != want_s:
            change = "keeps the feature map's size (its convolutional_block has s=1)" if stride == 1 else (
                f"shrinks the feature map from {before} to {after} rows (its convolutional_block has s={stride})")
            why = ("(s=1): the max-pooling just before it has already halved the map, and halving again leaves "
                   "stage 5 too small a map for the final 2x2 average pooling on 64x64 images"
                   if want_s == 1 else "(s=2): each later stage halves the map while it doubles the filters")
            wanted = "keeps it" if want_s == 1 else "halves it"
            raise CheckFailed(
                f"Stage {stage} of your ResNet50 {change}; the specification's stage {stage} {wanted} {why}.{note}",
                hint=f"call stage {stage}'s convolutional_block with s={want_s}.",
                diagnosis="resnet_stage_stride")
        if blocks != want_b:
            raise CheckFailed(
                f"Stage {stage} of your ResNet50 has {blocks} blocks (a convolutional_block and {blocks - 1} "
                f"identity_blocks); the specification's has {want_b} (a convolutional_block and {want_b - 1} "
                f"identity_blocks).{note}",
                hint=f"stage {stage} has {want_b - 1} identity_blocks after its convolutional_block.",
                diagnosis="resnet_stage_blocks")


def student_resnet(submission):
    """The student's ResNet50 for the course's 64x64 images. When building it fails in the
    student's code, a 224x224 image is tried, only to explain a stage that shrinks the map
    too early; any other failure is reported as the student's own error."""
    try:
        return submission.probe_model(PROBE, INPUT_SHAPE, CLASSES, weights=False, expected=EXPECTED)
    except StudentCodeError as exc:
        try:
            larger = submission.probe_model(PROBE, DIAGNOSIS_SHAPE, CLASSES, weights=False, expected=EXPECTED)
        except (SandboxError, CheckFailed):
            raise exc from None
        where = f" ({exc.where}, line {exc.line})" if exc.where and exc.line else ""
        expect_stages(larger, note=f" (Seen on a {DIAGNOSIS_SHAPE[0]}x{DIAGNOSIS_SHAPE[1]} image: with the "
                                   f"course's 64x64 images your ResNet50 does not even build, {exc.type}{where}.)")
        raise


@points(5)
def test_layer_graph(submission, reference):
    """Stage strides and block counts first (their own message), then the whole graph."""
    found = student_resnet(submission)
    expect_stages(found)
    expect_architecture(reference.ResNet50(INPUT_SHAPE, CLASSES), found, exercise="ResNet50")


@points(3)
@hidden
@depends("test_layer_graph")
def test_output_on_hidden_inputs(submission, reference, hidden_rng):
    x = hidden_rng.normal(0.0, 1.0, size=(2, *INPUT_SHAPE)).astype(np.float32)
    student = student_resnet(submission)
    ref = reference.ResNet50(INPUT_SHAPE, CLASSES)
    expect_same_outputs(ref, student, x, training=False, what="class probabilities")
    expect_same_outputs(ref, student, x, training=True, what="class probabilities")
