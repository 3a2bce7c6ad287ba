"""IP_LAP as a method: a dubbed video keeps its frames and IP_LAP redraws the lower face from lips predicted from
the speech. A photo is first animated by the default engine (head motion, blinks, and its mouth, whose frames give
the renderer its references: :mod:`talkinghead.render.iplap.spec`); a dub under ``pose_from`` by the default engine
with a still mouth."""

from __future__ import annotations

from talkinghead.spec import CheckpointRole, CommandRef, MethodSpec, Performance, Request, Scene


def iplap_performance(request: Request, scene: Scene) -> Performance:
    from talkinghead.motion.iplap.infer import lip_predictor
    from talkinghead.motion.viseme.method import mesh_performance, viseme_base

    if scene.is_photo:  # the default engine's mouth draws the renderer's references (see render.iplap.spec)
        performance = mesh_performance(request, scene, viseme_base(request, scene, expression_scale=1.0,
                                                                   own_mouth=True))
    elif request.pose_from is not None:
        performance = mesh_performance(request, scene, viseme_base(request, scene, expression_scale=0.0))
    else:  # dubbing: the frames are kept as they are
        performance = Performance(targets=scene.meshes[scene.src_idx], keep_frames=True)
    performance.lips = lip_predictor(scene.features, request.checkpoints.get("landmarks"))
    return performance


SPEC = MethodSpec(
    name="iplap", title="IP_LAP", summary="IP_LAP: audio -> lip landmarks (transformer) + reference-warping renderer "
                                          "of the lower face (shipped small checkpoints)",
    motion=iplap_performance, photo=True, video=True, options=frozenset({"still", "pose_from", "blink"}),
    checkpoints=(CheckpointRole("landmarks", "IP_LAP's landmark generator (.pt)"),), renderers=("iplap",), whisper=True,
    commands=(CommandRef("train-iplap", "train IP_LAP's landmark generator or renderer on preprocessed datasets",
                         "talkinghead.train.iplap:COMMAND"),),
)
