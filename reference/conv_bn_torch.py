"""Reference solutions for the conv_bn_torch assignment: the conv_bn lesson (standardize the
inputs; BatchNorm right after the convolution) in PyTorch's conventions.

PyTorch keeps images as (N, C, H, W), so the channel axis is 1, not the last one: every
statistic here is pooled over axes 0, 2 and 3. Statistics are computed in float64 and only
the results are cast to float32, so the reference is obviously right rather than short.
The grading process of a PyTorch assignment imports torch anyway, so this module does too.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

IMAGE_SIZE = (64, 64)
NUM_CLASSES = 6


def _pooled_axes(x: np.ndarray) -> tuple[int, ...]:
    # Channels are axis 1 (NCHW); a convolution shares its weights over images, rows and
    # columns, so those are the axes a per-channel statistic is pooled over.
    return (0,) + tuple(range(2, x.ndim))


def _per_channel(v: np.ndarray, ndim: int) -> np.ndarray:
    """(C,) -> (1, C, 1, 1): NumPy broadcasts from the last axis, so a per-channel vector
    must be reshaped to line up with axis 1."""
    return np.asarray(v, dtype=np.float64).reshape((1, -1) + (1,) * (ndim - 2))


def standardize(X_train, X_test):
    """Per-channel standardization with statistics from `X_train` only.

    The test set stands in for data that arrives after training: measuring it would leak
    information and transform it differently from what the model was trained on.
    """
    train = np.asarray(X_train, dtype=np.float64)
    test = np.asarray(X_test, dtype=np.float64)
    axes = _pooled_axes(train)
    mean = train.mean(axis=axes, keepdims=True)
    std = train.std(axis=axes, keepdims=True)  # population (ddof=0), as BatchNorm normalizes
    return ((train - mean) / std).astype(np.float32), ((test - mean) / std).astype(np.float32)


def batchnorm_forward(x, gamma, beta, eps=1e-5):
    """Training-mode batch normalization over every axis but 1, as nn.BatchNorm2d computes
    it with `model.train()`: batch statistics, the biased variance, eps inside the root
    (PyTorch's default eps is 1e-5)."""
    x = np.asarray(x)
    x64 = x.astype(np.float64)
    axes = _pooled_axes(x64)
    mean = x64.mean(axis=axes, keepdims=True)
    var = x64.var(axis=axes, keepdims=True)
    out = _per_channel(gamma, x.ndim) * (x64 - mean) / np.sqrt(var + eps) + _per_channel(beta, x.ndim)
    return out.astype(x.dtype if np.issubdtype(x.dtype, np.floating) else np.float32)


def batchnorm_forward_torch(x, gamma, beta, eps=1e-5):
    """The same through PyTorch's own F.batch_norm(training=True), for the test that shows a
    student's output is what PyTorch computes. It lives here, with the solutions, never in
    the package students install: it is a working `batchnorm_forward`."""
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    channels = t.shape[1]
    out = F.batch_norm(t, torch.zeros(channels), torch.ones(channels),
                       weight=torch.from_numpy(np.asarray(gamma, np.float32)),
                       bias=torch.from_numpy(np.asarray(beta, np.float32)), training=True, eps=eps)
    return out.numpy()


def happy_model():
    """Conv -> BN -> ReLU as an nn.Sequential, the binary smiling/frowning classifier for
    64x64 RGB images: 64 + 2*3 padding, a 7x7 kernel gives 64x64 again, pooling 32x32."""
    return nn.Sequential(
        nn.ZeroPad2d(3),
        nn.Conv2d(3, 32, kernel_size=7, bias=False),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 32 * 32, 1),
        nn.Sigmoid(),
    )


class ConvolutionalModel(nn.Module):
    """Two Conv -> BN -> ReLU -> MaxPool blocks and a softmax over `num_classes`.

    'same' convolutions keep the size; each pooling divides it by 4, so a 64x64 image
    reaches the Linear layer as 16 channels of 4x4."""

    def __init__(self, image_size=IMAGE_SIZE, num_classes=NUM_CLASSES):
        super().__init__()
        height, width = image_size
        self.conv1 = nn.Conv2d(3, 8, kernel_size=5, padding=2, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(4)
        self.conv2 = nn.Conv2d(8, 16, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(4)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(16 * (height // 16) * (width // 16), num_classes)
        self.softmax = nn.Softmax(dim=1)

    def forward(self, x):
        x = self.pool1(self.relu1(self.bn1(self.conv1(x))))
        x = self.pool2(self.relu2(self.bn2(self.conv2(x))))
        return self.softmax(self.fc(self.flatten(x)))
