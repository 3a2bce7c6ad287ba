"""Streaming generation: frames come out while the speech is still arriving (voice agents, live input).

    from talkinghead.streaming import Generator

    gen = Generator(size=256)
    face = gen.prepare("face.jpg")            # mesh the photo once, before the audio starts
    for frame in gen.stream(face, chunks):    # chunks: float32 mono arrays as they arrive
        show(frame)                           # (H, W, 3) uint8 RGB; the k-th shows time k/fps .. (k+1)/fps
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talkinghead.audio.vad import voice_activity
from talkinghead.constants import DEFAULT_FPS, DEFAULT_SIZE, MIN_IMAGE_SIDE, SAMPLE_RATE
from talkinghead.errors import TalkingHeadError
from talkinghead.face.mesh import mesh_image
from talkinghead.face.motion import FaceMotion
from talkinghead.face.pose import pose_free
from talkinghead.io import read_image, resize_longer
from talkinghead.io.paths import require_file
from talkinghead.motion.viseme.config import VisemeConfig
from talkinghead.motion.viseme.stream import VisemeStream
from talkinghead.registry import available_methods, get_method
from talkinghead.render.warp.renderer import WarpRenderer, target_meshes
from talkinghead.spec import check_ranges


def stream_methods() -> tuple[str, ...]:
    """The registered methods whose spec says they stream (the others read the whole utterance: their decoders
    attend over it, or over windows centred on each frame; they generate files)."""
    return tuple(m for m in available_methods() if get_method(m).streams)


@dataclass
class StreamFace:
    """A face photo made ready to stream (see :meth:`Generator.prepare`).

    Attributes:
        frame: (H, W, 3) uint8 RGB photo at the generator's size.
        mesh: (478, 3) its pixel mesh.
        reference: (478, 3) the mesh without its pose (canonical space).
        renderer: the warp renderer of the photo.
    """

    frame: np.ndarray
    mesh: np.ndarray
    reference: np.ndarray
    renderer: WarpRenderer


class Generator:
    """Talking-head frames from a face photo and speech that arrives in chunks (the default engine).

    Args:
        method: motion method; one of :func:`stream_methods` (this engine runs the default engine's streaming
            viseme model).
        fps: output frame rate.
        size: longer side of the frames in pixels.
        seed: seed of blinks and head motion.
        still: no head motion.
        expression_scale: mouth motion amplitude (1 = calibrated).
        blink: eye blinks.
        face_index: which face when the photo has several, counting from the largest.
        lookahead: seconds of audio past a frame before it is made: the first frame comes this much after
            the audio starts (plus one frame and the compute time); shorter is snappier, longer recognises
            phones more reliably. The calibration's lag (0.06 s: the mouth shows each sound that much early) is
            part of it. On ../shared/media/talking the stream's mouth-opening correlation with the real clips was
            0.35 at 0.15 s (``benchmarks/streaming.py``; 0.33 when the lag was added to the lookahead).
    """

    def __init__(self, *, method: str = "viseme", fps: float = DEFAULT_FPS, size: int = DEFAULT_SIZE, seed: int = 0,
                 still: bool = False, expression_scale: float = 1.0, blink: bool = True, face_index: int = 0,
                 lookahead: float = 0.15) -> None:
        if not get_method(method).streams:
            raise TalkingHeadError(f"{method!r} cannot stream: streaming works with {', '.join(stream_methods())} "
                                   "(the other methods read the whole utterance; use generate() for them)")
        check_ranges(fps=fps, size=size, expression_scale=expression_scale, seed=seed, face_index=face_index)
        if not 0.0 <= lookahead <= 1.0:
            raise TalkingHeadError(f"lookahead must be between 0 and 1 s, not {lookahead:g}")
        self.fps, self.size, self.face_index, self.lookahead = fps, size, face_index, lookahead
        self.config = VisemeConfig(expression_scale=expression_scale, blink=blink, head_motion=not still, seed=seed)

    def prepare(self, face: str | Path | np.ndarray | StreamFace) -> StreamFace:
        """Mesh a face photo (a file, or an (H, W, 3) uint8 RGB array) once, to stream it any number of times;
        also loads the voice-activity model, so that the first stream's first frame is not late."""
        if isinstance(face, StreamFace):
            return face
        voice_activity(np.zeros(SAMPLE_RATE // 2, np.float32), fps=self.fps, n_frames=1)
        if isinstance(face, np.ndarray):
            if face.ndim != 3 or face.shape[2] != 3 or face.dtype != np.uint8:
                raise TalkingHeadError(f"a face array must be (H, W, 3) uint8 RGB, not {face.shape} {face.dtype}")
            if min(face.shape[:2]) < MIN_IMAGE_SIDE:
                raise TalkingHeadError(f"a face array must be at least {MIN_IMAGE_SIDE} pixels on each side, not "
                                       f"{face.shape[1]}x{face.shape[0]}")
            image, source = face, "face array"
        else:
            image, source = read_image(require_file(face)), str(face)
        frame = resize_longer(image, self.size)
        mesh, _ = mesh_image(frame, face_index=self.face_index, source=source)
        return StreamFace(frame=frame, mesh=mesh, reference=pose_free(mesh), renderer=WarpRenderer(frame, mesh))

    def stream(self, face: str | Path | np.ndarray | StreamFace, audio_chunks: Iterable[np.ndarray], *,
               sample_rate: int = SAMPLE_RATE) -> Iterator[np.ndarray]:
        """Frames of the face speaking ``audio_chunks``, each yielded as soon as enough audio has arrived.

        Args:
            face: a photo (file or array) or a :class:`StreamFace` from :meth:`prepare` (no meshing delay).
            audio_chunks: speech as it arrives: (N,) or (N, channels) arrays, float in [-1, 1] or int16,
                of any length (even 0).
            sample_rate: rate of the chunks in Hz (resampled to 16 kHz as they come).

        Yields:
            (H, W, 3) uint8 RGB frames at ``fps``, the k-th showing [k/fps, (k+1)/fps) of the speech; when the
            chunks end, the rest, so that the frames cover all the audio. Silence gives an idle face.
        """
        if not 4000 <= sample_rate <= 384_000:
            raise TalkingHeadError(f"audio stream: sample rate must be between 4000 and 384000 Hz, not {sample_rate}")
        prepared = self.prepare(face)
        motion = VisemeStream(prepared.reference, fps=self.fps, config=self.config, lookahead=self.lookahead)
        resampler = None
        if sample_rate != SAMPLE_RATE:
            import soxr

            resampler = soxr.ResampleStream(sample_rate, SAMPLE_RATE, 1, dtype="float32")
        for i, chunk in enumerate(audio_chunks):
            audio = _mono(chunk, i)
            if resampler is not None:
                audio = resampler.resample_chunk(audio)
            yield from _render(prepared, motion.push(audio))
        if resampler is not None:
            yield from _render(prepared, motion.push(resampler.resample_chunk(np.zeros(0, np.float32), last=True)))
        if motion.samples == 0:
            raise TalkingHeadError("audio stream: it ended before any audio arrived")
        yield from _render(prepared, motion.close())


def _mono(chunk: np.ndarray, index: int) -> np.ndarray:
    """One chunk as (N,) float32 in [-1, 1]; a one-line error naming the chunk when it cannot be."""
    x = np.asarray(chunk)
    if x.dtype == np.int16:
        x = x / 32768.0
    elif not np.issubdtype(x.dtype, np.floating):
        raise TalkingHeadError(f"audio chunk {index}: samples must be float or int16, not {x.dtype}")
    if x.ndim == 2:
        x = x.mean(1)
    if x.ndim != 1:
        raise TalkingHeadError(f"audio chunk {index}: expected (N,) or (N, channels) samples, not shape {x.shape}")
    if not np.isfinite(x).all():
        raise TalkingHeadError(f"audio chunk {index}: has NaN or infinite samples")
    return x.astype(np.float32, copy=False)


def _render(face: StreamFace, motion: FaceMotion) -> Iterator[np.ndarray]:
    """The photo warped to each frame of ``motion``, pasted back into the full frame."""
    if len(motion) == 0:
        return
    for mesh in target_meshes(face.mesh, motion):
        yield face.renderer.compose(face.frame, face.renderer.render(mesh))
