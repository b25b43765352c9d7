"""Any image becomes the model's input: 32x32 RGB uint8."""

import io

import numpy as np
import pytest
from PIL import Image

from alexnet_cifar.preprocess import to_model_input


def _image(mode: str, size=(32, 32), value=None) -> Image.Image:
    if mode == "I;16":
        image = Image.fromarray(np.full(size[::-1], 65535 if value is None else value, dtype=np.uint16))
        assert image.mode == "I;16"
        return image
    return Image.new(mode, size) if value is None else Image.new(mode, size, value)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "P", "1", "CMYK", "I;16", "I", "F", "YCbCr"])
@pytest.mark.parametrize("size", [(1, 1), (32, 32), (4000, 3000), (7, 300)])
def test_any_mode_and_size_becomes_32x32_rgb_uint8(mode, size):
    out = to_model_input(_image(mode, size))
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8 and out.flags.c_contiguous


def test_32x32_rgb_passes_unchanged(real_sample):
    raw = real_sample.files[("test", "cat")][0][1]
    image = Image.open(io.BytesIO(raw))
    assert np.array_equal(to_model_input(image), np.asarray(image))


def test_transparent_pixels_become_white():
    assert to_model_input(Image.new("RGBA", (32, 32), (255, 0, 0, 0))).min() == 255


def test_sixteen_bit_white_stays_white():
    assert to_model_input(_image("I;16", value=65535)).min() == 255
    assert to_model_input(_image("I;16", value=0)).max() == 0
