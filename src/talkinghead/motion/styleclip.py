"""Style and driving clips: the expression coefficients, head rotations (and speech) of the face in a video, at
the training frame rate, for the style-driven families (StyleTalk, VAST) and StyleHEAT's video driving."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from talkinghead.audio.features import analyse_audio
from talkinghead.audio.phonemes import PhonemeTimeline
from talkinghead.audio.posteriorgram import speech_features
from talkinghead.constants import DATA_FPS, SAMPLE_RATE, SILENCE_PEAK
from talkinghead.face.expression import GAP, mouth_features, uncross_lips
from talkinghead.face.mesh import track_video
from talkinghead.face.model import FaceModel
from talkinghead.face.motion import FaceMotion
from talkinghead.face.pose import fit_pose
from talkinghead.io import load_audio, read_video
from talkinghead.io.paths import has_stream
from talkinghead.io.video import frame_count, frame_indices


def resample(x: np.ndarray, n: int) -> np.ndarray:
    """(T, K) frames stretched or shrunk to (n, K) by linear interpolation (same duration)."""
    if len(x) == n:
        return x.astype(np.float32)
    src = np.linspace(0.0, 1.0, len(x)) if len(x) > 1 else np.zeros(1)
    dst = np.linspace(0.0, 1.0, n)
    return np.stack([np.interp(dst, src, x[:, k]) for k in range(x.shape[1])], 1).astype(np.float32)


def photo_rest_shape(mesh: np.ndarray, *, face_model: FaceModel) -> np.ndarray:
    """(478, 3) pixel mesh of a photo's face with its own expression removed (:meth:`FaceModel.fit_expression`),
    pose kept. The style families' expression coefficients are offsets from a clip's mean shape, so they move this
    rest shape, as a video's frames are first brought to their clip's mean
    (:func:`~talkinghead.face.pose.with_rest_shape`); added to the photo's own expression they would count it twice
    (a photo with closed lips would press them through each other at every closure). Where the fit would leave the
    lips crossed (a photo whose slightly parted lips it reads as an open expression), they are brought back to
    touching (:func:`~talkinghead.face.expression.uncross_lips`)."""
    pose = fit_pose(mesh)
    return pose.to_image(_rest_shape(pose.to_canonical(mesh.astype(np.float64)), face_model))


def _rest_shape(free: np.ndarray, face_model: FaceModel) -> np.ndarray:
    """:func:`photo_rest_shape` in canonical space: a pose-free mesh (478, 3) less its fitted expression, uncrossed."""
    own = face_model.expression_meshes(np.zeros_like(free), face_model.fit_expression(free)[None])[0]
    return uncross_lips((free - own)[None], free, face_model.opening())[0]


def photo_rest_mouth(mesh: np.ndarray, *, face_model: FaceModel) -> np.ndarray:
    """(478, 3) pixel mesh of a photo's face with only its mouth at rest: opened or closed along the face model's
    opening (:meth:`FaceModel.opening`) to the lip gap of :func:`photo_rest_shape`, lips not crossed. For a model
    whose coefficients move the lower face only (StyleHEAT's mesh flows): the eyes and brows stay the photo's, where
    removing the whole fitted expression, or even its lower-face components, would move them too."""
    pose = fit_pose(mesh)
    free = pose.to_canonical(mesh.astype(np.float64))
    opening = face_model.opening()
    moved = free + (mouth_features(_rest_shape(free, face_model))[GAP] - mouth_features(free)[GAP]) * opening
    return pose.to_image(uncross_lips(moved[None], free, opening)[0])


def video_coefficients(path: str | Path, *, face_model: FaceModel, max_frames: int, label: str = "style clip",
                       quiet: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(expression coefficients (L, K), head rotations (L, 3, 3)) at 25 fps of the face in a video (its first
    ``max_frames``), encoded as preprocessing encodes real clips (offsets from the clip's mean shape; rotations
    canonical -> image axes)."""
    fps = read_video(path, max_side=64, max_frames=1).fps
    clip, track = track_video(path, label=label, max_side=512, max_frames=int(np.ceil(max_frames * fps / DATA_FPS)) + 1,
                              quiet=quiet)
    meshes = track.meshes
    poses = [fit_pose(m) for m in meshes]
    canonical = np.stack([p.to_canonical(m.astype(np.float64)) for p, m in zip(poses, meshes)])
    coeffs = face_model.encode_expression(canonical, canonical.mean(0))
    rotations = np.stack([p.rotation for p in poses]).reshape(len(poses), 9)
    n = frame_count(len(coeffs) / clip.fps, DATA_FPS)
    both = resample(np.concatenate([coeffs, rotations], 1), n)[:max_frames]
    return both[:, :coeffs.shape[1]], both[:, coeffs.shape[1]:].reshape(-1, 3, 3)


def style_coefficients(path: str | Path, *, face_model: FaceModel, max_frames: int, quiet: bool = False
                       ) -> np.ndarray:
    """Expression coefficients (L, K) at 25 fps of the face in a style clip (see :func:`video_coefficients`)."""
    return video_coefficients(path, face_model=face_model, max_frames=max_frames, quiet=quiet)[0]


def style_speech(path: str | Path, *, kind: str, n_frames: int) -> np.ndarray:
    """(n_frames, S) speech features at 25 fps of the style clip's first ``n_frames`` frames (VAST's style
    encoder reads them with the coefficients); a clip without sound gets the features of silence."""
    audio = load_audio(path, allow_silent=True)[:int(np.ceil(n_frames / DATA_FPS * SAMPLE_RATE))] \
        if has_stream(path, "audio") else np.zeros(0, np.float32)
    if audio.size and np.abs(audio).max() >= SILENCE_PEAK:
        timeline = analyse_audio(audio, fps=DATA_FPS).phonemes
    else:
        audio = np.zeros(int(np.ceil(n_frames / DATA_FPS * SAMPLE_RATE)), np.float32)
        timeline = PhonemeTimeline(phones=[], starts=np.zeros(0), ends=np.zeros(0), method="allphone")
    return speech_features(kind, audio=audio, timeline=timeline, fps=DATA_FPS, n_frames=n_frames)


def relative_rotations(rotations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """((T, 3) (pitch, yaw, roll) radians of head rotations (T, 3, 3) relative to their mean rotation, as the head
    motion of :class:`~talkinghead.face.motion.FaceMotion` applies on top of a reference pose; that mean (3, 3))."""
    from scipy.spatial.transform import Rotation

    rots = Rotation.from_matrix(rotations)
    mean = Rotation.from_matrix(rots.mean().as_matrix())
    return (mean.inv() * rots).as_euler("xyz"), mean.as_matrix()


def pose_motion(path: str | Path, *, fps: float, n_frames: int, quiet: bool) -> tuple[np.ndarray, np.ndarray]:
    """Head motion of the face in a video, relative to its median pose, resampled to ``n_frames`` at ``fps``.

    Returns:
        ((T, 3) rotations (pitch, yaw, roll) radians, (T, 3) translations in canonical units).
    """
    from scipy.spatial.transform import Rotation

    clip, track = track_video(path, label="head pose", max_side=512, quiet=quiet)
    poses = [fit_pose(m) for m in track.meshes]
    rel, mean = relative_rotations(np.stack([p.rotation for p in poses]))
    median = Rotation.from_matrix(mean)
    t_med = np.median(np.stack([p.translation for p in poses]), 0)
    trans = np.stack([median.inv().apply((p.translation - t_med) / p.scale) for p in poses])
    idx = frame_indices(n_frames, fps, len(poses), clip.fps)
    return rel[idx], trans[idx]


def with_expression(base: FaceMotion, expression: np.ndarray) -> FaceMotion:
    """``base`` with its expression replaced by (T, K) coefficients of the shipped face model's first K
    components."""
    from talkinghead.face.model import default_face_model

    return replace(base, expression=expression, basis=default_face_model().basis(expression.shape[1]))
