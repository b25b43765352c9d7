"""AlexNet adapted to 32x32 CIFAR-10 images.

Input contract: a uint8 tensor of shape ``(N, 32, 32, 3)`` (RGB, HWC), exactly
what :func:`alexnet_cifar.preprocess.to_model_input` returns for one image.
Scaling and per-channel normalisation happen inside :meth:`AlexNet.forward`, so
a logged model carries its own preprocessing constants. Output: ``(N, 10)`` logits.
"""

from __future__ import annotations

import torch
from torch import nn

from alexnet_cifar.preprocess import CLASSES

#: Per-channel mean and std of the CIFAR-10 training split (0..1 scale).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


def _conv(in_channels: int, out_channels: int, batch_norm: bool, **kwargs) -> list[nn.Module]:
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=not batch_norm, **kwargs)
    ]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers.append(nn.ReLU(inplace=True))
    return layers


class AlexNet(nn.Module):
    """Five 3x3 convolutions (64, 192, 384, 256, 256; max-pool after 1, 2 and 5)
    and three fully connected layers (4096, 4096, 10) with ReLU and dropout."""

    def __init__(self, num_classes: int = len(CLASSES), dropout: float = 0.5, batch_norm: bool = True):
        super().__init__()
        self.register_buffer("mean", torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1) * 255.0, persistent=True)
        self.register_buffer("std", torch.tensor(CIFAR10_STD).view(1, 3, 1, 1) * 255.0, persistent=True)
        self.features = nn.Sequential(
            *_conv(3, 64, batch_norm, stride=2),  # 32 -> 16
            nn.MaxPool2d(2),  # 16 -> 8
            *_conv(64, 192, batch_norm),
            nn.MaxPool2d(2),  # 8 -> 4
            *_conv(192, 384, batch_norm),
            *_conv(384, 256, batch_norm),
            *_conv(256, 256, batch_norm),
            nn.MaxPool2d(2),  # 4 -> 2
        )
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(256 * 2 * 2, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 ``(N, 32, 32, 3)`` images -> ``(N, num_classes)`` logits."""
        # NHWC -> NCHW as a view: the result has channels-last strides, which is
        # the layout the CPU convolutions run fastest in.
        x = images.permute(0, 3, 1, 2).float()
        x = (x - self.mean) / self.std
        x = self.features(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
