"""What cs231n_pytorch's test files share: where the Sequential exercise lives in a
notebook, the named mistakes of a three-layer ConvNet read off a returned module, and the
weights the functional tests draw."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from grader.checks import CheckFailed

# A line of the template's TODO above the Sequential model: real notebooks have no tags,
# and `model` is assigned in five cells (Part III, two examples, this one, Part V).
SEQUENTIAL_MARKER = "Rewrite the 2-layer ConvNet with bias from Part III with the"


def layers_of(model: nn.Module) -> tuple[list[nn.Conv2d], list[nn.Linear]]:
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return convs, linears


def expect_convnet_layers(model: nn.Module, *, channel_2: int, num_classes: int, side: int = 32) -> None:
    """Paddings and the Linear's sizes, each wrong one named before the generic table."""
    convs, linears = layers_of(model)
    if len(convs) != 2 or len(linears) != 1:
        return  # the architecture table says what is missing or extra
    for conv, kernel, pad in zip(convs, (5, 3), (2, 1)):
        if tuple(conv.kernel_size) == (kernel, kernel) and tuple(conv.padding) != (pad, pad):
            raise CheckFailed(
                f"The {kernel}x{kernel} nn.Conv2d has padding={tuple(conv.padding)[0]}; expected padding={pad}. "
                f"Without it each image shrinks by {kernel - 1} pixels, so the nn.Linear's input size "
                f"(channel_2 * {side} * {side}) no longer fits what the convolutions produce.",
                hint=f"nn.Conv2d(..., {kernel}, padding={pad}) keeps the height and width.",
                diagnosis="padding_missing")
    fc = linears[0]
    if fc.out_features != num_classes:
        raise CheckFailed(
            f"The nn.Linear produces {fc.out_features} scores, but the model was asked for num_classes={num_classes}.",
            hint="Use the `num_classes` argument, not a number written in the code.", diagnosis="hardcoded_classes")
    if fc.in_features != channel_2 * side * side:
        raise CheckFailed(
            f"The nn.Linear takes {fc.in_features} inputs; the second convolution produces channel_2 * {side} * "
            f"{side} = {channel_2 * side * side} values per image (channel_2={channel_2}).",
            hint="Use `channel_2 * 32 * 32`, with the `channel_2` argument.", diagnosis="wrong_linear_input")


def expect_relus(model: nn.Module) -> None:
    """ReLU after each convolution, none after the last layer: told apart by the layer graph."""
    from grader.checks.graph import layer_graph
    graph = layer_graph(model)
    kinds = [n.spec.kind for n in graph.nodes]
    last = graph.nodes[graph.producer(0)].spec.kind if graph.outputs else ""
    if last == "ReLU":
        raise CheckFailed("The scores go through a ReLU after the last layer, so no score can be negative: "
                          "the scores must be the fully connected layer's output as it is.",
                          hint="Remove the ReLU after the nn.Linear / the final matrix product.",
                          diagnosis="relu_after_last_layer")
    if kinds.count("ReLU") < 2:
        raise CheckFailed(f"Expected a ReLU after each of the two convolutions; found {kinds.count('ReLU')}. "
                          "Without it two layers collapse into one linear map.",
                          hint="Apply F.relu (or nn.ReLU()) to each convolution's output.", diagnosis="relu_missing")


def kaiming_ratios(model: nn.Module) -> list[tuple[str, float, bool]]:
    """(layer label, weight std / sqrt(2 / fan_in), bias all zero) for each conv and linear."""
    convs, linears = layers_of(model)
    out = []
    for label, layer in [(f"nn.Conv2d #{i + 1}", c) for i, c in enumerate(convs)] + [("nn.Linear", f) for f in linears]:
        w = layer.weight.detach().double()
        fan_in = w[0].numel()
        ratio = float(w.std() / (2.0 / fan_in) ** 0.5)
        bias_zero = layer.bias is None or bool(torch.all(layer.bias == 0))
        out.append((label, ratio, bias_zero))
    return out


def random_params(seed: int, in_channel: int, channel_1: int, channel_2: int, height: int, width: int,
                  num_classes: int) -> list[np.ndarray]:
    """Weights for three_layer_convnet in the notebook's Part II shapes, each of scale
    sqrt(2 / fan_in) so that every layer's output is of order one and a mistake changes the
    scores by order one too. Drawn here from a seed, not by the reference: the inputs a
    visible test gives the reference must be fixed by the tests' own code."""
    generator = torch.Generator().manual_seed(seed)
    fc_in = channel_2 * height * width
    shapes = [((channel_1, in_channel, 5, 5), in_channel * 25), ((channel_1,), 2),
              ((channel_2, channel_1, 3, 3), channel_1 * 9), ((channel_2,), 2),
              ((fc_in, num_classes), fc_in), ((num_classes,), 2)]
    return [(torch.randn(*shape, generator=generator) * (2.0 / fan_in) ** 0.5).numpy().astype(np.float32)
            for shape, fan_in in shapes]


@pytest.fixture
def convnet():
    return SimpleNamespace(marker=SEQUENTIAL_MARKER, expect_layers=expect_convnet_layers, expect_relus=expect_relus,
                           kaiming_ratios=kaiming_ratios, layers_of=layers_of, random_params=random_params)
