"""Running the audio-to-landmark generator over a whole video: T-frame chunks, shared references."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from talkinghead.audio.features import AudioFeatures
from talkinghead.audio.speech import speech_inputs
from talkinghead.motion.iplap.model import LandmarkGenerator
from talkinghead.render.iplap.landmarks import N_POSE, pick_references
from talkinghead.spec import LipPredictor


@torch.no_grad()
def predict_content(model: LandmarkGenerator, speech: np.ndarray, pose: np.ndarray, references: np.ndarray, *,
                    batch: int = 64) -> np.ndarray:
    """Lip and jaw landmarks of every frame.

    Args:
        speech: (T, ...) the model's speech input of each frame (:mod:`talkinghead.audio.speech`; mels: (T, 16, 80)).
        pose: (T, 74, 2) pose-prior landmarks of each frame (render-crop coordinates in [0, 1]).
        references: (N_l, 131, 2) reference landmarks (repeated or cut to the model's N_l).
    Returns:
        (T, 57, 2) float32 content landmarks (lips then jaw).
    """
    c = model.config
    n = len(speech)
    chunks = -(-n // c.frames)
    idx = np.minimum(np.arange(chunks * c.frames), n - 1).reshape(chunks, c.frames)  # last chunk padded
    refs = references[np.arange(c.references) % len(references)]
    out = []
    for s in range(0, chunks, batch):
        i = idx[s:s + batch]
        r = torch.from_numpy(np.broadcast_to(refs, (len(i), *refs.shape)).copy()).float()
        out.append(model(torch.from_numpy(speech[i]).float(), torch.from_numpy(pose[i]).float(), r).numpy())
    return np.concatenate(out).reshape(-1, *out[0].shape[2:])[:n]


def lip_predictor(features: AudioFeatures, path: str | Path | None = None) -> LipPredictor:
    """IP_LAP's lip and jaw prediction for its renderer (:data:`talkinghead.spec.LipPredictor`) of the speech of
    ``features`` with the landmark generator of ``path`` (default: the shipped one), its references picked among
    the candidate frames."""
    model = LandmarkGenerator.load(path) if path else LandmarkGenerator.default()
    kind = model.config.speech
    speech = speech_inputs(kind, audio=features.audio, phone_ids=features.phone_ids, fps=features.fps,
                           n_frames=features.n_frames,
                           whisper=features.whisper_of(kind, fps=features.fps, n_frames=features.n_frames))

    def predict(points: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        refs = candidates[pick_references(points[candidates], model.config.references)]
        return predict_content(model, speech[:len(points)], points[:, :N_POSE], points[refs])

    return predict
