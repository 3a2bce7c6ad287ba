"""Image quality metrics: PSNR, SSIM, MS-SSIM and CPBD sharpness, on uint8 RGB images.

SSIM follows Wang et al. 2004 with an 11-tap Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03,
computed on luma (the same numbers as scikit-image's ``structural_similarity(gaussian_weights=True,
sigma=1.5, use_sample_covariance=False, data_range=255)``). MS-SSIM follows Wang et al. 2003
(5 scales, the standard weights). CPBD follows Narvekar & Karam 2011.
"""

from __future__ import annotations

import cv2
import numpy as np

_K1, _K2, _SIGMA = 0.01, 0.03, 1.5
_MS_WEIGHTS = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])


def luma(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB (or (H, W) grey) -> (H, W) float64 luma in 0..255 (BT.601)."""
    if image.ndim == 2:
        return image.astype(np.float64)
    return image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of two uint8 images (inf when identical)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _blur(x: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(x, (11, 11), _SIGMA, borderType=cv2.BORDER_REFLECT)


def _ssim_maps(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(luminance * contrast-structure map, contrast-structure map) of two float images."""
    c1, c2 = (_K1 * 255) ** 2, (_K2 * 255) ** 2
    mx, my = _blur(x), _blur(y)
    sxx = _blur(x * x) - mx * mx
    syy = _blur(y * y) - my * my
    sxy = _blur(x * y) - mx * my
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    return (2 * mx * my + c1) / (mx * mx + my * my + c1) * cs, cs


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Structural similarity of two uint8 images (on luma), in [-1, 1]."""
    full, _ = _ssim_maps(luma(a), luma(b))
    pad = 5  # skimage crops the window's half-width at the borders
    return float(full[pad:-pad, pad:-pad].mean())


def ms_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Multi-scale SSIM (5 scales) of two uint8 images at least 161 px on each side."""
    x, y = luma(a), luma(b)
    if min(x.shape) < 161:
        raise ValueError("MS-SSIM needs images of at least 161 pixels per side")
    values = []
    for scale in range(5):
        full, cs = _ssim_maps(x, y)
        values.append(max(float((full if scale == 4 else cs).mean()), 0.0))
        x = cv2.resize(x, (x.shape[1] // 2, x.shape[0] // 2), interpolation=cv2.INTER_AREA)
        y = cv2.resize(y, (y.shape[1] // 2, y.shape[0] // 2), interpolation=cv2.INTER_AREA)
    return float(np.prod(np.power(values, _MS_WEIGHTS)))


CPBD_BLOCK = 64
"""Side of CPBD's contrast blocks (pixels)."""


def cpbd(image: np.ndarray) -> float:
    """Cumulative probability of blur detection (sharpness, higher = sharper), Narvekar & Karam 2011.

    Edge widths (Marziliano) are measured along rows at vertical Canny edges; each 64x64 block's
    contrast sets the just-noticeable blur width (5 px when its contrast is <= 50, else 3 px); an
    edge's blur probability is 1 - exp(-(w / w_jnb) ** 3.6), and CPBD is the share of edges whose
    probability stays at or below 63 %. An image narrower or lower than a block is measured in square blocks of
    its shorter side (the left or top part).
    """
    grey = luma(image)
    edges = cv2.Canny(grey.astype(np.uint8), 100, 200) > 0
    side = min(CPBD_BLOCK, *grey.shape)  # an image smaller than a block (a mouth box) is one block
    gx = cv2.Sobel(grey, cv2.CV_64F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_64F, 0, 1, ksize=3)
    vertical = edges & (np.abs(gx) >= np.abs(gy))
    h, w = grey.shape
    probs = []
    for by in range(0, h - side + 1, side):
        for bx in range(0, w - side + 1, side):
            block = grey[by:by + side, bx:bx + side]
            e = vertical[by:by + side, bx:bx + side]
            if e.sum() < 0.002 * side * side:
                continue
            w_jnb = 5.0 if float(block.max() - block.min()) <= 50 else 3.0
            for r, c in zip(*np.nonzero(e)):
                row = grey[by + r]
                x = bx + c
                sign = 1.0 if gx[by + r, x] > 0 else -1.0
                left = x
                while left > 0 and sign * (row[left] - row[left - 1]) > 0:
                    left -= 1
                right = x
                while right < w - 1 and sign * (row[right + 1] - row[right]) > 0:
                    right += 1
                width = right - left
                probs.append(1.0 - np.exp(-((width / w_jnb) ** 3.6)))
    if not probs:
        return 0.0
    return float(np.mean(np.array(probs) <= 0.63))
