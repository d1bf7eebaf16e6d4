"""ThreeLayerConvNet(in_channel, channel_1, channel_2, num_classes): an nn.Module with
Kaiming-normal weights and zero biases, checked on the module the constructor returns."""
import numpy as np

from grader.checks import CheckFailed
from grader.checks.architecture import expect_architecture
from grader.checks.models import expect_same_outputs
from grader.testing import depends, exercise, hidden, points, title

pytestmark = exercise("ThreeLayerConvNet")
# Kaiming normal: std = sqrt(2 / fan_in). PyTorch's default init has about 0.41 of it,
# plain torch.randn many times more; sampling error on these layers is a few percent.
KAIMING_RANGE = (0.8, 1.25)


def _sizes(rng):
    c1, c2 = (int(v) for v in rng.integers(5, 10, size=2))
    return 3, c1, c2, int(rng.integers(4, 9))


@points(3)
@title("layers for other channel counts and num_classes")
def test_layers(submission, reference, convnet, hidden_rng):
    sizes = _sizes(np.random.default_rng(7))
    found = submission.model("ThreeLayerConvNet", *sizes, expected="a torch nn.Module")
    convnet.expect_layers(found, channel_2=sizes[2], num_classes=sizes[3])
    convnet.expect_relus(found)
    expect_architecture(reference.ThreeLayerConvNet(*sizes), found, exercise="ThreeLayerConvNet")


@points(3)
@title("Kaiming-normal weights and zero biases")
@depends("test_layers")
def test_initialization(submission, convnet):
    found = submission.model("ThreeLayerConvNet", 3, 12, 8, 10)
    ratios = convnet.kaiming_ratios(found)
    off = [(label, r) for label, r, _ in ratios if not KAIMING_RANGE[0] <= r <= KAIMING_RANGE[1]]
    if off and len(off) < len(ratios):
        raise CheckFailed("Kaiming-normal initialization is applied to some layers only: "
                          + ", ".join(f"{label} has {r:.2f} times the Kaiming scale" for label, r in off) + ".",
                          hint="Call nn.init.kaiming_normal_ on every conv and linear weight.",
                          diagnosis="kaiming_partial")
    if off:
        raise CheckFailed("The weights are not Kaiming-normal: their spread is "
                          + ", ".join(f"{r:.2f}" for _, r in off) + " times sqrt(2 / fan_in). With ReLUs, that scale "
                          "keeps the activations' variance from shrinking or growing layer after layer.",
                          hint="nn.init.kaiming_normal_(self.conv1.weight), and the same for conv2 and fc.",
                          diagnosis="kaiming_missing")
    nonzero = [label for label, _, zero in ratios if not zero]
    if nonzero:
        raise CheckFailed(f"The biases of {', '.join(nonzero)} are not zero.", hint="nn.init.zeros_(layer.bias).",
                          diagnosis="bias_not_zero", fraction=0.5)


@points(2)
@hidden
@title("scores on random images, with the reference's weights")
@depends("test_layers")
def test_scores(submission, reference, hidden_rng):
    sizes = _sizes(hidden_rng)
    x = hidden_rng.normal(0.0, 1.0, size=(int(hidden_rng.integers(2, 6)), 3, 32, 32)).astype(np.float32)
    expect_same_outputs(reference.ThreeLayerConvNet(*sizes), submission.model("ThreeLayerConvNet", *sizes), x,
                        training=False, rtol=1e-4, atol=1e-4)
