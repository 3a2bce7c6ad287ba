"""Rigid head pose: a similarity (Umeyama) fit of a mesh to the canonical mesh."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
from scipy.spatial.transform import Rotation

from talkinghead.face.indices import OUTER_EYE_CORNERS, POSE

CANONICAL_ASSET = "canonical_mesh_v1.npz"


@dataclass
class Pose:
    """mesh ≈ scale * canonical_like @ rotation.T + translation.

    Attributes:
        rotation: (3, 3) float64 proper rotation (det +1), canonical -> image axes.
        translation: (3,) float64 pixels.
        scale: pixels per canonical unit (canonical unit = outer eye-corner distance).
    """

    rotation: np.ndarray
    translation: np.ndarray
    scale: float

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """Canonical-space points (..., 3) -> image pixels (..., 3)."""
        return self.scale * points @ self.rotation.T + self.translation

    def to_canonical(self, points: np.ndarray) -> np.ndarray:
        """Image pixels (..., 3) -> canonical-space points (..., 3) (pose removed)."""
        return (points - self.translation) @ self.rotation / self.scale

    def euler(self) -> np.ndarray:
        """(pitch, yaw, roll) in radians (intrinsic x-y-z)."""
        return Rotation.from_matrix(self.rotation).as_euler("xyz")


def umeyama(src: np.ndarray, dst: np.ndarray, *, with_scale: bool = True) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity transform with dst ≈ s * src @ R.T + t (Umeyama 1991).

    Args:
        src, dst: (N, D) corresponding points.

    Returns:
        (s, R (D, D) with det +1, t (D,)).
    """
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    cov = xd.T @ xs / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(len(sig))
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1.0
    rot = u @ np.diag(d) @ vt
    var_s = (xs**2).sum() / len(src)
    s = float((sig * d).sum() / var_s) if with_scale else 1.0
    return s, rot, mu_d - s * mu_s @ rot.T


@lru_cache(maxsize=1)
def canonical_mesh() -> np.ndarray:
    """The shipped canonical mesh: (478, 3) float64, outer eye-corner distance 1, x right, y down."""
    with resources.files("talkinghead.face").joinpath("assets", CANONICAL_ASSET).open("rb") as f:
        return np.load(f)["mesh"].astype(np.float64)


def fit_pose(mesh: np.ndarray, canonical: np.ndarray | None = None) -> Pose:
    """Fit the rigid pose of a (478, 3) pixel mesh from its rigid points (:data:`POSE`).

    ``canonical`` defaults to the shipped :func:`canonical_mesh`.
    """
    ref = canonical_mesh() if canonical is None else canonical
    s, rot, t = umeyama(ref[POSE], mesh[POSE].astype(np.float64))
    return Pose(rotation=rot, translation=t, scale=s)


def pose_free(meshes: np.ndarray, canonical: np.ndarray | None = None) -> np.ndarray:
    """Remove each mesh's rigid pose: (..., 478, 3) pixels -> canonical space, float64."""
    flat = meshes.reshape(-1, *meshes.shape[-2:]).astype(np.float64)
    out = np.stack([fit_pose(m, canonical).to_canonical(m) for m in flat])
    return out.reshape(meshes.shape)


def with_rest_shape(meshes: np.ndarray) -> np.ndarray:
    """(T, 478, 3) pixel meshes of a video with each frame's pose kept and its expression removed: every frame
    shows the clip's rest shape (its mean pose-free mesh) under that frame's pose."""
    poses = [fit_pose(m) for m in meshes]
    rest = np.mean([p.to_canonical(m.astype(np.float64)) for p, m in zip(poses, meshes)], 0)
    return np.stack([p.to_image(rest) for p in poses])


def head_motion(rotations: np.ndarray) -> np.ndarray:
    """(L, 3) head motion of a clip's (L, 3, 3) rotations: each frame's rotation relative to the clip's mean
    rotation (the nearest rotation to their average) as its small-angle axis vector, sin(angle) x axis, in
    radians: the face's own pose in the clip is removed, its movement kept."""
    u, _, vt = np.linalg.svd(rotations.astype(np.float64).mean(0))
    mean = u @ np.diag([1.0, 1.0, np.linalg.det(u @ vt)]) @ vt
    rel = rotations @ mean.T
    return np.stack([rel[:, 2, 1] - rel[:, 1, 2], rel[:, 0, 2] - rel[:, 2, 0], rel[:, 1, 0] - rel[:, 0, 1]], 1) / 2


HEAD_MOTION_SCALE = 10.0
"""Head motion (radians) is multiplied by this beside expression coefficients: its spread in speech (std 0.03 to
0.05) becomes that of the leading coefficients (0.3)."""


def with_head_motion(expression: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """(L, K + 3) float32: a clip's expression coefficients with its :func:`head_motion` appended (times
    :data:`HEAD_MOTION_SCALE`)."""
    return np.concatenate([expression, HEAD_MOTION_SCALE * head_motion(rotations)], 1).astype(np.float32)


def upright_frame(mesh: np.ndarray) -> np.ndarray:
    """Re-express a pose-free mean mesh in a frame with x along the eyes, y down the face, unit eye distance.

    Used when building the canonical mesh; returns (478, 3).
    """
    x_axis = mesh[OUTER_EYE_CORNERS[1]] - mesh[OUTER_EYE_CORNERS[0]]
    x_axis /= np.linalg.norm(x_axis)
    down = mesh[152] - mesh[10]
    y_axis = down - x_axis * (down @ x_axis)
    y_axis /= np.linalg.norm(y_axis)
    z_axis = np.cross(x_axis, y_axis)
    centred = (mesh - mesh[POSE].mean(0)) @ np.stack([x_axis, y_axis, z_axis]).T
    return centred / np.linalg.norm(centred[OUTER_EYE_CORNERS[1]] - centred[OUTER_EYE_CORNERS[0]])


def procrustes_mean(meshes: np.ndarray, *, iterations: int = 5) -> np.ndarray:
    """Generalised Procrustes mean of (N, 478, 3) meshes aligned on their rigid points, in :func:`upright_frame`."""
    mean = upright_frame(meshes[0].astype(np.float64))
    for _ in range(iterations):
        aligned = []
        for m in meshes:
            s, rot, t = umeyama(m[POSE].astype(np.float64), mean[POSE])
            aligned.append(s * m @ rot.T + t)
        mean = upright_frame(np.mean(aligned, axis=0))
    return mean
