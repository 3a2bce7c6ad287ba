"""Style and driving clips: the expression coefficients, head rotations (and speech) of the face in a video, at
the training frame rate, for the style-driven families (StyleTalk, VAST) and StyleHEAT's video driving."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from talkinghead.audio.features import analyse_audio
from talkinghead.audio.phonemes import PhonemeTimeline
from talkinghead.audio.posteriorgram import speech_features
from talkinghead.constants import SAMPLE_RATE, SILENCE_PEAK
from talkinghead.data.clip import DATA_FPS
from talkinghead.face.mesh import track_faces
from talkinghead.face.model import FaceModel
from talkinghead.face.pose import fit_pose
from talkinghead.io import load_audio, read_video
from talkinghead.io.paths import has_stream
from talkinghead.progress import bar


def resample(x: np.ndarray, n: int) -> np.ndarray:
    """(T, K) frames stretched or shrunk to (n, K) by linear interpolation (same duration)."""
    if len(x) == n:
        return x.astype(np.float32)
    src = np.linspace(0.0, 1.0, len(x)) if len(x) > 1 else np.zeros(1)
    dst = np.linspace(0.0, 1.0, n)
    return np.stack([np.interp(dst, src, x[:, k]) for k in range(x.shape[1])], 1).astype(np.float32)


def video_coefficients(path: str | Path, *, face_model: FaceModel, max_frames: int, label: str = "style clip",
                       quiet: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(expression coefficients (L, K), head rotations (L, 3, 3)) at 25 fps of the face in a video (its first
    ``max_frames``), encoded as preprocessing encodes real clips (offsets from the clip's mean shape; rotations
    canonical -> image axes)."""
    fps = read_video(path, max_side=64, max_frames=1).fps
    clip = read_video(path, max_side=512, max_frames=int(np.ceil(max_frames * fps / DATA_FPS)) + 1)
    with bar(len(clip.frames), label, quiet=quiet) as pb:
        meshes = track_faces(clip.frames, source=str(path), progress=pb.update).meshes
    poses = [fit_pose(m) for m in meshes]
    canonical = np.stack([p.to_canonical(m.astype(np.float64)) for p, m in zip(poses, meshes)])
    coeffs = face_model.encode_expression(canonical, canonical.mean(0))
    rotations = np.stack([p.rotation for p in poses]).reshape(len(poses), 9)
    n = max(1, int(round(len(coeffs) * DATA_FPS / clip.fps)))
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
