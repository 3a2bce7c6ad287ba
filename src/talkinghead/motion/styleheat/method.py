"""StyleHEAT as a method: the generator's features of a photo's code are warped (lips from the speech; head pose
and upper face from ``motion_from``, time-matched and played back and forth when shorter, else the photo's own,
still), with gradual attribute ``edits``, and the face is pasted back into the photo. The flows are the model's
(network flows) or drawn from the photo's face mesh moved by the model's lower-face coefficients (mesh flows; the
photo around the face then moves with the same meshes, see :mod:`talkinghead.render.stylegan.spec`)."""

from __future__ import annotations

from talkinghead.motion.styletalker.method import GENERATOR_ROLES
from talkinghead.spec import CheckpointRole, CommandRef, MethodSpec, Performance, Request, Scene

MAX_DRIVING_FRAMES = 25 * 600
"""A driving video is read up to this many frames at 25 fps (10 minutes)."""


def styleheat_performance(request: Request, scene: Scene) -> Performance:
    import numpy as np

    from talkinghead.audio.speech import speech_at
    from talkinghead.constants import CROP_SIZE, DATA_FPS
    from talkinghead.face.crop import crop_face
    from talkinghead.face.model import default_face_model
    from talkinghead.face.pose import fit_pose
    from talkinghead.io.video import frame_count, frame_indices
    from talkinghead.motion.styleclip import video_coefficients
    from talkinghead.motion.styleheat.infer import (
        coefficient_windows,
        crop_flows,
        load_models,
        mesh_motion,
        styleheat_crops,
    )

    models = load_models(request.checkpoints)
    config = models.model.config
    frame, mesh = scene.clip.frames[0], scene.meshes[0]
    crop, fc = crop_face(frame, mesh, size=CROP_SIZE)
    n25 = frame_count(scene.features.duration, DATA_FPS)
    face_model = default_face_model()
    driving = None
    if request.motion_from is not None:
        expression, rotation = video_coefficients(request.motion_from, face_model=face_model,
                                                  max_frames=MAX_DRIVING_FRAMES, label="motion video",
                                                  quiet=request.quiet)
        order = frame_indices(n25, DATA_FPS, len(expression), DATA_FPS)
        driving = expression[order], rotation[order]
    speech = speech_at(config.speech, scene.speech, n25, timeline=scene.features.phonemes)
    if config.flows == "mesh":
        targets = mesh_motion(models.model, mesh, speech, face_model=face_model, driving=driving,
                              mouth_scale=request.expression_scale, edits=request.edits)
        flows = crop_flows(mesh, fc, targets, resolution=config.warp_resolution)
        return Performance(crops=styleheat_crops(models, crop, None, flows=flows, edits=request.edits,
                                                 invert_steps=request.invert_steps), crop_meshes=targets)
    if driving is None:  # a still head: the photo drives itself (its own pose, expression at rest)
        driving = (np.zeros((n25, config.n_expression), np.float32),
                   np.repeat(fit_pose(mesh).rotation[None].astype(np.float32), n25, 0))
    motion = coefficient_windows(*driving, radius=config.radius, lower_face=face_model.lower_face)
    return Performance(crops=styleheat_crops(models, crop, speech, motion=motion, edits=request.edits,
                                             invert_steps=request.invert_steps))


def check_request(request: Request) -> None:
    """Unknown or too strong edits, and ``--expression-scale`` on a model with network flows, fail before any work
    (read from the checkpoint's config)."""
    from dataclasses import asdict

    from talkinghead.errors import TalkingHeadError
    from talkinghead.motion.styleheat.infer import check_edits
    from talkinghead.motion.styleheat.model import StyleHeat
    from talkinghead.nn.checkpoint import checkpoint_meta

    if not request.edits and request.expression_scale == 1.0:
        return
    # the shipped model is loaded once (generation reuses it); a given one is only read here
    given = request.checkpoints.get("styleheat")
    config = checkpoint_meta(given)["config"] if given else asdict(StyleHeat.default().config)
    check_edits(config["edit_names"], request.edits)
    if request.expression_scale != 1.0 and config.get("flows", "network") != "mesh":
        raise TalkingHeadError("--expression-scale needs a StyleHEAT model with mesh flows (this one has network "
                               "flows)")


SPEC = MethodSpec(
    name="styleheat", title="StyleHEAT (photos)",
    summary="StyleHEAT: the generator's features of a photo (128 px face) warped along its face mesh, lips moved by "
            "the speech, head and upper face by --motion-from, with gradual --edit (smile, mouth_open, pc0..pc3)",
    motion=styleheat_performance, photo=True, video=False,
    options=frozenset({"motion_from", "invert_steps", "edits", "expression_scale"}),
    checkpoints=(CheckpointRole("styleheat", "StyleHEAT's model (.pt)"), *GENERATOR_ROLES),
    renderers=("generator",), self_driven=("motion_from",), check=check_request,
    commands=(CommandRef("train-styleheat", "train StyleHEAT on a trained generator and encoder",
                         "talkinghead.train.styleheat:COMMAND"),),
)
