"""The warp renderer as a :class:`talkinghead.spec.Renderer`: every output frame is its reference frame with the
face warped to the target mesh (no weights)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from talkinghead.spec import Performance, RendererSpec, Request, Scene


def frame_source(scene: Scene, performance: Performance) -> Callable[[int], np.ndarray]:
    """Output frame index -> its full frame: the reference frame it is timed to, as it is
    (``performance.keep_frames``) or with the face warped to its target mesh."""
    clip, meshes, src_idx, targets = scene.clip, scene.meshes, scene.src_idx, performance.targets
    if performance.keep_frames:
        return lambda t: clip.frames[src_idx[t]]
    if targets is None:
        raise ValueError("the performance has no target meshes to warp the face to")
    from talkinghead.render.warp.renderer import Topology, WarpRenderer

    topology = Topology.of(clip.frames[src_idx[0]], meshes[src_idx[0]])
    photo = WarpRenderer(clip.frames[0], meshes[0], topology) if scene.is_photo else None

    def frame_at(t: int) -> np.ndarray:
        k = int(src_idx[t])
        r = photo or WarpRenderer(clip.frames[k], meshes[k], topology)
        return r.compose(clip.frames[k], r.render(targets[t]))

    return frame_at


class WarpFrames:
    """The reference frames with the face warped to the target meshes."""

    def frames(self, request: Request, scene: Scene, performance: Performance) -> Iterator[np.ndarray]:
        frame_at = frame_source(scene, performance)
        for t in range(scene.n_frames):
            yield frame_at(t)


SPEC = RendererSpec(name="warp", summary="mesh-driven warp of the reference face (no weights)", create=WarpFrames)
