"""Turn any image into what the model expects: a 32x32 RGB uint8 array (HWC).

The trainer and the inference service both call :func:`to_model_input`, so the
two can never disagree on how an image becomes model input. Normalisation to
float happens inside the model itself (:class:`alexnet_cifar.model.AlexNet`).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

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
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16/32-bit greyscale: scale the full range down to 8 bits instead of clipping.
        array = np.asarray(image, dtype=np.float64)
        high = array.max() if array.size else 0.0
        scale = 255.0 / (65535.0 if high > 255 and image.mode.startswith("I;16") else max(high, 1.0))
        if high <= 255:
            scale = 1.0
        array = np.clip(array * scale, 0, 255).astype(np.uint8)
        return Image.fromarray(array, mode="L").convert("RGB")
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
    image = _to_rgb(image)
    if image.size != (IMAGE_SIZE, IMAGE_SIZE):
        image = image.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BICUBIC)
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))
