"""Square face crops (FOMM-style margin, optionally eye-aligned) and Gaussian-masked paste-back."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d

from talkinghead.face.indices import FACE_OVAL, OUTER_EYE_CORNERS

CROP_MARGIN = 1.6
"""Crop side relative to the larger side of the mesh's bounding box (forehead, hair and chin included)."""
CROP_SMOOTHING = 2.0
"""Gaussian sigma (frames) applied to a video's crop centre, size and angle over time."""
MOUTH_REGION = (0.30, 0.52, 0.70, 0.82)
"""(x0, y0, x1, y1) fractions of an aligned face crop holding the mouth and the chin's travel: the lip points of
the preprocessed real and synthetic clips lie in x 0.34..0.64, y 0.56..0.73 (2nd..98th percentiles)."""


@dataclass
class FaceCrop:
    """Where a square crop sits in its frame.

    Attributes:
        matrix: (2, 3) float64 affine mapping frame pixels -> crop pixels.
        size: crop side in pixels.
    """

    matrix: np.ndarray
    size: int

    @property
    def inverse(self) -> np.ndarray:
        """(2, 3) affine mapping crop pixels -> frame pixels."""
        return cv2.invertAffineTransform(self.matrix)

    @property
    def scale(self) -> float:
        """Crop pixels per frame pixel."""
        return float(np.sqrt(abs(np.linalg.det(self.matrix[:, :2]))))

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        """Frame pixel points (N, >=2) -> crop pixels (N, 2)."""
        return points[:, :2] @ self.matrix[:, :2].T + self.matrix[:, 2]


def crop_params(mesh: np.ndarray, *, margin: float = CROP_MARGIN, align: bool = True) -> np.ndarray:
    """(centre x, centre y, side, angle) of a face's square crop: centred on its mesh box, side ``margin``
    times the box's larger side, rotated by the eye line's angle (radians) when ``align``."""
    xy = mesh[:, :2].astype(np.float64)
    lo, hi = xy.min(0), xy.max(0)
    angle = 0.0
    if align:
        d = xy[OUTER_EYE_CORNERS[1]] - xy[OUTER_EYE_CORNERS[0]]
        angle = float(np.arctan2(d[1], d[0]))
    return np.array([*(lo + hi) / 2, margin * float((hi - lo).max()), angle])


def crop_from_params(params: np.ndarray, size: int) -> FaceCrop:
    """The FaceCrop of (centre x, centre y, side, angle) at ``size`` pixels."""
    centre, side, angle = params[:2], float(params[2]), float(params[3])
    scale = size / side
    c, s = np.cos(-angle) * scale, np.sin(-angle) * scale
    rot = np.array([[c, -s], [s, c]])
    return FaceCrop(matrix=np.concatenate([rot, (size / 2 - rot @ centre)[:, None]], axis=1), size=size)


def face_crop_for(mesh: np.ndarray, *, size: int | None = 256, margin: float = CROP_MARGIN,
                  align: bool = True) -> FaceCrop:
    """The square crop of a face (see :func:`crop_params`) at ``size`` pixels.

    ``size=None`` keeps the frame's pixel scale; with ``align=False`` too, the crop is then an
    exact integer-offset cut of the frame (no resampling)."""
    params = crop_params(mesh, margin=margin, align=align)
    if size is None:
        size = int(np.ceil(params[2]))
        if not align:
            corner = np.round(params[:2] - size / 2)
            return FaceCrop(matrix=np.array([[1.0, 0.0, -corner[0]], [0.0, 1.0, -corner[1]]]), size=size)
        params[2] = size
    return crop_from_params(params, size)


def crop_face(image: np.ndarray, mesh: np.ndarray, *, size: int | None = 256, margin: float = CROP_MARGIN,
              align: bool = True) -> tuple[np.ndarray, FaceCrop]:
    """Cut the square face crop out of ``image`` ((H, W, 3) uint8); borders outside the frame are replicated.

    Returns:
        (crop (size, size, 3) uint8, FaceCrop).
    """
    fc = face_crop_for(mesh, size=size, margin=margin, align=align)
    offset = _integer_offset(fc)
    if offset is None:
        crop = cv2.warpAffine(image, fc.matrix, (fc.size, fc.size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
        return crop, fc
    h, w = image.shape[:2]
    x0, y0 = offset
    x1, y1 = x0 + fc.size, y0 + fc.size
    inner = image[min(max(y0, 0), h - 1):max(min(y1, h), 1), min(max(x0, 0), w - 1):max(min(x1, w), 1)]
    top, left = max(0, min(-y0, fc.size)), max(0, min(-x0, fc.size))  # an exact cut: a copy, edges replicated
    bottom, right = fc.size - top - inner.shape[0], fc.size - left - inner.shape[1]
    return cv2.copyMakeBorder(inner, top, bottom, left, right, cv2.BORDER_REPLICATE), fc


def _integer_offset(fc: FaceCrop) -> tuple[int, int] | None:
    """The frame pixel (x, y) at the crop's top-left corner when the crop is an exact cut (scale 1, no rotation,
    whole-pixel offset), else None."""
    inv = fc.inverse
    if np.array_equal(inv[:, :2], np.eye(2)) and np.all(inv[:, 2] == np.round(inv[:, 2])):
        return int(inv[0, 2]), int(inv[1, 2])
    return None


def track_crop_params(meshes: np.ndarray, *, size: int, smoothing: float = CROP_SMOOTHING,
                      margin: float = CROP_MARGIN) -> list[FaceCrop]:
    """The FaceCrop of every frame of a video (see :func:`crop_params`), with the crop centre, size and
    angle smoothed over time (Gaussian, ``smoothing`` frames) so the crop does not jitter with the mesh."""
    params = np.stack([crop_params(m, margin=margin) for m in meshes])
    params[:, 3] = np.unwrap(params[:, 3])
    if smoothing > 0:
        params = gaussian_filter1d(params, smoothing, axis=0, mode="nearest")
    return [crop_from_params(p, size) for p in params]


def cut(frame: np.ndarray, fc: FaceCrop) -> np.ndarray:
    """The (size, size, 3) crop ``fc`` of a frame (area resampling, replicated borders)."""
    return cv2.warpAffine(frame, fc.matrix, (fc.size, fc.size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)


def track_crops(frames: np.ndarray, meshes: np.ndarray, *, size: int, smoothing: float = CROP_SMOOTHING,
                margin: float = CROP_MARGIN) -> tuple[np.ndarray, list[FaceCrop]]:
    """Smoothed face crops of a video (see :func:`track_crop_params`).

    Returns:
        (crops (T, size, size, 3) uint8, the FaceCrop of every frame).
    """
    fcs = track_crop_params(meshes, size=size, smoothing=smoothing, margin=margin)
    return np.stack([cut(f, fc) for f, fc in zip(frames, fcs)]), fcs


def face_mask(points: np.ndarray, shape: tuple[int, int], *, feather: float) -> np.ndarray:
    """Soft mask of the face oval: (H, W) float32 in [0, 1], 1 inside, Gaussian-smoothed edge.

    Args:
        points: (478, >=2) mesh in the mask's pixel coordinates.
        shape: (H, W) of the mask.
        feather: Gaussian sigma of the edge in pixels; the oval is eroded by 1.5 sigma first so the
            mask reaches 0 on the outline.
    """
    mask = np.zeros(shape, np.float32)
    hull = cv2.convexHull(np.round(points[FACE_OVAL, :2]).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1.0)
    if feather > 0:
        k = int(2 * round(1.5 * feather) + 1)
        mask = cv2.erode(mask, np.ones((k, k), np.uint8))
        mask = cv2.GaussianBlur(mask, (0, 0), feather)
    return mask


def paste_back(frame: np.ndarray, crop: np.ndarray, fc: FaceCrop, mask: np.ndarray, *, inset: int = 0) -> np.ndarray:
    """Blend a (size, size, 3) crop back into a copy of ``frame`` through its soft (size, size) mask.

    Only the crop's bounding box in the frame is touched. An exact cut (integer offset, scale 1,
    no rotation) is pasted without resampling; when the mask is 1 everywhere at least ``inset`` pixels inside
    the crop's edges, that part of an exact cut is copied and only the band outside it is blended.
    """
    h, w = frame.shape[:2]
    out = frame.copy()
    offset = _integer_offset(fc)
    if offset is not None:
        ox, oy = offset
        box = (max(ox, 0), max(oy, 0), min(ox + fc.size, w), min(oy + fc.size, h))
        solid = (max(box[0], ox + inset), max(box[1], oy + inset), min(box[2], ox + fc.size - inset),
                 min(box[3], oy + fc.size - inset))
        if inset <= 0 or solid[2] <= solid[0] or solid[3] <= solid[1]:
            _blend(out, crop, mask, (ox, oy), box)
            return out
        sx0, sy0, sx1, sy1 = solid
        x0, y0, x1, y1 = box
        for band in ((x0, y0, x1, sy0), (x0, sy1, x1, y1), (x0, sy0, sx0, sy1), (sx1, sy0, x1, sy1)):
            _blend(out, crop, mask, (ox, oy), band)
        out[sy0:sy1, sx0:sx1] = crop[sy0 - oy:sy1 - oy, sx0 - ox:sx1 - ox]
        return out
    inv = fc.inverse
    corners = np.array([[0, 0], [fc.size, 0], [0, fc.size], [fc.size, fc.size]], np.float64)
    pts = corners @ inv[:, :2].T + inv[:, 2]
    x0, y0 = np.maximum(np.floor(pts.min(0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(pts.max(0)).astype(int) + 1, [w, h])
    if x1 <= x0 or y1 <= y0:
        return out
    shifted = inv.copy()
    shifted[:, 2] -= (x0, y0)
    size = (int(x1 - x0), int(y1 - y0))
    back = cv2.warpAffine(crop, shifted, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(mask.astype(np.float32), shifted, size, flags=cv2.INTER_LINEAR, borderValue=0.0)
    _blend(out, back, alpha, (x0, y0), (x0, y0, x1, y1))
    return out


def _blend(out: np.ndarray, image: np.ndarray, alpha: np.ndarray, origin: tuple[int, int],
           box: tuple[int, int, int, int]) -> None:
    """Blend ``image`` through ``alpha`` (both placed with their top-left pixel at ``origin`` of ``out``) into
    ``out`` inside the frame box (x0, y0, x1, y1); an empty box is left alone."""
    x0, y0, x1, y1 = box
    if x1 <= x0 or y1 <= y0:
        return
    ox, oy = origin
    back = np.ascontiguousarray(image[y0 - oy:y1 - oy, x0 - ox:x1 - ox])
    weight = np.ascontiguousarray(alpha[y0 - oy:y1 - oy, x0 - ox:x1 - ox], np.float32)
    out[y0:y1, x0:x1] = cv2.blendLinear(back, np.ascontiguousarray(out[y0:y1, x0:x1]), weight, 1.0 - weight)
