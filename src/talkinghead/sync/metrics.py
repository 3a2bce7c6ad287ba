"""Sync metrics with the syncnet_python protocol: distances over +-15 frame offsets.

For every 5-frame mouth window t and offset o, d(t, o) is the distance between the window's
visual embedding and the embedding of the mel window at frame t + o (windows past either end are
left out); D(o) is its mean over t. LSE-D = min_o D(o), LSE-C = median_o D(o) - min_o D(o), and the
estimated audio-visual offset is argmin_o D(o) (positive: the audio lags the video).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from talkinghead.audio.speech import speech_at
from talkinghead.constants import DATA_FPS
from talkinghead.sync.inputs import video_visual, visual_tensor
from talkinghead.sync.model import SyncNet

MAX_OFFSET = 15


@dataclass
class SyncScore:
    """lse_d, lse_c, offset (frames) and the mean distance per offset (-15..15)."""

    lse_d: float
    lse_c: float
    offset: int
    distances: np.ndarray


@torch.no_grad()
def sync_score(model: SyncNet, mouth: torch.Tensor, mel_windows: torch.Tensor, *, max_offset: int = MAX_OFFSET,
               batch: int = 64) -> SyncScore:
    """Score a video.

    Args:
        mouth: (T, 3, H, W) mouth crops in [0, 1] or (T, D) mesh inputs, at 25 fps.
        mel_windows: (T, 16, 80) mel window of each frame (IP_LAP settings), or the model's ``config.speech``
            inputs (T, ...).
    """
    model.eval()
    n = model.config.frames
    t_count = mouth.shape[0] - n + 1
    if t_count < 1:
        raise ValueError("video too short for a sync window")
    windows = torch.stack([mouth[t:t + n] for t in range(t_count)])
    v = torch.cat([model.embed_mouth(windows[i:i + batch]) for i in range(0, t_count, batch)])
    a = torch.cat([model.embed_audio(mel_windows[i:i + batch]) for i in range(0, len(mel_windows), batch)])
    offsets = np.arange(-max_offset, max_offset + 1)
    dist = np.full(len(offsets), np.nan)
    for j, o in enumerate(offsets):
        lo, hi = max(0, -o), min(t_count, len(a) - o)
        if hi > lo:
            dist[j] = float(torch.linalg.norm(v[lo:hi] - a[lo + o:hi + o], dim=-1).mean())
    best = int(np.nanargmin(dist))
    return SyncScore(lse_d=float(dist[best]), lse_c=float(np.nanmedian(dist) - dist[best]), offset=int(offsets[best]),
                     distances=dist)


def score_video(model: SyncNet, frames: np.ndarray, meshes: np.ndarray, pose_free: np.ndarray, audio: np.ndarray,
                fps: float) -> SyncScore:
    """Sync score of a video (frames (T, H, W, 3), meshes and pose-free meshes (T, 478, 3)) at any frame
    rate against 16 kHz ``audio``: the frames are resampled to 25 fps (nearest earlier frame) first."""
    n = int(np.floor(len(frames) / fps * DATA_FPS + 1e-6))
    idx = np.minimum(np.floor(np.arange(n) * fps / DATA_FPS + 1e-6).astype(int), len(frames) - 1)
    visual = video_visual(frames[idx], meshes[idx], pose_free[idx], model.config)
    return sync_score(model, visual_tensor(visual), torch.from_numpy(speech_at(model.config.speech, audio, n)))
