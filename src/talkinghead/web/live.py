"""Live streaming over a WebSocket: speech in as it is spoken, frames out as they are made
(:meth:`talkinghead.streaming.Generator.stream`, the default engine).

The protocol of ``ws://HOST:PORT/api/live`` (one stream per connection):

1. The client sends one text message, a JSON object: ``face`` (the photo's file bytes, base64), and optionally
   ``sample_rate`` (Hz of the audio it will send, default 16000), ``size`` (longer side of the frames, default
   256), ``format`` ("jpeg" or "webp"), ``quality`` (1..100, default 80) and the generator's ``fps``, ``seed``,
   ``still``, ``expression_scale``, ``blink``, ``face_index`` and ``lookahead``.
2. The server meshes the face and answers ``{"type": "ready", "fps": ..., "width": ..., "height": ...}``.
3. The client sends the speech as binary messages of little-endian 16-bit mono PCM at ``sample_rate``, any length,
   as it comes; then the text message ``{"type": "end"}``.
4. The server sends every frame as soon as it is made: a binary message of 4 bytes (the frame index k,
   little-endian unsigned) followed by the image. Frame k shows the speech from k/fps to (k+1)/fps seconds. After
   the end, once the last frame is sent: ``{"type": "done", "frames": n}``, and the server closes.

Anything wrong (a bad first message, no face in the photo, more streams than the server allows) is answered
``{"type": "error", "message": "..."}`` (one line, as the CLI would print it) and the connection is closed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import queue
import struct
import threading
from collections.abc import Iterator
from typing import Any

import cv2
import numpy as np
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from talkinghead.errors import TalkingHeadError
from talkinghead.streaming import Generator

MAX_STREAMS = 2
"""Streams served at once by default (each takes most of a CPU core at 256 px)."""
MAX_FACE_BYTES = 20 * 1024 * 1024
"""Largest accepted face photo."""
FORMATS = {"jpeg": ".jpg", "webp": ".webp"}
GENERATOR_OPTIONS = ("fps", "seed", "still", "expression_scale", "blink", "face_index", "lookahead")
TRY_AGAIN_LATER = 1013
"""WebSocket close code: the server is busy."""


class _Streams:
    """Counts the live streams against the limit."""

    def __init__(self, limit: int) -> None:
        self.limit, self.count, self.lock = limit, 0, threading.Lock()

    def enter(self) -> bool:
        with self.lock:
            if self.count >= self.limit:
                return False
            self.count += 1
            return True

    def leave(self) -> None:
        with self.lock:
            self.count -= 1


def add_live(app: FastAPI, *, max_streams: int = MAX_STREAMS) -> None:
    """Serve ``/api/live`` on ``app``: at most ``max_streams`` streams at once."""
    streams = _Streams(max_streams)

    @app.websocket("/api/live")
    async def live(ws: WebSocket) -> None:
        await ws.accept()
        if not streams.enter():
            await _refuse(ws, f"the server is already streaming to {max_streams} viewer(s); try again later",
                          TRY_AGAIN_LATER)
            return
        try:
            await _serve_stream(ws)
        except (WebSocketDisconnect, RuntimeError):  # the client went away; sending to it fails
            pass
        finally:
            streams.leave()


async def _refuse(ws: WebSocket, message: str, code: int = 1008) -> None:
    await ws.send_json({"type": "error", "message": message})
    await ws.close(code)


async def _serve_stream(ws: WebSocket) -> None:
    first = await ws.receive()
    if first["type"] == "websocket.disconnect":
        return
    try:
        settings = _settings(first.get("text") or "")
        generator = Generator(**settings["generator"])
        face = await run_in_threadpool(generator.prepare, settings["face"])
    except (TalkingHeadError, ValueError, TypeError) as exc:
        await _refuse(ws, str(exc))
        return
    h, w = face.frame.shape[:2]
    await ws.send_json({"type": "ready", "fps": generator.fps, "width": w, "height": h})
    loop = asyncio.get_running_loop()
    audio: queue.Queue[np.ndarray | None] = queue.Queue()
    frames: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()
    stop = threading.Event()
    suffix, quality = settings["suffix"], settings["quality"]

    def chunks() -> Iterator[np.ndarray]:
        while not stop.is_set():
            chunk = audio.get()
            if chunk is None:
                return
            yield chunk

    def make() -> None:  # in a worker thread: the generator's frames, encoded, handed to the event loop
        try:
            for k, frame in enumerate(generator.stream(face, chunks(), sample_rate=settings["sample_rate"])):
                if stop.is_set():
                    return
                ok, image = cv2.imencode(suffix, np.ascontiguousarray(frame[:, :, ::-1]),
                                         [cv2.IMWRITE_JPEG_QUALITY if suffix == ".jpg" else cv2.IMWRITE_WEBP_QUALITY,
                                          quality])
                loop.call_soon_threadsafe(frames.put_nowait, struct.pack("<I", k) + image.tobytes())
            loop.call_soon_threadsafe(frames.put_nowait, None)
        except BaseException as exc:  # handed to the event loop, which reports it to the client
            loop.call_soon_threadsafe(frames.put_nowait, exc)

    worker = threading.Thread(target=make, name="talkinghead-live", daemon=True)
    worker.start()
    receiving = asyncio.create_task(_receive(ws, audio))
    sent = 0
    try:
        while True:
            item = await frames.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                message = str(item) if isinstance(item, TalkingHeadError) else f"stream failed: {item}"
                await _refuse(ws, message, 1011)
                return
            await ws.send_bytes(item)
            sent += 1
        await ws.send_json({"type": "done", "frames": sent})
        await ws.close()
    finally:
        stop.set()
        audio.put(None)
        receiving.cancel()
        await run_in_threadpool(worker.join)


async def _receive(ws: WebSocket, audio: queue.Queue[np.ndarray | None]) -> None:
    """The client's audio messages onto ``audio`` (int16 samples); None at its end (or when it goes away)."""
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is not None:
                data = message["bytes"]
                audio.put(np.frombuffer(data[:len(data) // 2 * 2], "<i2").astype(np.int16))
            elif message.get("text") is not None and _is_end(message["text"]):
                return
    finally:
        audio.put(None)


def _is_end(text: str) -> bool:
    try:
        return json.loads(text).get("type") == "end"
    except (ValueError, AttributeError):
        return False


def _settings(text: str) -> dict[str, Any]:
    """The first message's settings: the face as an RGB array, the generator's options, the audio's rate and the
    frame format; a ValueError (one line) when it is not usable."""
    try:
        first = json.loads(text)
    except ValueError:
        raise ValueError("the first message must be a JSON object with the face") from None
    if not isinstance(first, dict) or not isinstance(first.get("face"), str):
        raise ValueError("the first message must be a JSON object with the face (base64 of the photo's file)")
    try:
        data = base64.b64decode(first["face"], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("face: not valid base64") from None
    if len(data) > MAX_FACE_BYTES:
        raise ValueError(f"face: larger than {MAX_FACE_BYTES // (1024 * 1024)} MB")
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError("face: not an image that can be read (JPEG, PNG, WebP, BMP)")
    fmt = first.get("format", "jpeg")
    if fmt not in FORMATS:
        raise ValueError(f"format must be jpeg or webp, not {fmt!r}")
    quality, rate = first.get("quality", 80), first.get("sample_rate", 16000)
    if not isinstance(quality, int) or not 1 <= quality <= 100:
        raise ValueError(f"quality must be a whole number from 1 to 100, not {quality!r}")
    if not isinstance(rate, int):
        raise ValueError(f"sample_rate must be a whole number of Hz, not {rate!r}")
    unknown = set(first) - {"face", "format", "quality", "sample_rate", "size", *GENERATOR_OPTIONS}
    if unknown:
        raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
    options = {k: first[k] for k in GENERATOR_OPTIONS if k in first}
    return {"face": np.ascontiguousarray(bgr[:, :, ::-1]), "suffix": FORMATS[fmt], "quality": quality,
            "sample_rate": rate, "generator": {"size": first.get("size", 256), **options}}
