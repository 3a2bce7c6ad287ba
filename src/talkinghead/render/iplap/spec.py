"""IP_LAP's renderer as a :class:`talkinghead.spec.Renderer`: it redraws the lower face of every frame from the
lips and jaw of the target mesh (or from lips predicted from the speech, ``performance.lips``) and reference
frames of the same face."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from talkinghead.spec import CheckpointRole, Performance, RendererSpec, Request, Scene


class IPLAPFrames:
    """Lower-face completion of every frame with IP_LAP's renderer."""

    def frames(self, request: Request, scene: Scene, performance: Performance) -> Iterator[np.ndarray]:
        from talkinghead.audio.speech import mel_inputs
        from talkinghead.render.iplap.model import IPLAPRenderer
        from talkinghead.render.iplap.renderer import dub_frames
        from talkinghead.render.warp.spec import FrameStages

        path = request.checkpoints.get("renderer")
        renderer = IPLAPRenderer.load(path) if path else IPLAPRenderer.default()
        # (the warp only moves the head: IP_LAP redraws the lower face, so its mouth is the cheap painted one)
        # the frames that may serve as references: a dubbed video's distinct frames, else the photo
        candidates = np.zeros(1, np.int64) if scene.is_photo else np.unique(scene.src_idx, return_index=True)[1]
        mels = mel_inputs(scene.speech, fps=scene.features.fps, n_frames=scene.n_frames)
        yield from dub_frames(renderer, FrameStages(scene, performance, mouth="painted"), performance.targets, mels,
                              candidates=candidates, references=request.references, lips=performance.lips)


SPEC = RendererSpec(
    name="iplap", summary="IP_LAP's learned renderer redraws the lower face", create=IPLAPFrames,
    checkpoints=(CheckpointRole("renderer", "IP_LAP's renderer (.pt)"),), options=frozenset({"references"}),
)
