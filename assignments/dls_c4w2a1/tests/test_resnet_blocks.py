"""The two residual blocks, tested alike (one file, so they share their helpers).

identity_block: main path Conv2D(F1, 1x1) -> BN -> ReLU -> Conv2D(F2, fxf, same) -> BN
-> ReLU -> Conv2D(F3, 1x1) -> BN; the block's input added back; ReLU.
convolutional_block: the same main path with stride s on its first Conv2D; the shortcut is
Conv2D(F3, 1x1, stride s) -> BN; Add; ReLU.

A block takes a tensor and returns one, so the probes `identity_block_model` and
`convolutional_block_model` wrap it into a model in the sandbox (Input -> block -> Model),
whatever the student's signature (with `training`, without it, or Keras 2's `stage, block`).
No check reads the student's own weights (the output checks read the reference's), so the
models come back without them (`weights=False`) and the child never draws them.
"""
import numpy as np

from grader.checks import CheckFailed
from grader.checks.architecture import expect_architecture, expect_bn_after_conv, expect_skip_connection
from grader.checks.models import expect_same_outputs
from grader.testing import depends, exercise, hidden, points

EXPECTED = "a model (the probe wraps your block's output tensor into one)"
# identity_block (input shape, f, filters): its output has F3 channels, so F3 = input channels.
IDENTITY = "identity_block_model"
IDENTITY_VISIBLE = ((4, 4, 3), 2, (4, 4, 3))
IDENTITY_HIDDEN = (((6, 6, 5), 3, (2, 3, 5)), ((5, 7, 8), 3, (4, 2, 8)), ((3, 3, 4), 1, (6, 3, 4)))
# convolutional_block (input shape, f, filters, s): s=1 keeps the size (as in ResNet50's stage 2).
CONVOLUTIONAL = "convolutional_block_model"
CONVOLUTIONAL_VISIBLE = ((4, 4, 3), 2, (2, 4, 6), 2)
CONVOLUTIONAL_HIDDEN = (((6, 6, 3), 3, (2, 3, 5), 1), ((7, 5, 4), 2, (3, 2, 6), 2), ((9, 9, 2), 3, (4, 4, 8), 3))


def _hard_coded_training(model) -> list[str]:
    """Names of the BatchNormalization layers called with `training=True` written in,
    in a block that was asked for inference (Keras 3 records a call's keyword arguments
    in the model, and the rebuilt model keeps them)."""
    found = []
    for layer in model.layers:
        if type(layer).__name__ != "BatchNormalization":
            continue
        for node in getattr(layer, "_inbound_nodes", []):
            kwargs = getattr(getattr(node, "arguments", None), "kwargs", None) or {}
            if kwargs.get("training") is True:
                found.append(layer.name)
    return found


def expect_block_outputs(submission, probe, reference_model, args, x):
    """Training mode, then inference mode, with the reference's weights copied in.

    Inference is checked on a block built with `training=False` and called without a
    mode (`training=None`), so each BatchNormalization runs as the block told it to: a
    block that ignores its `training` argument is caught here, while a call with
    `training=False` would have overridden what the student wrote."""
    trained = submission.probe_model(probe, *args, training=True, weights=False, expected=EXPECTED)
    expect_same_outputs(reference_model, trained, x, training=True, what="training output")
    inferred = submission.probe_model(probe, *args, training=False, weights=False, expected=EXPECTED)
    try:
        expect_same_outputs(reference_model, inferred, x, training=None, what="inference output")
    except CheckFailed as exc:
        hard = _hard_coded_training(inferred)
        if not hard:
            raise
        raise CheckFailed(
            f"Asked for inference, your block still normalizes each batch with its own statistics: "
            f"{len(hard)} of its BatchNormalization layers are called with training=True written in, which "
            f"overrides the mode the block is used in. At prediction time its output for one image would "
            f"then depend on which other images share the batch. ({exc.message})",
            hint="call each BatchNormalization with `training=training`, the block's own argument (or, in a "
                 "block without a `training` argument, with no `training` at all).",
            diagnosis="bn_training_hard_coded") from None


# ---------------------------------------------------------------- identity_block

@points(2)
@exercise("identity_block")
def test_identity_block_skip_connection(submission):
    """The block's input reaches the Add unchanged, the Add comes before the last ReLU, and
    every Conv2D is followed by BatchNormalization."""
    found = submission.probe_model(IDENTITY, *IDENTITY_VISIBLE, training=True, weights=False, expected=EXPECTED)
    expect_skip_connection(found, projection=False, exercise="identity_block")
    expect_bn_after_conv(found, minimum=3, every_conv=True)


@points(3)
@exercise("identity_block")
def test_identity_block_layer_graph(submission, reference):
    found = submission.probe_model(IDENTITY, *IDENTITY_VISIBLE, training=True, weights=False, expected=EXPECTED)
    expect_architecture(reference.identity_block_model(*IDENTITY_VISIBLE), found, exercise="identity_block")


@points(2)
@exercise("identity_block")
@depends("test_identity_block_layer_graph")
def test_identity_block_outputs(submission, reference):
    x = np.random.default_rng(0).normal(0.0, 1.0, size=(3, *IDENTITY_VISIBLE[0])).astype(np.float32)
    expect_block_outputs(submission, IDENTITY, reference.identity_block_model(*IDENTITY_VISIBLE),
                         IDENTITY_VISIBLE, x)


@points(3)
@hidden
@exercise("identity_block")
@depends("test_identity_block_layer_graph")
def test_identity_block_outputs_on_hidden_shapes(submission, reference, hidden_rng):
    for args in IDENTITY_HIDDEN:
        x = hidden_rng.normal(0.0, 2.0, size=(4, *args[0])).astype(np.float32)
        expect_block_outputs(submission, IDENTITY, reference.identity_block_model(*args), args, x)


# ---------------------------------------------------------------- convolutional_block

@points(2)
@exercise("convolutional_block")
def test_convolutional_block_shortcut(submission):
    """The shortcut is a Conv2D -> BatchNormalization projection of the block's input, added
    before the last ReLU, and every Conv2D is followed by BatchNormalization."""
    found = submission.probe_model(CONVOLUTIONAL, *CONVOLUTIONAL_VISIBLE, training=True, weights=False,
                                   expected=EXPECTED)
    expect_skip_connection(found, projection=True, exercise="convolutional_block")
    expect_bn_after_conv(found, minimum=4, every_conv=True)


@points(3)
@exercise("convolutional_block")
def test_convolutional_block_layer_graph(submission, reference):
    found = submission.probe_model(CONVOLUTIONAL, *CONVOLUTIONAL_VISIBLE, training=True, weights=False,
                                   expected=EXPECTED)
    expect_architecture(reference.convolutional_block_model(*CONVOLUTIONAL_VISIBLE), found,
                        exercise="convolutional_block")


@points(2)
@exercise("convolutional_block")
@depends("test_convolutional_block_layer_graph")
def test_convolutional_block_outputs(submission, reference):
    x = np.random.default_rng(1).normal(0.0, 1.0, size=(3, *CONVOLUTIONAL_VISIBLE[0])).astype(np.float32)
    expect_block_outputs(submission, CONVOLUTIONAL, reference.convolutional_block_model(*CONVOLUTIONAL_VISIBLE),
                         CONVOLUTIONAL_VISIBLE, x)


@points(3)
@hidden
@exercise("convolutional_block")
@depends("test_convolutional_block_layer_graph")
def test_convolutional_block_outputs_on_hidden_shapes_and_strides(submission, reference, hidden_rng):
    for args in CONVOLUTIONAL_HIDDEN:
        x = hidden_rng.normal(0.0, 2.0, size=(4, *args[0])).astype(np.float32)
        expect_block_outputs(submission, CONVOLUTIONAL, reference.convolutional_block_model(*args), args, x)
