"""VAST as a method: a template video (or a photo) speaks with VAST's expressions of the whole face in the style
of a style prompt (default: the template itself; for a photo the mean of the learned style prior), the template's
head pose, drawn by VAST's renderer trained on that template (or the warp renderer)."""

from __future__ import annotations

from talkinghead.spec import CheckpointRole, CommandRef, MethodSpec, Performance, Request, Scene


def vast_performance(request: Request, scene: Scene) -> Performance:
    from talkinghead.face.model import default_face_model
    from talkinghead.face.pose import with_rest_shape
    from talkinghead.motion.styleclip import photo_rest_shape, style_coefficients, style_speech, with_expression
    from talkinghead.motion.vast.infer import vast_expression, vast_style
    from talkinghead.motion.vast.model import Vast
    from talkinghead.motion.viseme.method import mesh_performance, viseme_base

    # VAST drives the whole face: a photo or a template keeps only its head pose
    references = photo_rest_shape(scene.meshes[0], face_model=default_face_model())[None] if scene.is_photo else \
        with_rest_shape(scene.meshes)[scene.src_idx]
    base = viseme_base(request, scene, expression_scale=1.0, references=references)
    path = request.checkpoints.get("vast")
    model = Vast.load(path) if path else Vast.default()
    style = request.style if request.style is not None else request.video
    coeffs = speech = None
    if style is not None:
        coeffs = style_coefficients(style, face_model=default_face_model(), max_frames=model.config.max_style_frames,
                                    quiet=request.quiet)
        speech = style_speech(style, kind=model.config.speech, n_frames=len(coeffs))
    expression = vast_expression(model, scene.features, vast_style(model, coeffs, speech))
    return mesh_performance(request, scene, with_expression(base, expression), references)


SPEC = MethodSpec(
    name="vast", title="VAST (with a style clip)",
    summary="VAST: a template video (or photo) in the style of a style prompt (--style), drawn by a renderer "
            "trained on the template (shipped small motion checkpoint)",
    motion=vast_performance, photo=True, video=True, options=frozenset({"still", "pose_from", "blink", "style"}),
    checkpoints=(CheckpointRole("vast", "VAST's motion model (.pt)"),), renderers=("vast", "warp"),
    self_driven=("style",), whisper=True,
    commands=(CommandRef("train-vast", "train VAST's motion model on preprocessed datasets",
                         "talkinghead.train.vast:COMMAND"),
              CommandRef("vast-split", "VAST's split of the expression coefficients by mouth-vertex offset",
                         "talkinghead.motion.vast.split:COMMAND")),
)
