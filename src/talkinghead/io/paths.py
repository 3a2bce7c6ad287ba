"""Checks on input and output paths, done before any heavy work."""

from __future__ import annotations

import os
from pathlib import Path

import av

from talkinghead.errors import InputError


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


def require_writable_output(path: str | Path) -> Path:
    """Return ``path`` as a Path if a file can be created there, else raise InputError."""
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if p.is_dir():
        raise InputError(p, "output path is a directory")
    if not parent.is_dir():
        raise InputError(p, f"output directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(p, f"output directory {parent} is not writable")
    if p.exists() and not os.access(p, os.W_OK):
        raise InputError(p, "output file exists and is not writable")
    return p


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
