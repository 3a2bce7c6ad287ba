"""StyleTalker as a method: a photo's face crop is inverted into the style-based generator's W+ space and every
frame's code is drawn by the generator (lips from the speech; head motion and blinks sampled from the prior with
``seed``, or the posterior motion latents of ``motion_from``), then pasted back into the photo."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from talkinghead.spec import CheckpointRole, CommandRef, MethodSpec, Performance, Request, Scene

if TYPE_CHECKING:
    import torch

    from talkinghead.render.stylegan.model import Encoder

GENERATOR_ROLES = (CheckpointRole("generator", "the style-based generator (train-stylegan's generator.pt)"),
                   CheckpointRole("encoder", "its W+ encoder (train-stylegan's encoder.pt)"))
"""The generator and encoder of a train-stylegan folder (the shipped feature-path ones when not given)."""


def styletalker_performance(request: Request, scene: Scene) -> Performance:
    from talkinghead.audio.speech import speech_at
    from talkinghead.constants import CROP_SIZE, DATA_FPS
    from talkinghead.face.crop import crop_face
    from talkinghead.io.video import frame_count
    from talkinghead.motion.styletalker.infer import load_models, styletalker_codes
    from talkinghead.render.stylegan.infer import reference_code, render_codes

    models = load_models(request.checkpoints)
    kind = models.model.config.speech
    crop, _ = crop_face(scene.clip.frames[0], scene.meshes[0], size=CROP_SIZE)
    w_ref, reference = reference_code(models.generator, models.encoder, crop, steps=request.invert_steps)
    n25 = frame_count(scene.features.duration, DATA_FPS)
    motion = None if request.motion_from is None else motion_latents(request.motion_from, models.encoder, kind,
                                                                     quiet=request.quiet)
    speech = speech_at(kind, scene.speech, n25, timeline=scene.features.phonemes,
                       whisper=scene.features.whisper_of(kind, fps=DATA_FPS, n_frames=n25))
    codes = styletalker_codes(models, w_ref, speech, seed=request.seed, motion=motion,
                              mouth_scale=request.expression_scale)
    return Performance(crops=render_codes(models.generator, codes, reference))


def motion_latents(path: Path, encoder: Encoder, speech: str, *, quiet: bool) -> tuple[torch.Tensor, np.ndarray]:
    """(W+ codes (M, L, w_dim), speech inputs of kind ``speech`` (M, ...)) of the face in a motion video at 25 fps;
    a video without sound gets those of silence (its mouth motion then goes into the motion latents too)."""
    from talkinghead.audio.speech import speech_at
    from talkinghead.constants import CROP_SIZE, DATA_FPS, SAMPLE_RATE
    from talkinghead.errors import InputError
    from talkinghead.face.crop import track_crops
    from talkinghead.face.mesh import track_video
    from talkinghead.io import load_audio
    from talkinghead.io.video import frame_count, frame_indices
    from talkinghead.render.stylegan.infer import encode_crops

    clip, track = track_video(path, label="motion video", max_side=512, quiet=quiet)
    n25 = frame_count(len(clip.frames) / clip.fps, DATA_FPS)
    idx = frame_indices(n25, DATA_FPS, len(clip.frames), clip.fps)
    crops, _ = track_crops(clip.frames[idx], track.meshes[idx], size=CROP_SIZE)
    try:
        sound = load_audio(path)
    except InputError:
        sound = np.zeros(int(n25 / DATA_FPS * SAMPLE_RATE), np.float32)
    return encode_crops(encoder, crops), speech_at(speech, sound, n25)


SPEC = MethodSpec(
    name="styletalker", title="StyleTalker (photos)",
    summary="StyleTalker: a photo redrawn by the style-based generator (128 px face), motion sampled from the "
            "prior or from --motion-from, the mouth's motion from the speech (a soft mouth without teeth)",
    motion=styletalker_performance, photo=True, video=False,
    options=frozenset({"motion_from", "invert_steps", "expression_scale"}),
    checkpoints=(CheckpointRole("styletalker", "StyleTalker's model (.pt)"), *GENERATOR_ROLES),
    renderers=("generator",), whisper=True,
    commands=(CommandRef("train-styletalker", "train StyleTalker on a trained generator and encoder",
                         "talkinghead.train.styletalker:COMMAND"),),
)
