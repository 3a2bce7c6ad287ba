"""Helpers shared by the tests (imported as ``from helpers import ...``; the fixtures live in conftest.py)."""

from __future__ import annotations

import socket
import threading
import time
import wave
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"
"""The real media the tests use (../shared/media beside the checkout)."""


@contextmanager
def serving(app: Any) -> Iterator[int]:
    """Serve an ASGI app with uvicorn (WebSockets by wsproto, as ``talkinghead serve``) on a free port of
    127.0.0.1 in a background thread; yields the port."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws="wsproto"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not srv.started and time.time() < deadline:
        time.sleep(0.1)
    assert srv.started
    try:
        yield port
    finally:
        srv.should_exit = True
        thread.join(10)


def write_wav(path: Path, samples: np.ndarray, rate: int, channels: int = 1) -> Path:
    """Write float samples in [-1, 1] ((N,) or (N, C)) as 16-bit PCM."""
    data = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(data.tobytes())
    return path


def assert_pasted_into_face(video: Path, photo: Path, size: int) -> int:
    """The first frame of a generated video differs from the photo (resized to ``size``) in the face, not in the
    corners; returns the video's frame count."""
    from talkinghead.io import read_image, read_video, resize_longer

    clip = read_video(video)
    diff = np.abs(clip.frames[0].astype(np.float32) - resize_longer(read_image(photo), size)).mean(-1)
    corners = np.concatenate([diff[:16, :16].ravel(), diff[-16:, -16:].ravel()])
    assert corners.mean() < 6 and diff.max() > 40
    return len(clip.frames)


def optimise(model: torch.nn.Module, loss: Callable[[], torch.Tensor], *, steps: int, lr: float) -> list[float]:
    """``steps`` Adam steps on ``loss()`` over the model's parameters; returns the loss before each step."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        value = loss()
        opt.zero_grad()
        value.backward()
        opt.step()
        losses.append(value.item())
    return losses


def mouth_follows_phonemes(clip_path: Path, coefficients: np.ndarray) -> tuple[float, float]:
    """How a motion model's (T, K) coefficients for a preprocessed clip's own speech follow it: (mean mouth
    opening on open vowels minus on p/b/m closures, in canonical units; correlation with the real opening)."""
    from talkinghead.audio.phonemes import PHONE_INDEX
    from talkinghead.data.clip import load_clip
    from talkinghead.face.expression import mouth_features
    from talkinghead.face.model import default_face_model

    clip, face_model = load_clip(clip_path), default_face_model()
    opening = mouth_features(face_model.expression_meshes(clip.neutral, coefficients))[:, 0]
    real = mouth_features(face_model.expression_meshes(clip.neutral, clip.expression))[:, 0]
    names = np.array(sorted(PHONE_INDEX, key=PHONE_INDEX.get))[clip.phone_ids]
    vowels, closures = np.isin(names, ["AA", "AE", "AH", "AO", "AW", "AY"]), np.isin(names, ["M", "B", "P"])
    assert vowels.any() and closures.any()
    return float(opening[vowels].mean() - opening[closures].mean()), float(np.corrcoef(opening, real)[0, 1])
