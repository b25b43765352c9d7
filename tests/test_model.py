"""The model's shape contract and size."""

import numpy as np
import torch

from alexnet_cifar.model import CIFAR10_MEAN, AlexNet, count_parameters
from torch import nn


def test_output_shape_for_uint8_nhwc_batches():
    model = AlexNet().eval()
    images = torch.randint(0, 256, (5, 32, 32, 3), dtype=torch.uint8)
    assert model(images).shape == (5, 10)


def test_parameter_count_is_the_documented_23_million():
    # Conv: 1,792 + 110,592 + 663,552 + 884,736 + 589,824 (no bias with BN) + 2 * (64+192+384+256+256) BN
    # FC: 4,198,400 + 16,781,312 + 40,970
    model = AlexNet()
    conv = sum(p.numel() for m in model.features if isinstance(m, (nn.Conv2d, nn.BatchNorm2d)) for p in m.parameters())
    fc = sum(p.numel() for m in model.classifier if isinstance(m, nn.Linear) for p in m.parameters())
    assert count_parameters(model) == conv + fc == 23_273_418
    assert count_parameters(AlexNet(batch_norm=False)) == 23_272_266


def test_layout_is_five_convolutions_three_pools_three_linear_layers():
    model = AlexNet()
    convs = [m.out_channels for m in model.features if isinstance(m, nn.Conv2d)]
    pools = [i for i, m in enumerate(model.features) if isinstance(m, nn.MaxPool2d)]
    linears = [m.out_features for m in model.classifier if isinstance(m, nn.Linear)]
    assert convs == [64, 192, 384, 256, 256]
    assert len(pools) == 3
    assert linears == [4096, 4096, 10]
    assert sum(isinstance(m, nn.Dropout) for m in model.classifier) == 2


def test_normalisation_is_inside_the_model():
    """A mean-coloured image reaches the first convolution as zeros."""
    model = AlexNet().eval()
    captured = {}

    def keep_input(module, args, output):
        captured["input"] = args[0]

    model.features[0].register_forward_hook(keep_input)
    mean_pixel = np.round(np.array(CIFAR10_MEAN) * 255).astype(np.uint8)
    model(torch.from_numpy(np.broadcast_to(mean_pixel, (1, 32, 32, 3)).copy()))
    assert captured["input"].abs().max() < 0.01


def test_permuted_input_has_channels_last_strides():
    """Indexing NHWC uint8 and permuting yields channels-last strides (documented pitfall)."""
    images = torch.randint(0, 256, (4, 32, 32, 3), dtype=torch.uint8)
    assert images.permute(0, 3, 1, 2).is_contiguous(memory_format=torch.channels_last)
