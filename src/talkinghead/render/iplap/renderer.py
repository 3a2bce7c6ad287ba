"""IP_LAP inference: predicted lip/jaw landmarks + the face's own upper half -> lower-half completion of
every frame, pasted back into the full frames through a feathered lower-face mask."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import cv2
import numpy as np
import torch

from talkinghead.face import indices as ix
from talkinghead.face.crop import FaceCrop, cut, paste_back, track_crop_params
from talkinghead.render.iplap.landmarks import N_POSE, RENDER_MARGIN, pick_references
from talkinghead.render.iplap.model import IPLAPRenderer
from talkinghead.render.iplap.sketch import draw_sketch
from talkinghead.spec import LipPredictor
from talkinghead.sync.inputs import visual_tensor

MAX_REFERENCES = 25
"""IP_LAP inference: references = 1/5 of the video's frames, at most 25."""
MASK_FEATHER = 0.04
"""Sigma of the paste-back mask's Gaussian edge, as a share of the crop side."""


def lower_face_mask(points: list[np.ndarray], size: int) -> np.ndarray:
    """(size, size) float32 mask: the hull of the given (N, 2) crop-pixel point sets below the nose
    line (half the crop), with a Gaussian edge of MASK_FEATHER * size."""
    sigma = MASK_FEATHER * size
    mask = np.zeros((size, size), np.float32)
    hull = cv2.convexHull(np.round(np.concatenate(points)).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1.0)
    mask[: size // 2 + int(sigma)] = 0.0
    return cv2.GaussianBlur(mask, (0, 0), sigma)


def default_references(n_frames: int) -> int:
    """IP_LAP's renderer reference count for a video of ``n_frames`` distinct frames."""
    return int(np.clip(n_frames // 5, 1, MAX_REFERENCES))


def dub_frames(renderer: IPLAPRenderer, frame_at: Callable[[int], np.ndarray], meshes: np.ndarray, mels: np.ndarray,
               *, candidates: np.ndarray, references: int | None = None, lips: LipPredictor | None = None,
               batch: int = 8) -> Iterator[np.ndarray]:
    """Frames with the lower face regenerated from speech (IP_LAP: ``lips`` predicts lips and jaw from it),
    or drawn by the renderer from the lips and jaw of ``meshes`` (``lips=None``: another method's motion).

    Args:
        frame_at: output frame index -> (H, W, 3) uint8 frame whose upper face is kept.
        meshes: (T, 478, 3) face mesh of every output frame in frame pixels.
        mels: (T, 16, 80) mel window of every output frame.
        candidates: output frame indices that may serve as references (distinct source frames).
        references: renderer references (default: 1/5 of the candidates, at most 25).
        lips: lips and jaw predicted from the speech (IP_LAP's landmark generator; else those of ``meshes``).
        batch: frames rendered together.
    """
    size = renderer.config.size
    fcs = track_crop_params(meshes, size=size, margin=RENDER_MARGIN)
    points = np.stack([fc.to_crop(m[ix.IPLAP_REFERENCE]) / size for fc, m in zip(fcs, meshes)]).astype(np.float32)
    driven = points
    if lips is not None:
        driven = np.concatenate([points[:, :N_POSE], lips(points, candidates)], 1)
    n_refs = references or default_references(len(candidates))
    refs = candidates[pick_references(points[candidates], n_refs)]
    ref_images = visual_tensor(np.stack([cut(frame_at(int(r)), fcs[r]) for r in refs]))[None]
    ref_sketches = visual_tensor(np.stack([draw_sketch(points[r], size) for r in refs]))[None]
    sketches = np.stack([draw_sketch(p, size) for p in driven])
    k = renderer.config.frames // 2
    n = len(meshes)
    with torch.no_grad():
        encoded = renderer.alignment.encode(ref_images, ref_sketches)  # once per clip, not per batch
    for s in range(0, n, batch):
        ts = range(s, min(s + batch, n))
        frames = [frame_at(t) for t in ts]
        crops = np.stack([cut(f, fcs[t]) for f, t in zip(frames, ts)])
        window = np.clip(np.arange(-k, k + 1)[None] + np.array(ts)[:, None], 0, n - 1)
        with torch.no_grad():
            out, _ = renderer(visual_tensor(crops), visual_tensor(sketches[window]),
                              ref_images.expand(len(ts), -1, -1, -1, -1), ref_sketches.expand(len(ts), -1, -1, -1, -1),
                              torch.from_numpy(mels[list(ts)]), tuple(h.repeat(len(ts), 1, 1, 1) for h in encoded))
        generated = (out.permute(0, 2, 3, 1).numpy() * 255 + 0.5).clip(0, 255).astype(np.uint8)
        for f, t, g in zip(frames, ts, generated):
            yield _paste(f, g, fcs[t], points[t], driven[t])


def _paste(frame: np.ndarray, generated: np.ndarray, fc: FaceCrop, real: np.ndarray, driven: np.ndarray) -> np.ndarray:
    """Blend the generated crop's lower face (covering both the real and the driven jaw) into the frame."""
    size = fc.size
    mask = lower_face_mask([real[N_POSE:] * size, driven[N_POSE:] * size], size)
    return paste_back(frame, generated, fc, mask)
