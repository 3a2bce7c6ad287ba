"""What SyncNet sees: per-frame visual inputs and IP_LAP mel windows, for a preprocessed clip or a video.

Two visual streams (``SyncNetConfig.visual``):

- ``"image"``: the lower half of the 256 px face crop (the crops of :mod:`talkinghead.data.preprocess`),
  resized to ``height x width``, RGB in [0, 1];
- ``"mesh"``: the pose-free mesh points of the lips and jaw (StyleTalk's lip-sync discriminator sees
  mouth vertices too), minus the video's mean mouth shape (so the speaker's lip shape cancels),
  times :data:`MESH_SCALE`.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from talkinghead.audio.mel import IPLAP, mel_windows
from talkinghead.constants import CROP_SIZE, DATA_FPS
from talkinghead.data.clip import ClipData
from talkinghead.face import indices as ix
from talkinghead.face.crop import track_crops
from talkinghead.sync.model import SyncNetConfig

SYNC_POINTS = np.concatenate([ix.LIPS_ALL, ix.JAW])
"""Mesh stream: 40 lip + 15 jaw points."""
MESH_SCALE = 10.0
"""Canonical units (1 = eye-corner distance) times 10: lip motion becomes order 1."""


def mesh_mouth(canonical: np.ndarray) -> np.ndarray:
    """(T, 478, 3) pose-free meshes -> (T, len(SYNC_POINTS) * 3) float32 mesh-stream inputs."""
    pts = canonical[:, SYNC_POINTS].astype(np.float32)
    return ((pts - pts.mean(0)) * MESH_SCALE).reshape(len(pts), -1)


def mouth_basis(expression_basis: np.ndarray) -> torch.Tensor:
    """(K, 478, 3) expression components -> (K, len(SYNC_POINTS) * 3) float32: the mesh stream per unit
    coefficient (see :func:`coefficient_mouth`)."""
    return torch.from_numpy(expression_basis[:, SYNC_POINTS].reshape(len(expression_basis), -1) * MESH_SCALE).float()


def coefficient_mouth(coefficients: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Mesh-stream inputs of expression coefficient sequences (B, N, K) with :func:`mouth_basis` (K, D):
    the mouth points the coefficients move, minus each sequence's mean (as :func:`mesh_mouth`), (B, N, D)."""
    x = coefficients @ basis
    return x - x.mean(1, keepdim=True)


def mouth_images(crops: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(T, S, S, 3) uint8 face crops -> (T, h, w, 3) uint8 lower halves resized to ``size`` = (h, w) (the image
    stream sees the lower half of the face crop)."""
    h, w = size
    return np.stack([cv2.resize(c[len(c) // 2:], (w, h), interpolation=cv2.INTER_AREA) for c in crops])


def mouth_crops(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """:func:`mouth_images` for generated face crops, differentiable: (..., 3, S, S) in [-1, 1] -> lower halves
    resized to ``size`` (h, w), (..., 3, h, w) in [0, 1]."""
    lead, s = frames.shape[:-3], frames.shape[-1]
    lower = frames.reshape(-1, 3, s, s)[:, :, s // 2:]
    return ((F.interpolate(lower, size=size, mode="area") + 1) / 2).view(*lead, 3, *size)


def visual_tensor(visual: np.ndarray) -> torch.Tensor:
    """Stored visual inputs -> model inputs: uint8 images (.., h, w, 3) to float (.., 3, h, w) in [0, 1];
    mesh inputs unchanged."""
    t = torch.from_numpy(np.ascontiguousarray(visual))
    if visual.dtype == np.uint8:
        return t.movedim(-1, -3).float().div_(255.0)
    return t


def clip_visual(clip: ClipData, config: SyncNetConfig) -> np.ndarray:
    """Visual inputs of every frame of a preprocessed clip: uint8 (T, h, w, 3) or float32 (T, D)."""
    if config.visual == "mesh":
        return mesh_mouth(clip.canonical)
    return mouth_images(clip.frames(range(clip.n_frames)), (config.height, config.width))


def clip_mels(clip: ClipData) -> np.ndarray:
    """(T, 16, 80) IP_LAP mel window of every frame of a preprocessed clip."""
    return mel_windows(clip.mel_iplap, IPLAP, fps=DATA_FPS, n_frames=clip.n_frames)


def video_visual(frames: np.ndarray, meshes: np.ndarray, pose_free: np.ndarray, config: SyncNetConfig) -> np.ndarray:
    """Visual inputs of a 25 fps video's frames (T, H, W, 3) with their meshes (T, 478, 3) in frame pixels
    and pose-free meshes (T, 478, 3): crops as preprocessing cuts them, or mesh points."""
    if config.visual == "mesh":
        return mesh_mouth(pose_free)
    crops, _ = track_crops(frames, meshes, size=CROP_SIZE)
    return mouth_images(crops, (config.height, config.width))
