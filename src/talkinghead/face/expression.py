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


def _sorted_xy(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(points[:, 0])
    return points[order, 0], points[order, 1]
