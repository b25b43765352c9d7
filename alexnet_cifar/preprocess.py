"""Turn any image into what the model expects: a 32x32 RGB uint8 array (HWC).

The trainer and the inference service both call :func:`to_model_input`, so the
two can never disagree on how an image becomes model input. Normalisation to
float happens inside the model itself (:class:`alexnet_cifar.model.AlexNet`).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

#: CIFAR-10 class names in label order (also the alphabetical order of the
#: image-tree folders, so both data formats agree on indices).
CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
IMAGE_SIZE = 32


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode (RGBA, LA, P, L, I;16, I, F, CMYK...) to RGB."""
    if image.mode == "RGB":
        return image
    if image.mode.startswith("I") or image.mode == "F":
        # 16/32-bit integer or float greyscale: map the sensor's range to 8 bits
        # instead of clipping it (a 16-bit white must stay white).
        array = np.asarray(image, dtype=np.float32)
        peak = float(array.max()) if array.size else 0.0
        if image.mode.startswith("I;16") or peak > 255:
            array = array / 257.0  # 0..65535 -> 0..255
        elif image.mode == "F" and peak <= 1.0:
            array = array * 255.0  # 0..1 floats
        return Image.fromarray(np.clip(np.rint(array), 0, 255).astype(np.uint8)).convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        # Composite transparent pixels on white, like a browser shows them.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def to_model_input(image: Image.Image) -> np.ndarray:
    """Return ``image`` as a contiguous ``(32, 32, 3)`` uint8 RGB array.

    Images of another size are resized with a bicubic filter (with Pillow's
    antialiasing when shrinking), which is what a user uploading a photo expects.
    """
    image = _to_rgb(ImageOps.exif_transpose(image))  # a phone photo's orientation tag
    if image.size != (IMAGE_SIZE, IMAGE_SIZE):
        image = image.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BICUBIC)
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))
