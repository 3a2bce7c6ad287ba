"""Reading still images."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from talkinghead.constants import MAX_IMAGE_PIXELS
from talkinghead.errors import InputError
from talkinghead.io.paths import require_file


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file (jpg, png, webp, bmp, ...) as RGB.

    EXIF orientation is applied. Grey and RGBA images are converted to RGB.

    Returns:
        image: (H, W, 3) uint8 RGB.
    """
    p = require_file(path)
    data = np.fromfile(p, dtype=np.uint8)
    header = cv2.imdecode(data, cv2.IMREAD_REDUCED_GRAYSCALE_8)
    if header is None:
        raise InputError(p, "not a readable image (unknown or corrupt format)")
    if header.size * 64 > MAX_IMAGE_PIXELS:
        raise InputError(p, f"image is too large (over {MAX_IMAGE_PIXELS // 1_000_000} megapixels)")
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(p, "not a readable image (unknown or corrupt format)")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def even_size(width: int, height: int, longer: int | None, *, upscale: bool = True) -> tuple[int, int]:
    """(width, height) scaled so the longer side is ``longer`` (kept when None, or when smaller and not
    ``upscale``), rounded to even numbers as h264 (yuv420p) needs."""
    scale = 1.0 if longer is None else longer / max(width, height)
    if not upscale:
        scale = min(scale, 1.0)
    return max(2, int(round(width * scale / 2)) * 2), max(2, int(round(height * scale / 2)) * 2)


def resize_longer(image: np.ndarray, size: int) -> np.ndarray:
    """Resize an (H, W, 3) image so its longer side is ``size`` (even width and height)."""
    h, w = image.shape[:2]
    nw, nh = even_size(w, h, size)
    if (nw, nh) == (w, h):
        return image
    return cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if nw < w else cv2.INTER_CUBIC)
