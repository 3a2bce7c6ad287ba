"""IP_LAP's renderer as a :class:`talkinghead.spec.Renderer`: it redraws the lower face of every frame from the
lips and jaw of the target mesh (or from lips predicted from the speech, ``performance.lips``) and reference
frames of the same face.

IP_LAP dubs videos: its references are frames of the video, picked by mouth opening, and they show the speaker's
mouth open and closed. A photo shows one mouth, and with it as the only reference (15 copies for the landmark
generator) the mouth hardly moved: a mouth correlation of 0.16 on `talking/` (the paper has no photo input). So for a
photo the references are drawn: the warp renderer with its learned mouth animates the photo with the performance's
meshes, and the renderer's references and the landmark generator's are picked among those frames as in a dub."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from talkinghead.spec import MOUTHS, CheckpointRole, Performance, RendererSpec, Request, Scene

PHOTO_REFERENCES = 5
"""Renderer references drawn for a photo (a dub's rule would give 25, five times the time a frame)."""


class IPLAPFrames:
    """Lower-face completion of every frame with IP_LAP's renderer."""

    def frames(self, request: Request, scene: Scene, performance: Performance) -> Iterator[np.ndarray]:
        from talkinghead.audio.speech import mel_inputs
        from talkinghead.render.iplap.model import IPLAPRenderer
        from talkinghead.render.iplap.renderer import dub_frames
        from talkinghead.render.warp.spec import FrameStages

        path = request.checkpoints.get("renderer")
        renderer = IPLAPRenderer.load(path) if path else IPLAPRenderer.default()
        mels = mel_inputs(scene.speech, fps=scene.features.fps, n_frames=scene.n_frames)
        if scene.is_photo:
            # a photo shows one mouth: the references are drawn by the warp renderer (learned mouth) from the
            # performance's frames, whose mouths move with the speech, and picked by mouth opening as in a dub
            stages = FrameStages(scene, performance, mouth=MOUTHS[0])
            candidates = np.arange(scene.n_frames)
            references = request.references or PHOTO_REFERENCES
        else:  # the frames that may serve as references: the dubbed video's distinct frames, as they are
            stages = FrameStages(scene, performance, mouth="painted")  # (only moves a head under pose_from)
            candidates = np.unique(scene.src_idx, return_index=True)[1]
            references = request.references
        yield from dub_frames(renderer, stages, performance.targets, mels, candidates=candidates,
                              references=references, lips=performance.lips)


SPEC = RendererSpec(
    name="iplap", summary="IP_LAP's learned renderer redraws the lower face", create=IPLAPFrames,
    checkpoints=(CheckpointRole("renderer", "IP_LAP's renderer (.pt)"),), options=frozenset({"references"}),
)
