"""Reading videos (any fps, size, rotation metadata) and writing mp4 (h264 + aac)."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from talkinghead.constants import MAX_FRAME_BYTES, SAMPLE_RATE
from talkinghead.errors import InputError
from talkinghead.io.image import even_size
from talkinghead.io.paths import (
    declared_seconds,
    media_zero,
    open_stream,
    output_error,
    require_writable_output,
    temp_output,
    warn_if_truncated,
)

WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS}
"""Errors of the output's file system (full disk, quota, file too large, I/O, read-only) while writing."""


@dataclass
class VideoClip:
    """Decoded video frames.

    Attributes:
        frames: (T, H, W, 3) uint8 RGB, rotation metadata already applied.
        fps: frames per second of the source.
        path: the file they came from.
    """

    frames: np.ndarray
    fps: float
    path: str

    @property
    def duration(self) -> float:
        """Duration in seconds."""
        return len(self.frames) / self.fps


def _rotate(rgb: np.ndarray, degrees: int) -> np.ndarray:
    """Apply display-matrix rotation (counter-clockwise degrees, as FFmpeg reports it)."""
    turns = (int(round(degrees / 90.0)) % 4)
    return np.ascontiguousarray(np.rot90(rgb, k=turns)) if turns else rgb


def frame_indices(n_out: int, out_fps: float, n_src: int, src_fps: float) -> np.ndarray:
    """Source frame for each output frame: time-matched, playing back and forth when the source is shorter."""
    idx = np.floor(np.arange(n_out) * src_fps / out_fps + 1e-6).astype(np.int64)
    if n_src == 1:
        return np.zeros(n_out, np.int64)
    period = 2 * (n_src - 1)
    idx = idx % period
    return np.where(idx < n_src, idx, period - idx)


def frame_count(seconds: float, fps: float) -> int:
    """Frames (at least one) covering ``seconds`` at ``fps``."""
    return max(1, int(round(seconds * fps)))


def read_video(path: str | Path, *, max_side: int | None = None, max_frames: int | None = None) -> VideoClip:
    """Decode all frames of the first video stream.

    Args:
        path: a video file.
        max_side: if given, frames are downscaled so the longer side is at most this (even sizes).
        max_frames: stop after this many frames.

    Returns:
        VideoClip with frames (T, H, W, 3) uint8 RGB.
    """
    p = Path(path)
    container, stream = open_stream(p, "video")
    frames: list[np.ndarray] = []
    times: list[float | None] = []
    with container:
        zero = media_zero(container)
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        timestamps = float(stream.guessed_rate) if stream.guessed_rate else fps
        if 1.0 <= timestamps <= 240.0 and abs(timestamps - fps) > 0.01 * fps:
            fps = timestamps  # a variable-rate file: the rate of its timestamps, not its average (any max_frames)
        nbytes = 0
        try:
            for frame in container.decode(stream):
                rgb = _rotate(frame.to_ndarray(format="rgb24"), getattr(frame, "rotation", 0) or 0)
                h, w = rgb.shape[:2]
                size = even_size(w, h, max_side, upscale=False)
                if size != (w, h):
                    rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
                frames.append(rgb)
                times.append(frame.time)
                nbytes += rgb.nbytes
                if nbytes > MAX_FRAME_BYTES:
                    raise InputError(p, "video is too large to hold in memory (use a shorter clip or --size)")
                if max_frames is not None and len(frames) >= max_frames:
                    break
        except av.FFmpegError as exc:
            if not frames:
                raise InputError(p, f"video stream cannot be decoded ({type(exc).__name__})") from None
        declared = declared_seconds(container, stream) if max_frames is None else None
    if not frames:
        raise InputError(p, "video has no frames")
    if not 1.0 <= fps <= 240.0:
        raise InputError(p, f"video frame rate {fps:g} is not usable")
    frames, fps = constant_rate(frames, times, fps, zero)
    warn_if_truncated(p, "video", len(frames) / fps, declared)
    return VideoClip(frames=np.stack(frames), fps=fps, path=str(p))


def constant_rate(frames: list[np.ndarray], times: list[float | None], fps: float, zero: float = 0.0
                  ) -> tuple[list[np.ndarray], float]:
    """Frames on an even time grid from ``zero``, by their timestamps (seconds): a variable-rate video (a phone's;
    some frame steps twice as long) is resampled to its usual step, each grid time showing the frame on screen
    then, and a video stream that starts after ``zero`` (the file's first stream) is led by its first frame.
    Evenly spaced frames that start at ``zero`` come back unchanged (at ``fps``)."""
    if len(frames) < 2 or any(t is None for t in times):
        return frames, fps
    t = np.asarray(times, np.float64)
    steps = np.diff(t)
    step = float(np.percentile(steps, 10))  # the usual step; a variable-rate file shows some frames longer
    if step <= 0:
        return frames, fps
    even = bool(np.all(np.abs(steps - step) < 0.25 * step))
    if even and t[0] - zero < 0.5 * step:
        return frames, fps
    rate = fps if even else float(_fps_fraction(1.0 / step))
    n = int(round((t[-1] + step - zero) * rate))
    idx = np.clip(np.searchsorted(t, zero + np.arange(n) / rate + 1e-6, side="right") - 1, 0, len(frames) - 1)
    return [frames[i] for i in idx], rate


def _fps_fraction(fps: float) -> Fraction:
    return Fraction(fps).limit_denominator(1001)


def write_video(
    path: str | Path,
    frames: Iterable[np.ndarray],
    *,
    fps: float,
    audio: np.ndarray | None = None,
    sample_rate: int = SAMPLE_RATE,
    crf: int = 20,
    preset: str = "veryfast",
) -> Path:
    """Encode frames (and audio) to an mp4 file with h264 (yuv420p) and aac.

    Frame ``i`` is presented at ``i / fps`` seconds and the audio starts at 0, so audio and
    video are aligned exactly. The file is written to a temporary name in the same directory and
    renamed at the end; on any error the temporary file is removed and nothing is left behind.

    Args:
        path: output .mp4 path.
        frames: iterable of (H, W, 3) uint8 RGB frames, all the same even size.
        fps: frame rate.
        audio: (N,) float32 mono samples in [-1, 1], or None for a silent video.
        sample_rate: sample rate of ``audio`` in Hz.
        crf, preset: libx264 quality and speed settings.

    Returns:
        The output path.
    """
    out = require_writable_output(path)
    # a hidden sibling, created by the encoder with the usual permissions (mkstemp would make it private)
    tmp_name = str(temp_output(out))
    try:
        _encode(tmp_name, frames, fps=fps, audio=audio, sample_rate=sample_rate, crf=crf, preset=preset)
        os.replace(tmp_name, out)
    except OSError as exc:  # PyAV's write errors are OSErrors too
        _remove(tmp_name)
        if exc.errno in WRITE_ERRORS:
            raise output_error(out, exc) from None
        raise
    except BaseException:
        _remove(tmp_name)
        raise
    return out


def _remove(name: str) -> None:
    if os.path.exists(name):
        os.unlink(name)


def _encode(
    filename: str,
    frames: Iterable[np.ndarray],
    *,
    fps: float,
    audio: np.ndarray | None,
    sample_rate: int,
    crf: int,
    preset: str,
) -> None:
    rate = _fps_fraction(fps)
    with av.open(filename, mode="w", format="mp4") as container:
        vstream = None
        astream = None
        if audio is not None:
            astream = container.add_stream("aac", rate=sample_rate, layout="mono")
        n = 0
        for frame in frames:
            if vstream is None:
                h, w = frame.shape[:2]
                if h % 2 or w % 2:
                    raise ValueError(f"frame size {w}x{h} must be even for yuv420p")
                vstream = container.add_stream("libx264", rate=rate)
                vstream.width, vstream.height, vstream.pix_fmt = w, h, "yuv420p"
                vstream.time_base = 1 / rate
                vstream.options = {"crf": str(crf), "preset": preset}
            # OpenCV's RGB -> I420 (BT.601, limited range, as swscale's default) is about 1 s a minute of 512 px
            # video faster than handing PyAV RGB to convert
            vf = av.VideoFrame.from_ndarray(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2YUV_I420),
                                            format="yuv420p")
            vf.pts = n
            for packet in vstream.encode(vf):
                container.mux(packet)
            n += 1
        if vstream is None:
            raise ValueError("no frames to write")
        for packet in vstream.encode(None):
            container.mux(packet)
        if astream is not None and audio is not None:
            _encode_audio(container, astream, audio, sample_rate)


def _encode_audio(container: av.container.OutputContainer, stream: av.audio.stream.AudioStream,
                  audio: np.ndarray, sample_rate: int) -> None:
    samples = (np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.int16)
    chunk = 1024 * 16
    for start in range(0, samples.size, chunk):
        af = av.AudioFrame.from_ndarray(samples[None, start:start + chunk], format="s16", layout="mono")
        af.sample_rate = sample_rate
        af.pts = start
        for packet in stream.encode(af):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
