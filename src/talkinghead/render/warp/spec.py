"""The warp renderer as a :class:`talkinghead.spec.Renderer`: every output frame is its reference frame with the
face warped to the target mesh and the mouth's inside drawn where the lips part."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator, Sequence

import numpy as np

from talkinghead.metrics.mouth import mouth_opening
from talkinghead.spec import MOUTHS, CheckpointRole, CommandRef, Performance, RendererSpec, Request, Scene
from talkinghead.threads import ahead

PAINT_BATCH = 8
"""Frames whose mouths are painted together: painting a mouth (the learned painter's inputs, network and blending),
interleaved with the warps as in a run, took 2.9-3.3 ms a frame one by one and takes 1.5-1.7 ms in eights (one core;
a minute from a photo at 512 px: 2.5-5 CPU-seconds less)."""


class FrameStages:
    """Output frame index -> its full frame, in two stages that two threads can run at once: :meth:`warp` (the
    reference frame it is timed to with the face warped to its target mesh) and :meth:`finish` (the ``mouth``
    (:data:`MOUTHS`) drawn where the lips part, the face pasted back); calling it runs both. With
    ``performance.keep_frames`` the reference frames are shown as they are. The learned painter's reference is the
    photo, or the dubbed video's frame (of those shown) with the widest mouth opening (its teeth); the painted
    interior takes its colours from the first frame shown. ``painter`` replaces the shipped painter."""

    def __init__(self, scene: Scene, performance: Performance, *, mouth: str, painter: str | None = None) -> None:
        from talkinghead.render.warp.renderer import Topology, WarpRenderer

        self.scene, self.targets, self.keep = scene, performance.targets, performance.keep_frames
        if self.keep:
            return
        if self.targets is None:
            raise ValueError("the performance has no target meshes to warp the face to")
        clip, meshes, src_idx = scene.clip, scene.meshes, scene.src_idx
        shown = np.unique(src_idx)
        ref = int(src_idx[0]) if mouth == "painted" else int(shown[np.argmax(mouth_opening(meshes[shown]))])
        self.topology = Topology.of(clip.frames[src_idx[0]], meshes[src_idx[0]], mouth=mouth,
                                    mouth_reference=(clip.frames[ref], meshes[ref]), painter=painter)
        self.renderer = WarpRenderer
        self.photo = WarpRenderer(clip.frames[0], meshes[0], self.topology) if scene.is_photo else None

    def warp(self, t: int) -> tuple:
        """Frame ``t``'s first stage: what :meth:`finish` takes."""
        k = int(self.scene.src_idx[t])
        if self.keep:
            return (k,)
        r = self.photo or self.renderer(self.scene.clip.frames[k], self.scene.meshes[k], self.topology)
        return (k, r, *r.warp(self.targets[t]))

    def finish(self, warped: tuple) -> np.ndarray:
        """The full frame from :meth:`warp`'s result."""
        return self.finish_all([warped])[0]

    def finish_all(self, warped: Sequence[tuple]) -> list[np.ndarray]:
        """:meth:`finish` of several of :meth:`warp`'s results, their mouths painted together (the learned painter
        runs its network once)."""
        frames = [self.scene.clip.frames[w[0]] for w in warped]
        if self.keep:
            return frames
        self.topology.mouth.paint_all([(crop, target, r.src) for _, r, crop, target in warped])
        return [r.compose(frame, crop) for frame, (_, r, crop, _) in zip(frames, warped)]

    def __call__(self, t: int) -> np.ndarray:
        return self.finish(self.warp(t))


class WarpFrames:
    """The reference frames with the face warped to the target meshes: warping runs a few frames ahead, in its own
    thread, of drawing the mouth and pasting back (the caller's thread, :data:`PAINT_BATCH` frames at a time; the
    encoder is a third), PyTorch (for the learned mouth) on one thread meanwhile."""

    def frames(self, request: Request, scene: Scene, performance: Performance) -> Iterator[np.ndarray]:
        painter = request.checkpoints.get("mouth_painter")
        mouth = request.mouth or MOUTHS[0]
        stages = FrameStages(scene, performance, mouth=mouth, painter=str(painter) if painter else None)
        with (_one_torch_thread() if mouth == "learned" else contextlib.nullcontext(),
              contextlib.closing(ahead((stages.warp(t) for t in range(scene.n_frames)), depth=2 * PAINT_BATCH))
              as warps):
            while group := list(itertools.islice(warps, PAINT_BATCH)):
                yield from stages.finish_all(group)


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    """PyTorch on one thread meanwhile: the warp, the painter and the encoder each keep a core busy, and a
    two-thread pool for the painter only waits on the others (a minute from a photo at 512 px: 23.5 s with two
    threads, 18.7 s with one). The painted mouth needs no PyTorch, which is then not even imported."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def prepare(request: Request) -> None:
    """Imports the renderer, and for the learned mouth its painter (PyTorch with it: about 1.5 s) and the shipped
    weights (unless the request gives its own)."""
    from talkinghead.render.warp.renderer import WarpRenderer  # noqa: F401  # imported here, not at the first frame

    if (request.mouth or MOUTHS[0]) == "learned":
        from talkinghead.render.warp.painter import MouthPainter

        if "mouth_painter" not in request.checkpoints:
            MouthPainter.default()


SPEC = RendererSpec(
    name="warp", summary="mesh-driven warp of the reference face; the mouth's inside by a small learned painter "
                         "(--mouth painted: drawn, no weights)", create=WarpFrames,
    checkpoints=(CheckpointRole("mouth_painter", "the warp renderer's learned mouth painter (.pt)"),),
    options=frozenset({"mouth"}), prepare=prepare,
    commands=(CommandRef("mouth-corpus", "mouth squares and lip points of every frame of real videos (for "
                                         "train-painter)", "talkinghead.train.painter:CORPUS_COMMAND"),
              CommandRef("train-painter", "train the warp renderer's learned mouth painter on a mouth corpus",
                         "talkinghead.train.painter:TRAIN_COMMAND")),
)
