"""All per-frame audio analysis bundled at the video frame rate."""

from __future__ import annotations

import ctypes
import gc
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from talkinghead.audio import phonemes
from talkinghead.audio.phonemes import PhonemeTimeline, phoneme_timeline
from talkinghead.audio.vad import loudness, voice_activity
from talkinghead.constants import SAMPLE_RATE


@dataclass
class AudioFeatures:
    """Speech analysed for T video frames at ``fps``.

    Attributes:
        audio: (N,) float32 mono samples at :data:`SAMPLE_RATE`.
        fps: video frame rate.
        n_frames: T = ceil(duration * fps), so the video covers the whole audio.
        phonemes: the phone timeline (seconds).
        phone_ids: (T,) int64 index into ``PHONES`` at each frame centre.
        loudness_db: (T,) float32 RMS level in dBFS of a 40 ms window at each frame centre.
        voiced: (T,) bool voice activity.
    """

    audio: np.ndarray
    fps: float
    n_frames: int
    phonemes: PhonemeTimeline
    phone_ids: np.ndarray
    loudness_db: np.ndarray
    voiced: np.ndarray

    @property
    def duration(self) -> float:
        """Audio duration in seconds."""
        return self.audio.size / SAMPLE_RATE


def frame_count(n_samples: int, fps: float) -> int:
    """Video frames needed to cover ``n_samples`` audio samples at ``fps``."""
    return max(1, math.ceil(n_samples / SAMPLE_RATE * fps - 1e-6))


def analyse_audio(audio: np.ndarray, *, fps: float, language: str = "auto", transcript: str | None = None,
                  progress: Callable[[float], None] | None = None) -> AudioFeatures:
    """Phonemes, loudness and voice activity of speech, per video frame.

    Args:
        audio: (N,) float32 mono at :data:`SAMPLE_RATE`.
        fps: video frame rate.
        language, transcript: see :func:`talkinghead.audio.phonemes.phoneme_timeline`.
        progress: called with the fraction done.
    """
    timeline = phoneme_timeline(audio, language=language, transcript=transcript, progress=progress)
    return features_from_timeline(audio, timeline, fps=fps)


def features_from_timeline(audio: np.ndarray, timeline: PhonemeTimeline, *, fps: float) -> AudioFeatures:
    """AudioFeatures of speech whose phone timeline is already known (e.g. exact espeak-ng times)."""
    n = frame_count(audio.size, fps)
    return AudioFeatures(
        audio=audio,
        fps=fps,
        n_frames=n,
        phonemes=timeline,
        phone_ids=timeline.frame_ids(fps=fps, n_frames=n),
        loudness_db=loudness(audio, fps=fps, n_frames=n),
        voiced=voice_activity(audio, fps=fps, n_frames=n),
    )


def release_models() -> None:
    """Free the speech models (Whisper about 200 MB while it works, the aligner and the voice-activity model about
    100 MB together; the next analysis loads them again in about 0.5 s) and hand the freed heap back to the system,
    so that the rest of a one-off generation runs in less memory."""
    from faster_whisper.vad import get_vad_model

    for cached in (phonemes._whisper, phonemes._aligner, phonemes._phone_recogniser, get_vad_model):
        cached.cache_clear()
    gc.collect()
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).malloc_trim(0)  # glibc keeps freed heap otherwise
