"""The Python API the CLI calls: ``generate()`` (photo or video + speech -> mp4)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from talkinghead.audio.features import AudioFeatures, analyse_audio
from talkinghead.constants import DEFAULT_FPS, DEFAULT_SIZE, METHODS, RENDERERS, SAMPLE_RATE
from talkinghead.errors import InputError, TalkingHeadError
from talkinghead.face.mesh import mesh_image, track_faces
from talkinghead.face.pose import fit_pose, pose_free, with_rest_shape
from talkinghead.io import load_audio, read_image, read_video, resize_longer, write_video
from talkinghead.io.paths import require_file, require_writable_output
from talkinghead.io.video import VideoClip, frame_indices
from talkinghead.motion.base import FaceMotion
from talkinghead.motion.viseme.config import VisemeConfig
from talkinghead.motion.viseme.infer import viseme_motion
from talkinghead.progress import bar
from talkinghead.render.warp import WarpRenderer, target_meshes

if TYPE_CHECKING:
    import torch

    from talkinghead.render.stylegan.model import Encoder

CHECKPOINT_ROLES = ("landmarks", "renderer", "styletalk", "vast", "vast_renderer", "styletalker", "styleheat",
                    "generator", "encoder")
"""Keys of ``generate(checkpoints=...)``: IP_LAP's landmark generator and renderer, StyleTalk's model, VAST's
motion model and its person-specific renderer (no default: trained on the template by ``train-vast-renderer``),
StyleTalker's and StyleHEAT's models and the style-based generator and encoder they were trained with
(``train-stylegan``)."""
LATENT_METHODS = ("styletalker", "styleheat")
"""Methods that draw the whole face crop with the style-based generator and paste it back into the photo."""
LATENT_MASK_SCALE = 1.15
"""The generator's pasted face: the reference face oval enlarged by this about its centre (the head moves)."""
MAX_DRIVING_FRAMES = 25 * 600
"""A driving (motion) video is read up to this many frames at 25 fps (10 minutes)."""
MAX_VIDEO_SIDE = 1280
"""A video to dub is worked on at most this large (longer side) unless ``size`` says otherwise."""


@dataclass
class GenerateResult:
    """What :func:`generate` made.

    Attributes:
        output: the written mp4.
        frames: number of video frames.
        fps: frame rate.
        duration: audio duration in seconds (the video covers it to within one frame).
        size: (width, height) of the video.
        method: motion method used.
        phoneme_method: "aligned" (transcript + forced alignment) or "allphone".
        transcript: Whisper transcript of the speech ("" for allphone).
        faces_found: faces seen in the reference (the largest, or ``face_index``, was used).
        timings: seconds per stage.
    """

    output: Path
    frames: int
    fps: float
    duration: float
    size: tuple[int, int]
    method: str
    phoneme_method: str
    transcript: str
    faces_found: int
    timings: dict[str, float] = field(default_factory=dict)


def pose_motion(path: str | Path, *, fps: float, n_frames: int, quiet: bool) -> tuple[np.ndarray, np.ndarray]:
    """Head motion of the face in a video, relative to its median pose, resampled to ``n_frames`` at ``fps``.

    Returns:
        ((T, 3) rotations (pitch, yaw, roll) radians, (T, 3) translations in canonical units).
    """
    from scipy.spatial.transform import Rotation

    clip = read_video(path, max_side=512)
    with bar(len(clip.frames), "head pose", quiet=quiet) as pb:
        track = track_faces(clip.frames, source=str(path), progress=pb.update)
    poses = [fit_pose(m) for m in track.meshes]
    rots = Rotation.from_matrix(np.stack([p.rotation for p in poses]))
    median = Rotation.from_matrix(rots.mean().as_matrix())
    rel = (median.inv() * rots).as_euler("xyz")
    t_med = np.median(np.stack([p.translation for p in poses]), 0)
    trans = np.stack([median.inv().apply((p.translation - t_med) / p.scale) for p in poses])
    idx = frame_indices(n_frames, fps, len(poses), clip.fps)
    return rel[idx], trans[idx]


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise TalkingHeadError(f"method {method!r} is not available (available: {', '.join(METHODS)})")


def generate(
    *,
    audio: str | Path,
    output: str | Path,
    image: str | Path | None = None,
    video: str | Path | None = None,
    method: str = "viseme",
    fps: float = DEFAULT_FPS,
    size: int | None = None,
    seed: int = 0,
    still: bool = False,
    expression_scale: float = 1.0,
    pose_from: str | Path | None = None,
    blink: bool | None = None,
    face_index: int = 0,
    language: str = "auto",
    references: int | None = None,
    renderer: str | None = None,
    style: str | Path | None = None,
    style_intensity: float = 1.0,
    motion_from: str | Path | None = None,
    invert_steps: int = 0,
    edits: dict[str, float] | None = None,
    checkpoints: dict[str, str | Path] | None = None,
    quiet: bool = False,
) -> GenerateResult:
    """Make a talking-head video from a face photo (or a video to dub) and speech.

    Args:
        audio: speech file (any format FFmpeg reads; any rate/channels).
        output: the .mp4 to write (h264 + aac); nothing is left there if anything fails.
        image: a face photo; the video shows it talking, with blinks and head motion.
        video: a face video to dub: its head motion and eyes are kept, its mouth follows the speech.
        method: motion method (:data:`METHODS`).
        fps: output frame rate (for ``video`` too; its frames are time-matched).
        size: longer side of the output in pixels (default 512 for a photo, the video's own up to 1280).
        seed: seed of blinks and head motion.
        still: no generated head motion.
        expression_scale: mouth motion amplitude (1 = calibrated).
        pose_from: a video whose head motion (relative to its median pose) replaces generated motion.
        blink: generate eye blinks (default: yes for a photo, no for a video, which keeps its own).
        face_index: which face when there are several, counting from the largest.
        language: "auto", "en" or "other" (phones without a transcript).
        references: "iplap": reference frames of the renderer (default: 1/5 of the video's frames, at most 25).
        renderer: "warp" (default engine), "iplap" (IP_LAP's renderer draws the lower face from the motion's
            lips and jaw) or "vast" (VAST's renderer trained on ``video``: ``checkpoints["vast_renderer"]``);
            default: "iplap" for method "iplap", "vast" for method "vast" with a vast_renderer, else "warp".
        style: "styletalk", "vast": a video of the speaking style to copy (default: StyleTalk's neutral style;
            for VAST the template video itself, or for a photo the mean of VAST's learned style prior).
        style_intensity: "styletalk": 0 = neutral style, 1 = the style clip's, up to 1.5 exaggerated (0..1.5).
        motion_from: "styletalker": a video whose head motion and blinks (StyleTalker's posterior motion latents)
            drive the photo; the lips still follow ``audio`` (default: motion sampled from the prior with ``seed``).
            "styleheat": a video whose head pose and upper face drive the photo (default: a still head).
        invert_steps: "styletalker", "styleheat": optimisation steps refining the photo's W+ code after the
            encoder (0..1000).
        edits: "styleheat": attribute edits, name -> strength in standard deviations (-3..3), applied gradually
            from none at the first frame to the full strength at the last (names: the model's edit directions,
            e.g. smile, mouth_open, pc0..pc3).
        checkpoints: checkpoints by role (:data:`CHECKPOINT_ROLES`) replacing the shipped ones.
        quiet: no progress bars.

    With ``method="iplap"`` a video keeps its frames and only the lower face is regenerated; a photo
    (or ``pose_from``) is first animated by the default engine with a still mouth (head motion,
    blinks), and IP_LAP completes the lower face of those frames. ``method="styletalk"`` animates a
    photo: StyleTalk's expressions in the style of ``style``, the default engine's head motion (or
    ``pose_from``) and blinks, the warp renderer (or ``renderer="iplap"``). ``method="vast"`` animates a
    template video (or a photo): the template's head pose, VAST's expressions of the whole face in the style of
    ``style``, drawn by VAST's renderer trained on that template (or the warp renderer). ``method="styletalker"``
    animates a photo's face crop in the style-based generator's latent space (StyleTalker: lips from the audio,
    head motion and blinks sampled or from ``motion_from``) and pastes it back into the photo. ``method="styleheat"``
    warps the generator's features of the photo's code (StyleHEAT: lips from the audio, head pose from
    ``motion_from``), with gradual ``edits``, and pastes the face back.
    """
    checkpoints = dict(checkpoints or {})
    if (image is None) == (video is None):
        raise TalkingHeadError("give exactly one of image or video")
    _check_method(method)
    if not 1.0 <= fps <= 120.0:
        raise TalkingHeadError(f"fps must be between 1 and 120, not {fps:g}")
    if size is not None and not 64 <= size <= 4096:
        raise TalkingHeadError(f"size must be between 64 and 4096 pixels, not {size}")
    if references is not None and not 1 <= references <= 100:
        raise TalkingHeadError(f"references must be between 1 and 100, not {references}")
    if not 0.0 <= expression_scale <= 3.0:
        raise TalkingHeadError(f"expression scale must be between 0 and 3, not {expression_scale:g}")
    if not 0.0 <= style_intensity <= 1.5:
        raise TalkingHeadError(f"style intensity must be between 0 and 1.5, not {style_intensity:g}")
    if style_intensity != 1.0 and method != "styletalk":
        raise TalkingHeadError("style intensity applies to --method styletalk only")
    renderer = renderer or ("iplap" if method == "iplap" else
                            "vast" if method == "vast" and "vast_renderer" in checkpoints else "warp")
    if renderer not in RENDERERS or (method == "iplap" and renderer != "iplap"):
        raise TalkingHeadError(f"renderer {renderer!r} is not available for {method} "
                               f"(renderers: {', '.join(RENDERERS)}; iplap renders with iplap)")
    if renderer == "vast" and (video is None or "vast_renderer" not in checkpoints):
        raise TalkingHeadError("the vast renderer is person-specific: train it on the template video "
                               "(talkinghead train-vast-renderer TEMPLATE.mp4 -o R.pt), then pass that video and "
                               "the checkpoint (--vast-renderer R.pt)")
    if method in ("styletalk", *LATENT_METHODS) and image is None:
        raise TalkingHeadError(f"{method} animates a photo (--image); dub a video with viseme or iplap")
    if method in LATENT_METHODS:
        from talkinghead.render.stylegan.infer import require_models

        require_models(method, checkpoints)
    if not 0 <= invert_steps <= 1000:
        raise TalkingHeadError(f"invert steps must be between 0 and 1000, not {invert_steps}")
    if (motion_from is not None or invert_steps) and method not in LATENT_METHODS:
        raise TalkingHeadError("motion-from and invert-steps apply to --method styletalker and styleheat only "
                               "(other methods: --pose-from)")
    if edits and method != "styleheat":
        raise TalkingHeadError("edits apply to --method styleheat only")
    if method in LATENT_METHODS and (pose_from is not None or style is not None or renderer not in (None, "warp")
                                     or still or expression_scale != 1.0 or blink is not None):
        raise TalkingHeadError(f"{method} draws the whole face itself: its head motion comes from --motion-from "
                               "(or its model); --pose-from, --style, --renderer, --still, --expression-scale and "
                               "--blink do not apply")
    if unknown := set(checkpoints) - set(CHECKPOINT_ROLES):
        raise TalkingHeadError(f"unknown checkpoint role(s) {', '.join(sorted(unknown))} "
                               f"(roles: {', '.join(CHECKPOINT_ROLES)})")
    for p in (audio, image, video, pose_from, style, motion_from, *checkpoints.values()):
        if p is not None:
            require_file(p)
    out = require_writable_output(output)
    if out.suffix.lower() != ".mp4":
        raise InputError(out, "output must be an .mp4 file")
    if edits and method == "styleheat":
        from talkinghead.motion.styleheat.infer import check_edits
        from talkinghead.nn.checkpoint import checkpoint_meta

        check_edits(checkpoint_meta(checkpoints["styleheat"])["config"]["edit_names"], edits)

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    speech = load_audio(audio)
    if image is not None:
        frame = resize_longer(read_image(image), size or DEFAULT_SIZE)
        mesh, faces = mesh_image(frame, face_index=face_index, source=str(image))
        clip = VideoClip(frames=frame[None], fps=fps, path=str(image))
        meshes = mesh[None]
    else:
        clip = read_video(video, max_side=size or MAX_VIDEO_SIDE)  # type: ignore[arg-type]
        with bar(len(clip.frames), "face mesh", quiet=quiet) as pb:
            track = track_faces(clip.frames, face_index=face_index, source=str(video), progress=pb.update)
        meshes, faces = track.meshes, 1
    if faces > 1 and not quiet:
        print(f"talkinghead: {faces} faces in {image}; using face {face_index} by size "
              "(largest = 0; --face-index to choose)", file=sys.stderr)
    timings["face_analysis"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    with bar(100, "speech analysis", quiet=quiet, unit="%") as pb:
        features = analyse_audio(speech, fps=fps, language=language,
                                 progress=lambda f: pb.update(max(0, int(100 * f) - pb.n)))
    timings["audio_analysis"] = time.perf_counter() - t0

    render_time = [0.0]
    if method in LATENT_METHODS:  # draws the whole face crop itself: no mesh motion, no renderer
        t0 = time.perf_counter()
        if method == "styletalker":
            crops = _styletalker_crops(clip.frames[0], meshes[0], speech, seed=seed, motion_from=motion_from,
                                       invert_steps=invert_steps, checkpoints=checkpoints, quiet=quiet)
        else:
            crops = _styleheat_crops(clip.frames[0], meshes[0], speech, motion_from=motion_from,
                                     invert_steps=invert_steps, edits=edits or {}, checkpoints=checkpoints,
                                     quiet=quiet)
        frames = _pasted_crops(clip.frames[0], meshes[0], crops, features.n_frames, fps, render_time=render_time,
                               quiet=quiet)
    else:
        t0 = time.perf_counter()
        src_idx = frame_indices(features.n_frames, fps, len(clip.frames), clip.fps)
        references_ = meshes[0] if image is not None else meshes[src_idx]
        if method == "vast" and image is None:  # VAST drives the whole face: the template keeps only its head pose
            references_ = with_rest_shape(meshes)[src_idx]
        as_is = method == "iplap" and image is None and pose_from is None  # IP_LAP dubbing: frames kept as they are
        if as_is:
            targets = references_
        else:
            motion = _motion(features, references_, is_photo=image is not None, seed=seed, still=still,
                             expression_scale=0.0 if method == "iplap" else expression_scale, blink=blink)
            if method == "styletalk":
                motion = _styletalk_motion(features, motion, style=style, intensity=style_intensity,
                                           checkpoint=checkpoints.get("styletalk"), quiet=quiet)
            elif method == "vast":
                motion = _vast_motion(features, motion, style=style if style is not None else video,
                                      checkpoint=checkpoints.get("vast"), quiet=quiet)
            if pose_from is not None:
                rot, trans = pose_motion(pose_from, fps=fps, n_frames=features.n_frames, quiet=quiet)
                motion = replace(motion, head_rotation=rot.astype(np.float32),
                                 head_translation=trans.astype(np.float32))
            targets = target_meshes(references_, motion)
        timings["motion"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        frame_at = (lambda t: clip.frames[src_idx[t]]) if as_is else _warped_frames(clip, meshes, src_idx, targets)
        if renderer == "iplap":
            candidates = np.unique(src_idx, return_index=True)[1] if image is None else np.zeros(1, np.int64)
            frames = _render_iplap(frame_at, targets, speech, fps, candidates=candidates, references=references,
                                   checkpoints=(checkpoints.get("landmarks"), checkpoints.get("renderer")),
                                   predict=method == "iplap", render_time=render_time, quiet=quiet)
        elif renderer == "vast":
            frames = _render_vast(clip, meshes, src_idx, targets, features, checkpoint=checkpoints["vast_renderer"],
                                  render_time=render_time, quiet=quiet)
        else:
            frames = _timed(frame_at, len(targets), render_time, quiet=quiet)
    write_video(out, frames, fps=fps, audio=speech)
    timings["render"] = render_time[0]
    timings["encode"] = time.perf_counter() - t0 - render_time[0]
    h, w = clip.frames.shape[1:3]
    return GenerateResult(
        output=out, frames=features.n_frames, fps=fps, duration=features.duration, size=(w, h), method=method,
        phoneme_method=features.phonemes.method, transcript=features.phonemes.transcript, faces_found=faces,
        timings=timings,
    )


def _motion(features: AudioFeatures, references: np.ndarray, *, is_photo: bool, seed: int, still: bool,
            expression_scale: float, blink: bool | None) -> FaceMotion:
    """Viseme motion; a photo gets head motion and blinks, a dubbed video keeps its own."""
    norm = pose_free(references[None] if references.ndim == 2 else references)
    config = VisemeConfig(
        expression_scale=expression_scale,
        blink=is_photo if blink is None else blink,
        head_motion=is_photo and not still,
        seed=seed,
    )
    return viseme_motion(features, norm[0] if is_photo else norm, config=config)


def _styletalk_motion(features: AudioFeatures, base: FaceMotion, *, style: str | Path | None, intensity: float,
                      checkpoint: str | Path | None, quiet: bool) -> FaceMotion:
    """``base`` (head motion, blinks) with StyleTalk's expression coefficients in the face model's basis."""
    from talkinghead.face.model import default_face_model
    from talkinghead.motion.styleclip import video_coefficients
    from talkinghead.motion.styletalk.infer import default_styletalk, style_code, style_frames, styletalk_expression
    from talkinghead.motion.styletalk.model import StyleTalk

    model = StyleTalk.load(checkpoint) if checkpoint else default_styletalk()
    frames = None if style is None else style_frames(model, *video_coefficients(
        style, face_model=default_face_model(), max_frames=model.config.max_style_frames, label="style clip",
        quiet=quiet))
    return _with_expression(base, styletalk_expression(model, features, style_code(model, frames,
                                                                                   intensity=intensity)))


def _styletalker_crops(frame: np.ndarray, mesh: np.ndarray, speech: np.ndarray, *, seed: int,
                       motion_from: str | Path | None, invert_steps: int, checkpoints: dict[str, str | Path],
                       quiet: bool) -> np.ndarray:
    """StyleTalker's face crops at 25 fps of a photo: its face crop inverted into W+ (encoder + ``invert_steps``),
    codes of every frame (prior sample, or the motion latents of ``motion_from``) drawn by the generator."""
    from talkinghead.data.clip import CROP_SIZE, DATA_FPS
    from talkinghead.face.crop import crop_face
    from talkinghead.motion.styletalker.infer import load_models, styletalker_codes
    from talkinghead.render.stylegan.infer import reference_code, render_codes
    from talkinghead.sync.inputs import audio_mels

    models = load_models(checkpoints)
    crop, _ = crop_face(frame, mesh, size=CROP_SIZE)
    w_ref = reference_code(models.generator, models.encoder, crop, steps=invert_steps)
    n25 = max(1, int(round(len(speech) / SAMPLE_RATE * DATA_FPS)))
    motion = _styletalker_motion(motion_from, models.encoder, quiet=quiet) if motion_from is not None else None
    return render_codes(models.generator, styletalker_codes(models, w_ref, audio_mels(speech, n25), seed=seed,
                                                            motion=motion))


def _styleheat_crops(frame: np.ndarray, mesh: np.ndarray, speech: np.ndarray, *, motion_from: str | Path | None,
                     invert_steps: int, edits: dict[str, float],
                     checkpoints: dict[str, str | Path], quiet: bool) -> np.ndarray:
    """StyleHEAT's face crops at 25 fps of a photo: lips from the speech, head pose and upper face from
    ``motion_from`` (time-matched, played back and forth when shorter; else the photo's own, still), gradual
    ``edits``."""
    from talkinghead.data.clip import CROP_SIZE, DATA_FPS
    from talkinghead.face.crop import crop_face
    from talkinghead.face.model import default_face_model
    from talkinghead.motion.styleclip import video_coefficients
    from talkinghead.motion.styleheat.infer import coefficient_windows, load_models, styleheat_crops
    from talkinghead.sync.inputs import audio_mels

    models = load_models(checkpoints)
    crop, _ = crop_face(frame, mesh, size=CROP_SIZE)
    n25 = max(1, int(round(len(speech) / SAMPLE_RATE * DATA_FPS)))
    face_model = default_face_model()
    if motion_from is not None:
        expression, rotation = video_coefficients(motion_from, face_model=face_model, max_frames=MAX_DRIVING_FRAMES,
                                                  label="motion video", quiet=quiet)
        order = frame_indices(n25, DATA_FPS, len(expression), DATA_FPS)
        expression, rotation = expression[order], rotation[order]
    else:  # a still head: the photo drives itself (its own pose, expression at rest)
        expression = np.zeros((n25, models.model.config.n_expression), np.float32)
        rotation = np.repeat(fit_pose(mesh).rotation[None].astype(np.float32), n25, 0)
    motion = coefficient_windows(expression, rotation, radius=models.model.config.radius,
                                 lower_face=face_model.lower_face)
    return styleheat_crops(models, crop, audio_mels(speech, n25), motion=motion, edits=edits,
                           invert_steps=invert_steps)


def _pasted_crops(frame: np.ndarray, mesh: np.ndarray, crops: np.ndarray, n_frames: int, fps: float, *,
                  render_time: list[float], quiet: bool) -> Iterator[np.ndarray]:
    """Generated face crops at 25 fps pasted back into the photo through a soft mask a little larger than its face
    oval, time-matched to ``fps``."""
    import cv2

    from talkinghead.data.clip import CROP_SIZE, DATA_FPS
    from talkinghead.face.crop import face_crop_for, face_mask, paste_back

    fc = face_crop_for(mesh, size=CROP_SIZE)
    oval = fc.to_crop(mesh)[:, :2]
    centre = oval.mean(0)
    mask = face_mask(centre + LATENT_MASK_SCALE * (oval - centre), (CROP_SIZE, CROP_SIZE), feather=CROP_SIZE / 32)
    idx = frame_indices(n_frames, fps, len(crops), DATA_FPS)

    def frame_at(t: int) -> np.ndarray:
        face = cv2.resize(crops[idx[t]], (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_CUBIC)
        return paste_back(frame, face, fc, mask)

    return _timed(frame_at, n_frames, render_time, quiet=quiet)


def _styletalker_motion(path: str | Path, encoder: Encoder, *, quiet: bool) -> tuple[torch.Tensor, np.ndarray]:
    """(W+ codes (M, L, w_dim), mel windows (M, 16, 80)) of the face in a motion video at 25 fps; a video without
    sound gets silent mel windows (its mouth motion then goes into the motion latents too)."""
    from talkinghead.data.clip import CROP_SIZE, DATA_FPS
    from talkinghead.face.crop import track_crops
    from talkinghead.render.stylegan.infer import encode_crops
    from talkinghead.sync.inputs import audio_mels

    clip = read_video(path, max_side=512)
    with bar(len(clip.frames), "motion video", quiet=quiet) as pb:
        track = track_faces(clip.frames, source=str(path), progress=pb.update)
    n25 = max(1, int(round(len(clip.frames) / clip.fps * DATA_FPS)))
    idx = frame_indices(n25, DATA_FPS, len(clip.frames), clip.fps)
    crops, _ = track_crops(clip.frames[idx], track.meshes[idx], size=CROP_SIZE)
    try:
        sound = load_audio(path)
    except InputError:
        sound = np.zeros(int(n25 / DATA_FPS * SAMPLE_RATE), np.float32)
    return encode_crops(encoder, crops), audio_mels(sound, n25)


def _with_expression(base: FaceMotion, expression: np.ndarray) -> FaceMotion:
    """``base`` with its expression replaced by (T, K) coefficients of the face model's first K components."""
    from talkinghead.face.model import default_face_model

    full = default_face_model().basis()
    basis = replace(full, coefficient_names=full.coefficient_names[:expression.shape[1]],
                    components=full.components[:expression.shape[1]])
    return replace(base, expression=expression, basis=basis)


def _vast_motion(features: AudioFeatures, base: FaceMotion, *, style: str | Path | None,
                 checkpoint: str | Path | None, quiet: bool) -> FaceMotion:
    """``base`` (head motion, blinks) with VAST's expression coefficients of the whole face in the style of the
    ``style`` clip (None: the mean of the learned style prior)."""
    from talkinghead.face.model import default_face_model
    from talkinghead.motion.styleclip import style_coefficients, style_speech
    from talkinghead.motion.vast.infer import default_vast, vast_expression, vast_style
    from talkinghead.motion.vast.model import Vast

    model = Vast.load(checkpoint) if checkpoint else default_vast()
    face_model = default_face_model()
    coeffs = speech = None
    if style is not None:
        coeffs = style_coefficients(style, face_model=face_model, max_frames=model.config.max_style_frames,
                                    quiet=quiet)
        speech = style_speech(style, kind=model.config.speech, n_frames=len(coeffs))
    return _with_expression(base, vast_expression(model, features, vast_style(model, coeffs, speech)))


def _render_vast(clip: VideoClip, meshes: np.ndarray, src_idx: np.ndarray, targets: np.ndarray,
                 features: AudioFeatures, *, checkpoint: str | Path, render_time: list[float], quiet: bool
                 ) -> Iterator[np.ndarray]:
    """VAST's person-specific renderer redraws the face of every template frame for its target mesh."""
    from talkinghead.audio.posteriorgram import speech_features
    from talkinghead.render.vast.model import VastRenderer
    from talkinghead.render.vast.renderer import render_frames

    model = VastRenderer.load(checkpoint)
    speech = speech_features(model.config.speech, audio=features.audio, timeline=features.phonemes,
                             fps=features.fps, n_frames=features.n_frames)
    frames = render_frames(model, lambda k: clip.frames[k], meshes, src_idx, targets, speech)
    return _timed(lambda _: next(frames), len(targets), render_time, quiet=quiet)


def _warped_frames(clip: VideoClip, meshes: np.ndarray, src_idx: np.ndarray, targets: np.ndarray
                   ) -> Callable[[int], np.ndarray]:
    """Output frame index -> the full frame with its face warped to the target mesh."""
    photo = WarpRenderer(clip.frames[0], meshes[0]) if len(clip.frames) == 1 else None

    def frame_at(t: int) -> np.ndarray:
        k = int(src_idx[t])
        r = photo or WarpRenderer(clip.frames[k], meshes[k])
        return r.compose(clip.frames[k], r.render(targets[t]))

    return frame_at


def _timed(frame_at: Callable[[int], np.ndarray], n: int, render_time: list[float], *, quiet: bool
           ) -> Iterator[np.ndarray]:
    """The n frames of ``frame_at``; adds the time spent here to ``render_time[0]``."""
    with bar(n, "render", quiet=quiet) as pb:
        for t in range(n):
            start = time.perf_counter()
            frame = frame_at(t)
            render_time[0] += time.perf_counter() - start
            pb.update(1)
            yield frame


def _render_iplap(frame_at: Callable[[int], np.ndarray], targets: np.ndarray, speech: np.ndarray, fps: float, *,
                  candidates: np.ndarray, references: int | None,
                  checkpoints: tuple[str | Path | None, str | Path | None], predict: bool, render_time: list[float],
                  quiet: bool) -> Iterator[np.ndarray]:
    """IP_LAP lower-face completion of every frame (see :func:`talkinghead.render.iplap.renderer.dub_frames`);
    ``candidates``: the frames that may serve as references (a dubbed video's distinct frames, else the first)."""
    from talkinghead.render.iplap.renderer import IPLAPModels, dub_frames
    from talkinghead.sync.inputs import audio_mels

    start = time.perf_counter()
    models = IPLAPModels.load(*checkpoints, with_landmarks=predict)
    mels = audio_mels(speech, len(targets), fps)
    with bar(len(targets), "render (iplap)", quiet=quiet) as pb:
        frames = dub_frames(models, frame_at, targets, mels, candidates=candidates, references=references,
                            predict=predict, progress=pb.update)
        render_time[0] += time.perf_counter() - start
        while True:
            start = time.perf_counter()
            frame = next(frames, None)
            render_time[0] += time.perf_counter() - start
            if frame is None:
                return
            yield frame
