"""Voice activity (Silero VAD, the ONNX model bundled in faster-whisper) and loudness per video frame."""

from __future__ import annotations

import numpy as np

from talkinghead.constants import SAMPLE_RATE


def voice_activity(audio: np.ndarray, *, fps: float, n_frames: int) -> np.ndarray:
    """Which video frames contain speech.

    Args:
        audio: (N,) float32 at :data:`SAMPLE_RATE`.

    Returns:
        (n_frames,) bool.
    """
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    options = VadOptions(min_silence_duration_ms=150, speech_pad_ms=60, min_speech_duration_ms=80)
    active = np.zeros(n_frames, bool)
    for seg in get_speech_timestamps(audio, options, sampling_rate=SAMPLE_RATE):
        a = int(np.floor(seg["start"] / SAMPLE_RATE * fps))
        b = int(np.ceil(seg["end"] / SAMPLE_RATE * fps))
        active[max(a, 0):min(b, n_frames)] = True
    return active


def loudness(audio: np.ndarray, *, fps: float, n_frames: int) -> np.ndarray:
    """RMS level of each video frame's audio (a 40 ms window centred on the frame).

    Returns:
        (n_frames,) float32 in dBFS (floor -100).
    """
    half = int(0.02 * SAMPLE_RATE)
    centres = ((np.arange(n_frames) + 0.5) / fps * SAMPLE_RATE).astype(int)
    csum = np.concatenate([[0.0], np.cumsum(audio.astype(np.float64) ** 2)])
    lo = np.clip(centres - half, 0, audio.size)
    hi = np.clip(centres + half, 0, audio.size)
    power = (csum[hi] - csum[lo]) / np.maximum(hi - lo, 1)
    return (10 * np.log10(np.maximum(power, 1e-10))).astype(np.float32)
