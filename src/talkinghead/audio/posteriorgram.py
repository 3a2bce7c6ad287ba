"""Frame-level speech representations for VAST: a phonetic posteriorgram (PPG) from the phone timeline,
or Whisper tiny.en encoder features, both at the video frame rate.

VAST feeds a speaker-independent PPG from an ASR acoustic model. Our audio module gives phones with
times (forced alignment or allphone recognition, :mod:`talkinghead.audio.phonemes`), not an acoustic
model's per-frame probabilities, so the PPG here is "posteriorgram-like": the probability of phone p at
frame t is the share of a triangular window centred on the frame (``width`` seconds at its base) that p
occupies. Inside a long phone it is one-hot; across a boundary it cross-fades over ``width`` the way
an acoustic model's posteriors do. Rows sum to 1.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from talkinghead.audio.phonemes import PHONE_INDEX, PHONES, PhonemeTimeline
from talkinghead.constants import SAMPLE_RATE

PPG_WIDTH = 0.08
"""Base of the triangular frame window (s): two frames at 25 fps."""
WHISPER_DIM = 384
"""Width of Whisper tiny's encoder output."""
WHISPER_RATE = 50.0
"""Whisper encoder frames per second (30 s windows of 1500 frames)."""
WHISPER_WINDOW = 30 * SAMPLE_RATE
SPEECH_KINDS = ("ppg", "whisper", "whisper3")
"""VAST's speech kinds: the phone posteriorgram, or Whisper features
(:data:`talkinghead.audio.whisper_encoder.KIND_BLOCKS`)."""


def speech_dim(kind: str) -> int:
    """Feature width of a speech representation kind (:data:`SPEECH_KINDS`)."""
    if kind not in SPEECH_KINDS:
        raise ValueError(f"speech features must be one of {', '.join(SPEECH_KINDS)}, not {kind!r}")
    return len(PHONES) if kind == "ppg" else WHISPER_DIM


def phone_posteriorgram(ids: np.ndarray, starts: np.ndarray, ends: np.ndarray, *, fps: float, n_frames: int,
                        width: float = PPG_WIDTH) -> np.ndarray:
    """(n_frames, len(PHONES)) float32 phone probabilities per frame (see the module docstring).

    Args:
        ids: (P,) int phone indices into ``PHONES``; starts, ends: (P,) seconds. Time not covered by any
            phone counts as "SIL".
    """
    sub = 8  # samples of the triangular window per frame
    offsets = (np.arange(sub) + 0.5) / sub * width - width / 2
    weights = 1.0 - np.abs(offsets) / (width / 2)
    times = (np.arange(n_frames) + 0.5)[:, None] / fps + offsets[None]  # (T, sub)
    pos = np.searchsorted(np.asarray(ends), times, side="right")
    inside = pos < len(ids)
    k = np.minimum(pos, max(len(ids) - 1, 0))
    covered = inside & (np.asarray(starts)[k] <= times) if len(ids) else np.zeros_like(inside)
    phone = np.where(covered, np.asarray(ids)[k] if len(ids) else 0, PHONE_INDEX["SIL"])
    out = np.zeros((n_frames, len(PHONES)), np.float32)
    np.add.at(out, (np.repeat(np.arange(n_frames), sub), phone.reshape(-1)), np.tile(weights, n_frames))
    return out / out.sum(1, keepdims=True)


def timeline_posteriorgram(timeline: PhonemeTimeline, *, fps: float, n_frames: int) -> np.ndarray:
    """:func:`phone_posteriorgram` of a phone timeline."""
    ids = np.array([PHONE_INDEX[p] for p in timeline.phones], np.int64)
    return phone_posteriorgram(ids, timeline.starts, timeline.ends, fps=fps, n_frames=n_frames)


def whisper_features(audio: np.ndarray, *, fps: float, n_frames: int) -> np.ndarray:
    """(n_frames, 384) float32 Whisper tiny.en encoder features (CTranslate2's, the last layer) of (N,) float32
    16 kHz audio, as :func:`encode_in_windows` reads it."""
    from talkinghead.audio.phonemes import _whisper

    model = _whisper()
    return encode_in_windows(audio, lambda mel: np.asarray(model.encode(mel[None]))[0], model.feature_extractor,
                             fps=fps, n_frames=n_frames)


def encode_in_windows(audio: np.ndarray, encode: Callable[[np.ndarray], np.ndarray],
                      extractor: Callable[[np.ndarray], np.ndarray], *, fps: float, n_frames: int) -> np.ndarray:
    """(n_frames, D) float32: (N,) float32 16 kHz audio encoded in 30 s windows, as Whisper reads it (each window's
    (80, 3000) log-mel from ``extractor``, the last one padded with silence, given to ``encode``, which returns
    (1500, D) frames at 50 Hz; the frames past the audio's end dropped), linearly interpolated to ``fps``."""
    chunks = []
    for s in range(0, max(audio.size, 1), WHISPER_WINDOW):
        part = audio[s:s + WHISPER_WINDOW].astype(np.float32)
        mel = np.ascontiguousarray(extractor(np.pad(part, (0, WHISPER_WINDOW - part.size)))[:, :3000], np.float32)
        chunks.append(encode(mel)[:int(np.ceil(part.size / SAMPLE_RATE * WHISPER_RATE))])
    feats = np.concatenate(chunks)
    src = (np.arange(len(feats)) + 0.5) / WHISPER_RATE
    dst = (np.arange(n_frames) + 0.5) / fps
    return np.stack([np.interp(dst, src, feats[:, j]) for j in range(feats.shape[1])], 1).astype(np.float32)


def speech_features(kind: str, *, audio: np.ndarray, timeline: PhonemeTimeline, fps: float, n_frames: int,
                    whisper: np.ndarray | None = None) -> np.ndarray:
    """(n_frames, S) speech features of one kind (:data:`SPEECH_KINDS`) at ``fps``: the posteriorgram of the
    phone timeline, or the Whisper features of the (N,) float32 16 kHz audio (``whisper`` when already computed)."""
    from talkinghead.audio.whisper_encoder import kind_features  # it imports this module

    speech_dim(kind)
    if kind == "ppg":
        return timeline_posteriorgram(timeline, fps=fps, n_frames=n_frames)
    return whisper if whisper is not None else kind_features(kind, audio, fps=fps, n_frames=n_frames)
