"""VAST's person-specific renderer as a :class:`talkinghead.spec.Renderer`: it redraws the face of every template
frame for its target mesh (trained on that template video by ``train-vast-renderer``; no general weights ship)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from talkinghead.spec import CheckpointRole, CommandRef, Performance, RendererSpec, Request, Scene


class VastFrames:
    """Every template frame with its face redrawn for the target mesh."""

    def frames(self, request: Request, scene: Scene, performance: Performance) -> Iterator[np.ndarray]:
        from talkinghead.audio.posteriorgram import speech_features
        from talkinghead.render.vast.model import VastRenderer
        from talkinghead.render.vast.renderer import render_frames

        model = VastRenderer.load(request.checkpoints["vast_renderer"])
        features = scene.features
        speech = speech_features(model.config.speech, audio=features.audio, timeline=features.phonemes,
                                 fps=features.fps, n_frames=features.n_frames)
        yield from render_frames(model, lambda k: scene.clip.frames[k], scene.meshes, scene.src_idx,
                                 performance.targets, speech)


SPEC = RendererSpec(
    name="vast", summary="VAST's renderer trained on the template video (train-vast-renderer)", create=VastFrames,
    checkpoints=(CheckpointRole("vast_renderer", "VAST's renderer trained on the --video template "
                                                 "(train-vast-renderer)", shipped=False),),
    needs_video=True,
    commands=(CommandRef("train-vast-renderer", "train VAST's person-specific renderer on a template video",
                         "talkinghead.train.vast:RENDERER_COMMAND"),),
)
