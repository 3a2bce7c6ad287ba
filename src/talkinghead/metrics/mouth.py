"""Mouth-motion measures on meshes: opening curves, their correlation, lip landmark distance."""

from __future__ import annotations

import cv2
import numpy as np

from talkinghead.face import indices as ix
from talkinghead.face.expression import GAP, mouth_features
from talkinghead.face.mesh import track_faces
from talkinghead.face.pose import pose_free

CROP_MESH_SIZE = 256
"""Face crops are upscaled (bicubic) to this size before :func:`crop_openings` meshes them."""


def mouth_opening(meshes: np.ndarray) -> np.ndarray:
    """Inner-lip gap per frame in canonical units (outer eye-corner distance = 1): (T,) float64."""
    return mouth_features(pose_free(meshes))[:, GAP]


def crop_openings(crops: np.ndarray) -> np.ndarray:
    """:func:`mouth_opening` of face crops (N, S, S, 3) uint8 RGB, meshed at :data:`CROP_MESH_SIZE` (a generator's
    128 px crops are upscaled first)."""
    up = (CROP_MESH_SIZE, CROP_MESH_SIZE)
    return mouth_opening(track_faces(np.stack([cv2.resize(c, up, interpolation=cv2.INTER_CUBIC)
                                               for c in crops])).meshes)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two equal-length curves (0 when either is constant)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.std() < 1e-12 or b.std() < 1e-12:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def best_lag_pearson(a: np.ndarray, b: np.ndarray, max_lag: int) -> float:
    """The highest :func:`pearson` of ``a`` shifted by -max_lag .. max_lag frames against ``b`` (the overlapping
    frames of each shift)."""
    n = min(len(a), len(b))
    a, b = np.asarray(a[:n]), np.asarray(b[:n])
    return max(pearson(a[max(k, 0):n + min(k, 0)], b[max(-k, 0):n - max(k, 0)]) for k in range(-max_lag, max_lag + 1)
               if n - abs(k) > 1)


def lip_distance(generated: np.ndarray, real: np.ndarray) -> float:
    """Mean distance of the 40 lip points between two mesh sequences (T, 478, 3), pose removed,
    each frame's lips centred on the mouth corners' midpoint; canonical units."""
    g, r = pose_free(generated), pose_free(real)
    gl = g[:, ix.LIPS_ALL, :2] - g[:, ix.MOUTH_CORNERS, :2].mean(1, keepdims=True)
    rl = r[:, ix.LIPS_ALL, :2] - r[:, ix.MOUTH_CORNERS, :2].mean(1, keepdims=True)
    return float(np.linalg.norm(gl - rl, axis=-1).mean())
