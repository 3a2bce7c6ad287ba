"""StyleTalk as a method: a photo speaks with StyleTalk's expressions in the style of a style clip (default: the
neutral style), the default engine's head motion (or ``pose_from``) and blinks."""

from __future__ import annotations

from talkinghead.spec import CheckpointRole, CommandRef, MethodSpec, Performance, Request, Scene


def styletalk_performance(request: Request, scene: Scene) -> Performance:
    from talkinghead.face.model import default_face_model
    from talkinghead.motion.styleclip import photo_rest_shape, video_coefficients, with_expression
    from talkinghead.motion.styletalk.infer import style_code, style_frames, styletalk_expression
    from talkinghead.motion.styletalk.model import StyleTalk
    from talkinghead.motion.viseme.method import mesh_performance, viseme_base

    # StyleTalk replaces the photo's expression (offsets from its rest shape), keeping its head pose
    rest = photo_rest_shape(scene.meshes[0], face_model=default_face_model())
    base = viseme_base(request, scene, expression_scale=1.0, references=rest[None])
    path = request.checkpoints.get("styletalk")
    model = StyleTalk.load(path) if path else StyleTalk.default()
    frames = None if request.style is None else style_frames(model, *video_coefficients(
        request.style, face_model=default_face_model(), max_frames=model.config.max_style_frames,
        label="style clip", quiet=request.quiet))
    code = style_code(model, frames, intensity=request.style_intensity)
    return mesh_performance(request, scene, with_expression(base, styletalk_expression(model, scene.features, code)),
                            rest)


SPEC = MethodSpec(
    name="styletalk", title="StyleTalk (photos, with a style clip)",
    summary="StyleTalk: the speaking style of a style clip (--style) on a photo (shipped small checkpoint)",
    motion=styletalk_performance, photo=True, video=False,
    options=frozenset({"still", "pose_from", "blink", "style", "style_intensity"}),
    checkpoints=(CheckpointRole("styletalk", "StyleTalk's model (.pt)"),), renderers=("warp", "iplap"), whisper=True,
    self_driven=("style",), commands=(CommandRef("train-styletalk", "train StyleTalk on preprocessed datasets",
                                                 "talkinghead.train.styletalk:COMMAND"),),
)
