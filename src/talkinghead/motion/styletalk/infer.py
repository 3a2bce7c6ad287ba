"""Running StyleTalk: a style clip's expression coefficients -> style code; speech phonemes + style code ->
expression coefficients of every output frame."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from talkinghead.audio.features import AudioFeatures
from talkinghead.audio.phonemes import phone_windows
from talkinghead.data.clip import DATA_FPS
from talkinghead.face.mesh import track_faces
from talkinghead.face.model import FaceModel
from talkinghead.face.pose import pose_free
from talkinghead.io import read_video
from talkinghead.motion.styletalk.model import StyleTalk
from talkinghead.progress import bar

DEFAULT_CHECKPOINT = Path(__file__).parent / "assets" / "styletalk_v1.pt"
"""The StyleTalk model shipped with the package (its data card: ``styletalk_v1.json`` beside it)."""


@lru_cache(maxsize=1)
def default_styletalk() -> StyleTalk:
    return StyleTalk.load(DEFAULT_CHECKPOINT)


def resample(x: np.ndarray, n: int) -> np.ndarray:
    """(T, K) frames stretched or shrunk to (n, K) by linear interpolation (same duration)."""
    if len(x) == n:
        return x.astype(np.float32)
    src = np.linspace(0.0, 1.0, len(x)) if len(x) > 1 else np.zeros(1)
    dst = np.linspace(0.0, 1.0, n)
    return np.stack([np.interp(dst, src, x[:, k]) for k in range(x.shape[1])], 1).astype(np.float32)


def style_coefficients(path: str | Path, *, face_model: FaceModel, max_frames: int, quiet: bool = False
                       ) -> np.ndarray:
    """Expression coefficients (L, K) at 25 fps of the face in a style clip (the first ``max_frames``),
    encoded as preprocessing encodes real clips (offsets from the clip's mean shape)."""
    fps = read_video(path, max_side=64, max_frames=1).fps
    clip = read_video(path, max_side=512, max_frames=int(np.ceil(max_frames * fps / DATA_FPS)) + 1)
    with bar(len(clip.frames), "style clip", quiet=quiet) as pb:
        meshes = track_faces(clip.frames, source=str(path), progress=pb.update).meshes
    canonical = pose_free(meshes).astype(np.float64)
    coeffs = face_model.encode_expression(canonical, canonical.mean(0))
    n = max(1, int(round(len(coeffs) * DATA_FPS / clip.fps)))
    return resample(coeffs, n)[:max_frames]


@torch.no_grad()
def style_code(model: StyleTalk, style: np.ndarray | None, *, intensity: float = 1.0) -> torch.Tensor:
    """(D,) style code of (L, K) style coefficients (None: the neutral style), scaled by ``intensity``."""
    if style is None:
        return model.neutral_style.clone()
    code = model.encode_style(torch.from_numpy(style[:, :model.config.n_expression]).float()[None])[0]
    return model.scaled_style(code, intensity)


@torch.no_grad()
def styletalk_expression(model: StyleTalk, features: AudioFeatures, code: torch.Tensor, *, chunk: int = 512
                         ) -> np.ndarray:
    """(T, K) expression coefficients of the T output frames: StyleTalk runs at 25 fps on the phone timeline,
    then the coefficients are resampled to the output frame rate."""
    n25 = max(1, int(round(features.duration * DATA_FPS)))
    phones = phone_windows(features.phonemes.frame_ids(fps=DATA_FPS, n_frames=n25), model.config.window)
    out = []
    for s in range(0, n25, chunk):
        out.append(model.decode(torch.from_numpy(phones[s:s + chunk])[None], code[None])[0].numpy())
    return resample(np.concatenate(out), features.n_frames)
