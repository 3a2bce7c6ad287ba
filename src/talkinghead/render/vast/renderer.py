"""Template videos for VAST's person-specific renderer, its per-frame inputs, and rendering frames with it.

A template is one video of the target person: its smoothed face crops, meshes and frame-level speech
features. The renderer learns to redraw the face region of a crop from the sketch of its mesh and the
crop's background; at inference the sketch comes from the generated motion's mesh and the background from
the template frame the output frame is timed to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from talkinghead.audio.features import analyse_audio
from talkinghead.audio.posteriorgram import speech_features
from talkinghead.face import indices as ix
from talkinghead.face.crop import FaceCrop, cut, paste_back, track_crop_params, track_crops
from talkinghead.face.mesh import track_video
from talkinghead.io import load_audio
from talkinghead.render.iplap.sketch import draw_sketch
from talkinghead.render.vast.model import VastRenderer, composite

MASK_DILATION = 0.06
"""The face region (face-oval hulls of the template's and the target's mesh) grows by this share of the crop."""
MASK_FEATHER = 0.02
"""Gaussian sigma (share of the crop) of the mask edge used to blend the rendered face into the background."""
MAX_TEMPLATE_SIDE = 720
EXAMPLE_RENDERER = Path(__file__).parent / "assets" / "vast_renderer_kristinoem_v1.pt"
"""A renderer trained on the shared example template ``../shared/media/talking/styletalk_KristiNoem.mp4`` (it
renders only that person; card in ``motion/vast/assets/vast_v1.json``)."""


@dataclass
class Template:
    """A template video prepared for training.

    Attributes:
        crops: (T, S, S, 3) uint8 RGB smoothed face crops; meshes: (T, 478, 3) float32 in crop pixels.
        speech: (T, D) float32 frame-level speech features; fps: frame rate.
    """

    crops: np.ndarray
    meshes: np.ndarray
    speech: np.ndarray
    fps: float


def prepare_template(path: str | Path, *, size: int, speech: str, quiet: bool = False) -> Template:
    """Face crops, meshes and speech features of every frame of a template video (needs its speech track)."""
    clip, track = track_video(path, label="template face mesh", max_side=MAX_TEMPLATE_SIDE, quiet=quiet)
    audio = load_audio(path)
    meshes = track.meshes
    crops, fcs = track_crops(clip.frames, meshes, size=size)
    crop_meshes = np.stack([fc.to_crop(m) for fc, m in zip(fcs, meshes)]).astype(np.float32)
    features = analyse_audio(audio, fps=clip.fps)
    feats = speech_features(speech, audio=audio, timeline=features.phonemes, fps=clip.fps,
                            n_frames=features.n_frames)
    n = min(len(crops), len(feats))
    feats = np.concatenate([feats, np.repeat(feats[-1:], len(crops) - n, 0)]) if n < len(crops) else feats[:n]
    return Template(crops=crops, meshes=crop_meshes, speech=feats.astype(np.float32), fps=clip.fps)


def face_region(meshes: list[np.ndarray], size: int) -> np.ndarray:
    """(S, S) float32 hard mask: the union of the meshes' face-oval hulls ((478, >=2) crop pixels), dilated."""
    mask = np.zeros((size, size), np.uint8)
    for m in meshes:
        cv2.fillConvexPoly(mask, cv2.convexHull(np.round(m[ix.FACE_OVAL, :2]).astype(np.int32)), 1)
    k = 2 * int(round(MASK_DILATION * size)) + 1
    return cv2.dilate(mask, np.ones((k, k), np.uint8)).astype(np.float32)


def frame_inputs(crop: np.ndarray, target: np.ndarray, template: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One frame's renderer inputs: (sketch (S, S, 3) uint8 of the target mesh, eroded background (S, S, 3)
    uint8, soft blending mask (S, S) float32); meshes (478, >=2) in crop pixels of the (S, S, 3) crop."""
    size = crop.shape[0]
    hard = face_region([target, template], size)
    background = (crop * (1 - hard[..., None])).astype(np.uint8)
    soft = cv2.GaussianBlur(hard, (0, 0), MASK_FEATHER * size)
    soft = np.clip(np.maximum(soft, cv2.erode(hard, np.ones((3, 3), np.uint8))), 0.0, 1.0)  # inside stays 1
    return draw_sketch(target[ix.IPLAP_REFERENCE, :2] / size, size), background, soft


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """(..., S, S, 3) uint8 -> (..., 3, S, S) float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(images, -1, -3))).float() / 255.0


def to_image(x: torch.Tensor) -> np.ndarray:
    """(3, S, S) float in [0, 1] -> (S, S, 3) uint8."""
    return (x.clamp(0, 1).permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)


@torch.no_grad()
def render_frames(model: VastRenderer, template_frame: Callable[[int], np.ndarray], template_meshes: np.ndarray,
                  src_idx: np.ndarray, targets: np.ndarray, speech: np.ndarray, *,
                  progress: Callable[[int], object] | None = None) -> Iterator[np.ndarray]:
    """Output frames: frame t is template frame ``src_idx[t]`` with its face redrawn for ``targets[t]``.

    Args:
        template_frame: index -> (H, W, 3) uint8 template frame; template_meshes: (N, 478, 3) their pixel meshes.
        targets: (T, 478, 3) pixel meshes of the output frames (the template's pose, generated expression).
        speech: (T, D) speech features of the output frames; the LSTM runs through them in order.
    """
    size = model.config.size
    fcs: list[FaceCrop] = track_crop_params(template_meshes, size=size)
    state = None
    for t, k in enumerate(src_idx):
        frame, fc = template_frame(int(k)), fcs[int(k)]
        crop = cut(frame, fc)
        sketch, background, mask = frame_inputs(crop, fc.to_crop(targets[t]), fc.to_crop(template_meshes[k]))
        out, state = model(to_tensor(sketch)[None, None], to_tensor(background)[None, None],
                           torch.from_numpy(speech[t:t + 1]).float()[None], state)
        face = composite(out[0, 0], to_tensor(crop), torch.from_numpy(mask)[None])
        yield paste_back(frame, to_image(face), fc, mask)
        if progress is not None:
            progress(1)
