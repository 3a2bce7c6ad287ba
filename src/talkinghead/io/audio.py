"""Reading audio from any container PyAV/FFmpeg can decode (wav, mp3, m4a, flac, mp4's track, ...)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from talkinghead.constants import MAX_AUDIO_SECONDS, SAMPLE_RATE, SILENCE_PEAK
from talkinghead.errors import InputError
from talkinghead.io.paths import declared_seconds, media_zero, open_stream, warn_if_truncated


def load_audio(path: str | Path, *, allow_silent: bool = False) -> np.ndarray:
    """Decode the first audio stream of ``path``, downmix to mono and resample.

    Args:
        path: any file with an audio stream.
        allow_silent: accept audio whose peak is below :data:`SILENCE_PEAK`.

    Returns:
        audio: (N,) float32 mono samples in [-1, 1] at :data:`SAMPLE_RATE` Hz.

    Raises:
        InputError: missing/unreadable file, no audio stream, empty, silent or too long audio.
    """
    p = Path(path)
    container, stream = open_stream(p, "audio")
    chunks: list[np.ndarray] = []
    with container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        limit = int(MAX_AUDIO_SECONDS * SAMPLE_RATE)
        total = 0
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
                    total += chunks[-1].size
                if total > limit:
                    raise InputError(p, f"audio is too long (over {MAX_AUDIO_SECONDS:.0f} s)")
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
        except av.FFmpegError as exc:
            if not chunks:
                raise InputError(p, f"audio stream cannot be decoded ({type(exc).__name__})") from None
        declared = declared_seconds(container, stream)
        lead = float(stream.start_time * stream.time_base) - media_zero(container) if stream.start_time else 0.0
    audio = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    if lead > 0.5 / SAMPLE_RATE and audio.size:  # the sound starts after the file's video: keep that gap
        audio = np.concatenate([np.zeros(int(round(lead * SAMPLE_RATE)), np.float32), audio])
    warn_if_truncated(p, "audio", audio.size / SAMPLE_RATE, declared)
    if audio.size < SAMPLE_RATE // 10:
        raise InputError(p, "audio is empty (shorter than 0.1 s)")
    if not np.all(np.isfinite(audio)):
        raise InputError(p, "audio contains invalid (NaN/inf) samples")
    if not allow_silent and float(np.max(np.abs(audio))) < SILENCE_PEAK:
        raise InputError(p, "audio is silent")
    return np.clip(audio, -1.0, 1.0)
