"""Reference solutions for cs231n_pytorch: the three-layer ConvNet of CS231n's PyTorch
notebook, written three ways (functional with explicit weights, an nn.Module, nn.Sequential
with its optimizer), plus the wrong versions students write, computed on the same inputs
so that a test can name the mistake a student's output matches.

The grading process of a PyTorch assignment imports torch anyway, so this module does too.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def flatten(x):
    return x.view(x.shape[0], -1)


def three_layer_convnet(x, params):
    """conv 5x5 pad 2 -> ReLU -> conv 3x3 pad 1 -> ReLU -> flatten -> x @ fc_w + fc_b.
    Both paddings keep H and W, so fc_w's first dimension is channel_2 * H * W."""
    conv_w1, conv_b1, conv_w2, conv_b2, fc_w, fc_b = params
    x = F.relu(F.conv2d(x, conv_w1, conv_b1, padding=2))
    x = F.relu(F.conv2d(x, conv_w2, conv_b2, padding=1))
    return flatten(x).mm(fc_w) + fc_b


def three_layer_convnet_mistakes(x, params) -> dict[str, torch.Tensor]:
    """What typical wrong versions return on these inputs (only those that run at all:
    a missing padding or an untransposed F.linear fails on its shapes instead)."""
    conv_w1, conv_b1, conv_w2, conv_b2, fc_w, fc_b = params
    a1 = F.conv2d(x, conv_w1, conv_b1, padding=2)
    h1 = F.relu(a1)
    a2 = F.conv2d(h1, conv_w2, conv_b2, padding=1)
    h2 = F.relu(a2)
    scores = flatten(h2).mm(fc_w) + fc_b
    return {
        "no_relu_1": flatten(F.relu(F.conv2d(a1, conv_w2, conv_b2, padding=1))).mm(fc_w) + fc_b,
        "no_relu_2": flatten(a2).mm(fc_w) + fc_b,
        "relu_after_fc": F.relu(scores),
        "no_biases": flatten(F.relu(F.conv2d(F.relu(F.conv2d(x, conv_w1, padding=2)), conv_w2, padding=1))).mm(fc_w),
    }


class ThreeLayerConvNet(nn.Module):
    """Kaiming-normal weights (ReLU follows each layer but the last) and zero biases."""

    def __init__(self, in_channel, channel_1, channel_2, num_classes):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channel, channel_1, 5, padding=2)
        self.conv2 = nn.Conv2d(channel_1, channel_2, 3, padding=1)
        self.fc = nn.Linear(channel_2 * 32 * 32, num_classes)
        for layer in (self.conv1, self.conv2, self.fc):
            nn.init.kaiming_normal_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        return self.fc(flatten(x))


def sequential_convnet(channel_1, channel_2, num_classes=10):
    """Part IV's Sequential-API three-layer ConvNet on 32x32 CIFAR-10 images."""
    return nn.Sequential(
        nn.Conv2d(3, channel_1, 5, padding=2), nn.ReLU(),
        nn.Conv2d(channel_1, channel_2, 3, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(channel_2 * 32 * 32, num_classes),
    )

