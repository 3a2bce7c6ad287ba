"""The default engine as a method (no weights), and the mesh motion the other mesh-driven families build on:
viseme motion (head motion and blinks for a photo), ``pose_from`` head motion, target meshes."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from talkinghead.face.motion import FaceMotion
from talkinghead.spec import CheckpointRole, CommandRef, MethodSpec, Performance, Request, Scene


def viseme_base(request: Request, scene: Scene, *, expression_scale: float, references: np.ndarray | None = None,
                own_mouth: bool = False) -> FaceMotion:
    """Viseme motion of the speech for the reference meshes (default: the photo's, or the dubbed video's frame of
    every output frame, (T, 478, 3)); a photo gets head motion (unless ``still``) and blinks, a dubbed video keeps
    its own (blinks on request). ``own_mouth``: the engine's mouth is shown (the default engine), so the
    calibration's Whisper speech map runs (at a real speaker's range for a photo: ``VisemeConfig.spread``); the
    families that replace the mouth skip it."""
    from talkinghead.face.pose import pose_free
    from talkinghead.motion.viseme.config import VisemeConfig
    from talkinghead.motion.viseme.infer import viseme_motion
    from talkinghead.motion.viseme.model import VisemeCalibration

    photo = scene.is_photo
    if references is None:
        references = scene.meshes[:1] if photo else scene.meshes[scene.src_idx]
    norm = pose_free(references)
    config = VisemeConfig(expression_scale=expression_scale, blink=photo if request.blink is None else request.blink,
                          head_motion=photo and not request.still, seed=request.seed, speech_map=own_mouth,
                          spread=photo)
    calibration = request.checkpoints.get("visemes")
    return viseme_motion(scene.features, norm[0] if photo else norm, config=config,
                         calibration=VisemeCalibration.load(calibration) if calibration else None)


def mesh_performance(request: Request, scene: Scene, motion: FaceMotion, references: np.ndarray | None = None
                     ) -> Performance:
    """Target meshes of ``motion`` (its head motion replaced by ``pose_from``'s) applied to ``references``
    ((478, 3) or (1, 478, 3): a photo's; (T, 478, 3): one per output frame; default: the reference frames' own)."""
    from talkinghead.motion.styleclip import pose_motion
    from talkinghead.render.warp.renderer import target_meshes

    if references is None:
        references = scene.meshes[0] if scene.is_photo else scene.meshes[scene.src_idx]
    if request.pose_from is not None:
        rot, trans = pose_motion(request.pose_from, fps=scene.features.fps, n_frames=scene.n_frames,
                                 quiet=request.quiet)
        motion = replace(motion, head_rotation=rot.astype(np.float32), head_translation=trans.astype(np.float32))
    return Performance(targets=target_meshes(references, motion))


def viseme_performance(request: Request, scene: Scene) -> Performance:
    motion = viseme_base(request, scene, expression_scale=request.expression_scale, own_mouth=True)
    return mesh_performance(request, scene, motion)


SPEC = MethodSpec(
    name="viseme", title="default engine (fastest; no motion model to train)",
    summary="the default engine: phonemes -> viseme mouth shapes with coarticulation, blinks and head motion "
            "(no motion weights; the warp renderer's small mouth painter is learned, --mouth painted is not)",
    motion=viseme_performance, photo=True, video=True,
    options=frozenset({"still", "expression_scale", "pose_from", "blink"}), renderers=("warp", "iplap", "vast"),
    checkpoints=(CheckpointRole("visemes", "the default engine's calibration (talkinghead calibrate's .npz)"),),
    streams=True, whisper=True,
    commands=(CommandRef("calibrate", "fit the default engine's mouth shapes from talking-face videos",
                         "talkinghead.motion.viseme.calibrate:COMMAND"),),
)
