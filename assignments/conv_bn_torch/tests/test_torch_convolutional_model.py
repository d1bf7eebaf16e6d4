"""ConvolutionalModel: an nn.Module with two Conv2d -> BatchNorm2d -> ReLU -> MaxPool2d blocks,
layers made in __init__ and called in forward (read through torch.fx, or through forward hooks
when forward does not trace)."""
import numpy as np

from grader.checks.architecture import expect_architecture, expect_bn_after_conv
from grader.frameworks.torch.untraced import expect_layer_order_by_hooks, hooked_run
from grader.testing import depends, exercise, hidden, points, title

pytestmark = exercise("ConvolutionalModel")
# The class takes the image size and the number of classes; the hidden test uses others,
# so a Linear layer written for 64x64 and 6 classes only loses that test's point.
OTHER_SIZE, OTHER_CLASSES = (48, 32), 4


def _traced(model) -> bool:
    """False for a forward torch.fx cannot follow (an `if` on a tensor's value): no graph."""
    return getattr(model, "fx_graph", True) is not None


@points(4)
def test_layer_graph(submission, reference, nchw, hidden_rng):
    found = submission.model("ConvolutionalModel", expected="a torch nn.Module")
    if not _traced(found):
        # The order of the layer calls, recorded with forward hooks in the sandbox, stands in
        # for the graph: a data-dependent forward is still graded, by what it calls.
        x = hidden_rng.normal(0.0, 1.0, size=(2, 3, 64, 64)).astype(np.float32)
        run = hooked_run(submission, "ConvolutionalModel", x)
        expect_layer_order_by_hooks(reference.ConvolutionalModel(), found, run, x, exercise="ConvolutionalModel")
        return
    nchw.expect_bn_reads_conv(found)
    expect_architecture(reference.ConvolutionalModel(), found, exercise="ConvolutionalModel")
    expect_bn_after_conv(found, minimum=2, every_conv=True)


@points(2)
@title("output on random inputs, in eval() and train() modes")
@depends("test_layer_graph")
def test_output_on_hidden_inputs(submission, reference, nchw, hidden_rng):
    x = hidden_rng.normal(0.0, 1.0, size=(4, 3, 64, 64)).astype(np.float32)
    nchw.expect_outputs_in_both_modes(reference.ConvolutionalModel(), submission.model("ConvolutionalModel"), x)


@points(1)
@hidden
@title("another image size and number of classes")
@depends("test_layer_graph")
def test_other_image_size_and_classes(submission, reference, nchw, hidden_rng):
    x = hidden_rng.normal(0.0, 1.0, size=(3, 3, *OTHER_SIZE)).astype(np.float32)
    found = submission.model("ConvolutionalModel", OTHER_SIZE, OTHER_CLASSES)
    ref = reference.ConvolutionalModel(OTHER_SIZE, OTHER_CLASSES)
    if _traced(found):
        expect_architecture(ref, found, exercise="ConvolutionalModel")
    nchw.expect_outputs_in_both_modes(ref, found, x, what="output on other images")
