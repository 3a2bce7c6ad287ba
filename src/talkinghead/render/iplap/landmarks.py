"""IP_LAP landmarks: the 131 reference points of a face in its render crop, in [0, 1] crop coordinates.

The render crop is tighter than the stored 256 px preprocessing crop (margin :data:`RENDER_MARGIN`
instead of ``CROP_MARGIN`` around the mesh box, same centre and angle), like IP_LAP's landmark box
plus a small border, so the mouth gets more of the renderer's pixels.
"""

from __future__ import annotations

import cv2
import numpy as np

from talkinghead.face import indices as ix
from talkinghead.face.crop import CROP_MARGIN

N_POSE = 74
"""The first 74 of the 131 reference points are the pose prior; the remaining 57 the content (lips, jaw)."""
RENDER_MARGIN = 1.15
"""Render crop side relative to the face mesh box."""
SUBCROP = RENDER_MARGIN / CROP_MARGIN
"""Render crop side as a share of the preprocessing crop side (same centre)."""


def _subcrop(crop_size: int) -> tuple[int, int]:
    """(offset, side) in pixels of the render crop inside a CROP_MARGIN crop of side ``crop_size``."""
    side = int(round(crop_size * SUBCROP))
    return (crop_size - side) // 2, side


def subcrop_points(meshes: np.ndarray, crop_size: int) -> np.ndarray:
    """(T, 478, >=2) mesh points in pixels of a CROP_MARGIN crop of side ``crop_size`` -> (T, 131, 2)
    float32 reference points in [0, 1] render-crop coordinates."""
    o, side = _subcrop(crop_size)
    return ((meshes[:, ix.IPLAP_REFERENCE, :2] - o) / side).astype(np.float32)


def subcrop_images(crops: np.ndarray, size: int) -> np.ndarray:
    """(T, C, C, 3) uint8 CROP_MARGIN crops -> (T, size, size, 3) uint8 render crops."""
    o, side = _subcrop(crops.shape[1])
    return np.stack([cv2.resize(x[o:o + side, o:o + side], (size, size), interpolation=cv2.INTER_AREA)
                     for x in crops])


def lip_opening(points: np.ndarray) -> np.ndarray:
    """(T, 131, 2) reference points -> (T,) distance between the upper and lower lip centres."""
    slot = {int(p): i for i, p in enumerate(ix.IPLAP_REFERENCE)}
    return np.linalg.norm(points[:, slot[ix.UPPER_LIP_TOP]] - points[:, slot[ix.LOWER_LIP_BOTTOM]], axis=-1)


def content_lip_gap(content: np.ndarray) -> np.ndarray:
    """(T, 57, 2) content points (lips then jaw, ``face.indices.IPLAP_CONTENT`` order) -> (T,) the inner-lip gap: the
    mean distance of the :data:`~talkinghead.face.indices.INNER_LIP_PAIRS`."""
    slot = {int(p): i for i, p in enumerate(ix.IPLAP_CONTENT)}
    upper, lower = ([slot[int(p)] for p in ix.INNER_LIP_PAIRS[:, j]] for j in (0, 1))
    return np.linalg.norm(content[:, upper] - content[:, lower], axis=-1).mean(1)


def pick_references(points: np.ndarray, n: int) -> np.ndarray:
    """Indices of ``n`` frames whose mouth openings spread evenly over the clip's range (IP_LAP picks
    references by sorted lip distance), (n,) int64."""
    order = np.argsort(lip_opening(points), kind="stable")
    return order[np.round(np.linspace(0, len(order) - 1, n)).astype(np.int64)]
