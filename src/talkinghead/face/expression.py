"""Expression in canonical (pose-free) mesh space: mouth measurements, linear bases, eyelids.

All arrays here are in canonical units (outer eye-corner distance = 1; x right, y down, z away
from the camera) unless said otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from talkinghead.face import indices as ix

MOUTH_FEATURES: tuple[str, ...] = ("lip_gap", "jaw_drop", "lip_width", "lip_protrusion", "lower_lip_raise")
"""Articulation measurements of a pose-free mesh (canonical units):

- lip_gap: mean vertical distance between facing inner-lip points (0 = closed lips);
- jaw_drop: chin height below the rigid-point centroid;
- lip_width: distance between the mouth corners;
- lip_protrusion: how far the lip centres stand in front of the mouth corners (rounding);
- lower_lip_raise: chin-to-lower-lip distance (grows when the lower lip tucks up to the teeth, f/v).
"""
GAP, JAW, WIDTH, PROTRUSION, LOWER_LIP = range(len(MOUTH_FEATURES))
OPENING_FEATURES = (GAP, JAW)
"""Features scaled by speech loudness."""


def mouth_features(mesh: np.ndarray) -> np.ndarray:
    """Articulation measurements (:data:`MOUTH_FEATURES`) of pose-free meshes.

    Args:
        mesh: (..., 478, 3) canonical-space meshes.

    Returns:
        (..., 5) float64.
    """
    m = np.asarray(mesh, np.float64)
    up, lo = ix.INNER_LIP_PAIRS[:, 0], ix.INNER_LIP_PAIRS[:, 1]
    gap = (m[..., lo, 1] - m[..., up, 1]).mean(-1)
    jaw = m[..., ix.CHIN, 1]
    width = np.linalg.norm(m[..., ix.MOUTH_CORNERS[1], :] - m[..., ix.MOUTH_CORNERS[0], :], axis=-1)
    centres = [ix.UPPER_LIP_TOP, ix.LOWER_LIP_BOTTOM, ix.UPPER_LIP_CENTRE, ix.LOWER_LIP_CENTRE]
    protrusion = m[..., ix.MOUTH_CORNERS, 2].mean(-1) - m[..., centres, 2].mean(-1)
    lower = m[..., ix.CHIN, 1] - m[..., ix.LOWER_LIP_BOTTOM, 1]
    return np.stack([gap, jaw, width, protrusion, lower], axis=-1)


@dataclass
class ExpressionBasis:
    """A linear expression model: offsets = coefficients @ components.

    Attributes:
        name: identifies the basis (and its asset version).
        coefficient_names: K names.
        components: (K, 478, 3) float32 canonical-space offsets per unit coefficient.
    """

    name: str
    coefficient_names: tuple[str, ...]
    components: np.ndarray

    def decode(self, coefficients: np.ndarray) -> np.ndarray:
        """(T, K) coefficients -> (T, 478, 3) float32 canonical-space offsets."""
        k = self.components.shape[0]
        flat = np.asarray(coefficients, np.float32) @ self.components.reshape(k, -1)
        return flat.reshape(len(coefficients), *self.components.shape[1:])


def eyelid_closure(mesh: np.ndarray) -> np.ndarray:
    """Offsets that close both eyes of a pose-free mesh when added in full.

    Upper-lid points move onto their lower-lid partners, the crease row above them follows by
    40 %, and the irises are squeezed down onto the lower lid.

    Args:
        mesh: (478, 3) canonical-space mesh with open eyes.

    Returns:
        (478, 3) float32 offsets (zero outside the eyes).
    """
    off = np.zeros_like(mesh, dtype=np.float64)
    drop = mesh[ix.EYE_LOWER] - mesh[ix.EYE_UPPER]
    drop[:, 2] = 0.0
    off[ix.EYE_UPPER] = drop
    off[ix.EYE_CREASE] = 0.4 * drop
    for iris, lower in ((ix.RIGHT_IRIS, ix.RIGHT_EYE_LOWER), (ix.LEFT_IRIS, ix.LEFT_EYE_LOWER)):
        lid_y = np.interp(mesh[iris, 0], *_sorted_xy(mesh[lower]))
        off[iris, 1] = np.maximum(lid_y - mesh[iris, 1], 0.0)
    return off.astype(np.float32)


def uncross_lips(shapes: np.ndarray, rest: np.ndarray, opening: np.ndarray) -> np.ndarray:
    """Pose-free meshes whose lips were pushed past each other, moved back along ``opening`` until they meet.

    A motion adds expression offsets to a face's own shape; where the face's lips are already closed, an offset
    that closes them further (a model's prediction below its rest shape, a closing edit) carries the upper inner
    lip below the lower one, and the warp then folds the lips over each other. Real lips stop where they touch.
    Each frame whose facing inner-lip points (:data:`~talkinghead.face.indices.INNER_LIP_COLUMNS`) crossed is
    moved by the smallest multiple of ``opening`` (how the whole face moves as the mouth opens: jaw, lips and
    corners together) that brings every pair back to touching, or to the crossing the face's own shape already
    had (a real mesh's lips can overlap by a hair). Frames whose lips did not cross are returned unchanged.

    Args:
        shapes: (T, 478, 3) canonical-space meshes (the face's shape plus the motion's offsets).
        rest: (478, 3) or (T, 478, 3) the face's own shape(s) the offsets were added to.
        opening: (478, 3) offsets that part every facing pair (:meth:`talkinghead.face.model.FaceModel.opening`).

    Returns:
        (T, 478, 3) float64 meshes.
    """
    up, lo = ix.INNER_LIP_COLUMNS[:, 0], ix.INNER_LIP_COLUMNS[:, 1]
    m, r = np.asarray(shapes, np.float64), np.asarray(rest, np.float64)
    gaps = m[:, lo, 1] - m[:, up, 1]
    floor = np.minimum(r[..., lo, 1] - r[..., up, 1], 0.0)
    rise = opening[lo, 1] - opening[up, 1]
    if np.any(rise <= 0):
        raise ValueError("the opening offsets must part every facing pair of inner-lip points")
    steps = np.maximum(((floor - gaps) / rise).max(-1), 0.0)
    return m + steps[:, None, None] * np.asarray(opening, np.float64)


def _sorted_xy(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(points[:, 0])
    return points[order, 0], points[order, 1]


def eye_openness(mesh: np.ndarray) -> np.ndarray:
    """Mean lid opening over both eyes relative to eye width, of pose-free meshes (..., 478, 3) -> (...,)."""
    m = np.asarray(mesh, np.float64)
    gap = (m[..., ix.EYE_LOWER, 1] - m[..., ix.EYE_UPPER, 1]).mean(-1)
    width = 0.5 * (np.linalg.norm(m[..., ix.RIGHT_EYE_CORNERS[1], :] - m[..., ix.RIGHT_EYE_CORNERS[0], :], axis=-1)
                   + np.linalg.norm(m[..., ix.LEFT_EYE_CORNERS[1], :] - m[..., ix.LEFT_EYE_CORNERS[0], :], axis=-1))
    return gap / width


def blink_state(mesh: np.ndarray) -> np.ndarray:
    """Per-frame eyelid closure of one face's pose-free meshes (T, 478, 3): (T,) in [0, 1], 1 = closed.

    Openness is compared with the clip's open-eye level (its 90th percentile)."""
    openness = eye_openness(mesh)
    ref = max(float(np.percentile(openness, 90)), 1e-6)
    return np.clip(1.0 - openness / ref, 0.0, 1.0)


STYLE_COMPONENTS: tuple[str, ...] = ("smile", "brow_raise")


def style_components(mesh: np.ndarray) -> np.ndarray:
    """Geometric offsets of a pose-free mesh for a full smile and a full brow raise: (2, 478, 3) float32.

    smile: mouth corners out and up, fading with distance from each corner (Gaussian, 0.18 units);
    brow_raise: brows up, fading with distance from the brow line (0.2 units) and never moving the
    eyes' lids or the lower face.
    """
    m = np.asarray(mesh, np.float64)
    out = np.zeros((2, *m.shape))
    for corner, side in ((ix.MOUTH_CORNERS[0], -1.0), (ix.MOUTH_CORNERS[1], 1.0)):
        w = np.exp(-np.sum((m[:, :2] - m[corner, :2]) ** 2, 1) / (2 * 0.18**2))
        out[0, :, 0] += side * 0.07 * w
        out[0, :, 1] -= 0.06 * w
    dist = np.min(np.linalg.norm(m[:, None, :2] - m[None, ix.BROWS, :2], axis=-1), axis=1)
    w = np.exp(-dist**2 / (2 * 0.2**2))
    w[m[:, 1] > m[ix.EYE_UPPER, 1].mean()] = 0.0  # nothing at or below the upper lids
    w[ix.EYE_UPPER] = 0.0
    out[1, :, 1] = -0.07 * w
    return out.astype(np.float32)
