"""The live WebSocket stream (``/api/live``) of a real server: speech in, frames out, as documented."""

from __future__ import annotations

import base64
import json
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers import serving
from talkinghead.audio.features import frame_count
from talkinghead.constants import SAMPLE_RATE
from talkinghead.io import load_audio
from talkinghead.streaming import Generator

websocket = pytest.importorskip("websocket")
CHUNK = 320
"""Samples per audio message (20 ms)."""


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server that allows one stream at a time."""
    from talkinghead.web.app import create_app

    with serving(create_app(tmp_path_factory.mktemp("live"), max_streams=1)) as port:
        yield f"ws://127.0.0.1:{port}/api/live"


def _open(url: str, face: Path, **settings: object) -> tuple[object, dict]:
    ws = websocket.create_connection(url, timeout=120)
    ws.send(json.dumps({"face": base64.b64encode(face.read_bytes()).decode(), **settings}))
    return ws, json.loads(ws.recv())


def _open_when_free(url: str, face: Path, **settings: object) -> tuple[object, dict]:
    """``_open`` once the server has noticed that the last viewer went away (it is refused until then)."""
    deadline = time.time() + 10
    while True:
        ws, answer = _open(url, face, **settings)
        if "already streaming" not in answer.get("message", "") or time.time() > deadline:
            return ws, answer
        ws.close()
        time.sleep(0.2)


def test_a_stream_gives_every_frame_of_the_speech_as_the_generator_makes_it(url: str, media: Path) -> None:
    face = media / "faces" / "liveportrait_s5.jpg"
    pcm = (np.clip(load_audio(media / "speech" / "videoretalking_1.wav")[:3 * SAMPLE_RATE], -1, 1) * 32767
           ).astype("<i2")
    ws, ready = _open_when_free(url, face, size=128, quality=95)
    assert ready["type"] == "ready" and ready["fps"] == 25.0 and max(ready["width"], ready["height"]) == 128
    for i in range(0, pcm.size, CHUNK):
        ws.send_binary(pcm[i:i + CHUNK].tobytes())
    ws.send(json.dumps({"type": "end"}))
    indices, images = [], []
    while True:
        message = ws.recv()
        if isinstance(message, str):
            done = json.loads(message)
            break
        indices.append(struct.unpack("<I", message[:4])[0])
        images.append(cv2.imdecode(np.frombuffer(message[4:], np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1])
    ws.close()
    n = frame_count(pcm.size, 25.0)
    assert done == {"type": "done", "frames": n} and indices == list(range(n))
    assert images[0].shape == (ready["height"], ready["width"], 3)
    made = np.stack(list(Generator(size=128).stream(face, (pcm[i:i + CHUNK] for i in range(0, pcm.size, CHUNK)))))
    assert np.abs(np.stack(images).astype(float) - made).mean() < 2.0  # the same frames, through JPEG at 95


def test_streams_beyond_the_limit_are_refused_until_one_ends(url: str, media: Path) -> None:
    face = media / "faces" / "liveportrait_s5.jpg"
    first, ready = _open(url, face, size=128)
    assert ready["type"] == "ready"
    second, refused = _open(url, face, size=128)
    assert refused["type"] == "error" and "already streaming to 1 viewer" in refused["message"]
    second.close()
    first.close()
    third, answer = _open_when_free(url, face, size=128)
    third.close()
    assert answer["type"] == "ready"


def test_a_bad_first_message_gets_a_one_line_error(url: str, tmp_path: Path, media: Path) -> None:
    not_a_face = tmp_path / "notes.txt"
    not_a_face.write_text("hello")
    ws, answer = _open_when_free(url, not_a_face)
    assert answer == {"type": "error", "message": "face: not an image that can be read (JPEG, PNG, WebP, BMP)"}
    ws.close()
    ws, answer = _open_when_free(url, media / "faces" / "liveportrait_s5.jpg", colour="blue")
    assert answer == {"type": "error", "message": "unknown settings: colour"}
    ws.close()
