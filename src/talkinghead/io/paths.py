"""Checks on input and output paths, done before any heavy work."""

from __future__ import annotations

import errno
import os
import secrets
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path

import av

from talkinghead.errors import InputError, InputWarning


def require_file(path: str | Path) -> Path:
    """Return ``path`` as a Path if it is a readable, non-empty regular file, else raise InputError."""
    p = Path(path)
    if not p.exists():
        raise InputError(p, "file not found")
    if not p.is_file():
        raise InputError(p, "not a regular file")
    if not os.access(p, os.R_OK):
        raise InputError(p, "file is not readable (permission denied)")
    if p.stat().st_size == 0:
        raise InputError(p, "file is empty (0 bytes)")
    return p


def temp_output(path: Path) -> Path:
    """A hidden, unique sibling of an output file to write before renaming it into place; its name is short
    whatever the output's, so any output name the file system allows can be written."""
    return path.parent / f".talkinghead-{secrets.token_hex(4)}.partial{path.suffix}"


def require_writable_output(path: str | Path, *, inputs: Mapping[str, str | Path | None] | None = None) -> Path:
    """Return ``path`` as a Path if a file can be written there and it is none of ``inputs`` (option name ->
    path), else raise InputError naming the output. Writing a file there is tried (and undone), so a read-only,
    virtual (/proc, /sys) or full location fails now, before any work."""
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(p, f"output directory {parent} does not exist")
    name_max = os.pathconf(parent, "PC_NAME_MAX") if hasattr(os, "pathconf") else 255
    if (n := len(os.fsencode(p.name))) > name_max:
        raise InputError(p, f"output file name is too long ({n} bytes; this file system allows {name_max})")
    if p.is_dir():
        raise InputError(p, "output path is a directory")
    for option, other in (inputs or {}).items():
        if other is not None and p.exists() and Path(other).exists() and os.path.samefile(p, other):
            raise InputError(p, f"output is the same file as {option}: choose another output name")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(p, f"output directory {parent} is not writable")
    if p.exists() and not os.access(p, os.W_OK):
        raise InputError(p, "output file exists and is not writable")
    probe = temp_output(p)
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, b"\0" * 4096)  # a full disk fails here, not after the work
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise InputError(p, f"output cannot be written there ({exc.strerror or exc})") from None
    return p


def output_error(path: Path, exc: OSError) -> InputError:
    """The one-line error for an output that failed while it was written (full disk, quota, I/O)."""
    reason = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded"}.get(
        exc.errno or 0, exc.strerror or str(exc))
    return InputError(path, f"output could not be written ({reason}); nothing was left there")


def require_checkpoint(path: str | Path) -> Path:
    """Return ``path`` if it is a readable file in PyTorch's checkpoint format (a zip archive), else raise
    InputError (a photo or a text file given as a checkpoint)."""
    p = require_file(path)
    if not zipfile.is_zipfile(p):
        raise InputError(p, "not a model checkpoint (expected a .pt file written by talkinghead)")
    return p


def image_header(path: Path) -> tuple[str, int, int, int] | None:
    """(format, width, height, frames) from an image file's header (Pillow, nothing decoded), or None when the file
    is no image Pillow knows. Raises Pillow's DecompressionBombError for a header of over twice its pixel limit."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                return image.format or "image", image.width, image.height, getattr(image, "n_frames", 1)
    except (UnidentifiedImageError, OSError, ValueError):
        return None


def require_video(path: str | Path, *, option: str) -> Path:
    """Return ``path`` if it is a video (an option such as ``--style`` reads a face moving), else raise InputError:
    a still image, or a file without a video stream."""
    from PIL import Image

    p = require_file(path)
    try:
        header = image_header(p)
    except Image.DecompressionBombError:
        header = None
    if header is not None and header[3] == 1:
        raise InputError(p, f"is a still image ({header[0]}): {option} needs a video of a face")
    if "video" not in media_streams(p):
        raise InputError(p, f"has no video stream: {option} needs a video of a face")
    return p


def media_streams(path: str | Path) -> set[str]:
    """The kinds of stream ("video", "audio") of a media file, {} for anything FFmpeg cannot read as one or reads
    only as a still image (its image demuxers take any file named .jpg)."""
    try:
        with _open(path) as container:
            if container.format.name == "image2" or container.format.name.endswith("_pipe"):
                return set()
            return {s.type for s in container.streams if s.type in ("video", "audio")}
    except InputError:
        return set()


def _open(path: str | Path) -> av.container.InputContainer:
    """Open a media file; InputError when it is missing, empty or unreadable."""
    p = require_file(path)
    try:
        return av.open(str(p))
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise InputError(p, f"not a readable media file ({type(exc).__name__})") from None


def open_stream(path: str | Path, kind: str) -> tuple[av.container.InputContainer, av.stream.Stream]:
    """Open a media file and its first ``kind`` ("audio" or "video") stream; close the container when done.

    Raises:
        InputError: missing, empty or unreadable file, or no such stream.
    """
    container = _open(path)
    streams = [s for s in container.streams if s.type == kind]
    if not streams:
        container.close()
        raise InputError(path, f"has no {kind} stream")
    return container, streams[0]


def has_stream(path: str | Path, kind: str) -> bool:
    """Whether a media file has a ``kind`` ("audio" or "video") stream (InputError when it is unreadable)."""
    with _open(path) as container:
        return any(s.type == kind for s in container.streams)


def declared_seconds(container: av.container.InputContainer, stream: av.stream.Stream) -> float | None:
    """The duration a stream (else its container) declares, in seconds; None when it declares none. FFmpeg
    estimates a WAV file's duration from its size, so a WAV file's own header is read for it."""
    if container.format.name == "wav" and (wav := _wav_seconds(container.name)) is not None:
        return wav
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return container.duration / av.time_base if container.duration else None


def warn_if_truncated(path: str | Path, kind: str, decoded: float, declared: float | None) -> None:
    """An :class:`InputWarning` when clearly less of a stream decoded than its file declares (a truncated or
    damaged file): the result is then shorter than the user may expect."""
    if declared is not None and decoded < declared - max(0.5, 0.05 * declared):
        warnings.warn(f"{path}: only {decoded:.2f} s of its {declared:.2f} s of {kind} could be decoded (the file "
                      "looks truncated); the result covers what was decoded", InputWarning, stacklevel=3)


def _wav_seconds(path: str) -> float | None:
    """Seconds of sound a RIFF/WAVE header declares (data chunk size / byte rate), or None."""
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    fmt, data = head.find(b"fmt "), head.find(b"data")
    if head[:4] != b"RIFF" or fmt < 0 or data < 0:
        return None
    byte_rate = int.from_bytes(head[fmt + 16:fmt + 20], "little")
    size = int.from_bytes(head[data + 4:data + 8], "little")
    return size / byte_rate if byte_rate and size < 0xFFFFFFF0 else None  # streamed WAVs declare 0xFFFFFFFF


def media_zero(container: av.container.InputContainer) -> float:
    """The time (seconds) the first of a file's audio and video streams starts at: time 0 of what is read from
    it (a stream that starts later, as a phone's audio often does, is placed after that gap)."""
    starts = [float(s.start_time * s.time_base) for s in container.streams
              if s.type in ("audio", "video") and s.start_time is not None and s.time_base is not None]
    return min(starts, default=0.0)
