"""Small models the chapters and labs share, sized for a CPU and any image size."""

from __future__ import annotations

from torch import nn


def small_cnn(in_channels: int = 1, num_classes: int = 10, width: int = 32) -> nn.Sequential:
    """Two 3x3 convolution blocks and a linear classifier; returns logits.

    Adaptive pooling to a 4x4 map makes the same network fit 8x8 digits,
    28x28 MNIST and 32x32 CIFAR-10 images.
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, width, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.Conv2d(width, 2 * width, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(2 * width * 4 * 4, num_classes),
    )
