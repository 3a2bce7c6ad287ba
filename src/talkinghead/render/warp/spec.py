"""The warp renderer as a :class:`talkinghead.spec.Renderer`: every output frame is its reference frame with the
face warped to the target mesh and the mouth's inside drawn where the lips part."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from talkinghead.metrics.mouth import mouth_opening
from talkinghead.spec import MOUTHS, CheckpointRole, CommandRef, Performance, RendererSpec, Request, Scene


def frame_source(scene: Scene, performance: Performance, *, mouth: str,
                 painter: str | None = None) -> Callable[[int], np.ndarray]:
    """Output frame index -> its full frame: the reference frame it is timed to, as it is
    (``performance.keep_frames``) or with the face warped to its target mesh and the ``mouth`` (:data:`MOUTHS`)
    drawn where the lips part. The learned painter's reference is the photo, or the dubbed video's frame (of
    those shown) with the widest mouth opening (its teeth); the painted interior takes its colours from the first
    frame shown. ``painter`` replaces the shipped painter."""
    clip, meshes, src_idx, targets = scene.clip, scene.meshes, scene.src_idx, performance.targets
    if performance.keep_frames:
        return lambda t: clip.frames[src_idx[t]]
    if targets is None:
        raise ValueError("the performance has no target meshes to warp the face to")
    from talkinghead.render.warp.renderer import Topology, WarpRenderer

    shown = np.unique(src_idx)
    ref = int(src_idx[0]) if mouth == "painted" else int(shown[np.argmax(mouth_opening(meshes[shown]))])
    topology = Topology.of(clip.frames[src_idx[0]], meshes[src_idx[0]], mouth=mouth,
                           mouth_reference=(clip.frames[ref], meshes[ref]), painter=painter)
    photo = WarpRenderer(clip.frames[0], meshes[0], topology) if scene.is_photo else None

    def frame_at(t: int) -> np.ndarray:
        k = int(src_idx[t])
        r = photo or WarpRenderer(clip.frames[k], meshes[k], topology)
        return r.compose(clip.frames[k], r.render(targets[t]))

    return frame_at


class WarpFrames:
    """The reference frames with the face warped to the target meshes."""

    def frames(self, request: Request, scene: Scene, performance: Performance) -> Iterator[np.ndarray]:
        painter = request.checkpoints.get("mouth_painter")
        frame_at = frame_source(scene, performance, mouth=request.mouth or MOUTHS[0],
                                painter=str(painter) if painter else None)
        for t in range(scene.n_frames):
            yield frame_at(t)


SPEC = RendererSpec(
    name="warp", summary="mesh-driven warp of the reference face; the mouth's inside by a small learned painter "
                         "(--mouth painted: drawn, no weights)", create=WarpFrames,
    checkpoints=(CheckpointRole("mouth_painter", "the warp renderer's learned mouth painter (.pt)"),),
    options=frozenset({"mouth"}),
    commands=(CommandRef("mouth-corpus", "mouth squares and lip points of every frame of real videos (for "
                                         "train-painter)", "talkinghead.train.painter:CORPUS_COMMAND"),
              CommandRef("train-painter", "train the warp renderer's learned mouth painter on a mouth corpus",
                         "talkinghead.train.painter:TRAIN_COMMAND")),
)
