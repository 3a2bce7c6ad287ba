"""Reading still images."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

from talkinghead.constants import MAX_IMAGE_PIXELS, MIN_IMAGE_SIDE
from talkinghead.errors import InputError
from talkinghead.io.paths import image_header, media_streams, require_file


def read_image(path: str | Path) -> np.ndarray:
    """Read a still image file (jpg, png, webp, avif, bmp, ...) as RGB.

    The header is read first: animated images, images over :data:`MAX_IMAGE_PIXELS` or with a side under
    :data:`MIN_IMAGE_SIDE`, and videos or sound files given as a photo are refused before anything is decoded.
    EXIF orientation is applied. Grey and RGBA images are converted to RGB.

    Returns:
        image: (H, W, 3) uint8 RGB.
    """
    p = require_file(path)
    kind, width, height, frames = _header(p)
    if frames > 1:
        raise InputError(p, f"is an animated {kind} ({frames} frames): give a still photo, or convert it to a video "
                            "and dub that with --video")
    if width * height > MAX_IMAGE_PIXELS:
        raise InputError(p, f"image is too large ({width}x{height}; at most {MAX_IMAGE_PIXELS // 1_000_000} "
                            "megapixels)")
    if min(width, height) < MIN_IMAGE_SIDE:
        raise InputError(p, f"image is too small ({width}x{height}; each side must be at least {MIN_IMAGE_SIDE} "
                            "pixels)")
    bgr = cv2.imdecode(np.fromfile(p, dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is not None:
        return np.ascontiguousarray(bgr[:, :, ::-1])
    try:  # a format OpenCV does not decode (AVIF, ...)
        with Image.open(p) as image:
            return np.asarray(ImageOps.exif_transpose(image).convert("RGB")).copy()
    except (OSError, ValueError) as exc:
        raise InputError(p, f"not a readable image ({kind} that cannot be decoded: {exc})") from None


def _header(p: Path) -> tuple[str, int, int, int]:
    """(format, width, height, frames) from an image file's header, without decoding it; InputError saying what
    the file is when it is no image."""
    try:
        header = image_header(p)
    except Image.DecompressionBombError:
        raise InputError(p, f"image is too large (over {MAX_IMAGE_PIXELS // 1_000_000} megapixels)") from None
    if header is not None:
        return header
    streams = media_streams(p)
    if "video" in streams:
        raise InputError(p, "is a video, not a photo: dub it with --video (or talkinghead dub)")
    if "audio" in streams:
        raise InputError(p, "is a sound file, not a photo")
    raise InputError(p, "not a readable image (unknown or corrupt format)")


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
