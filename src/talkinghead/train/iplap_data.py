"""IP_LAP training items over preprocessed clips (see :mod:`talkinghead.data.clip`).

Every clip's landmarks (:mod:`talkinghead.render.iplap.landmarks`), mel windows and, for the
renderer, its render crops are computed once and kept in memory. Training items (every window
start) draw their reference frames anew at every visit; validation items are fixed per index.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from talkinghead.render.iplap.landmarks import N_POSE, subcrop_images, subcrop_points
from talkinghead.render.iplap.sketch import draw_sketch
from talkinghead.sync.inputs import visual_tensor
from talkinghead.train.datasets import _Windows, clip_speech_inputs


def reference_frames(rng: np.random.Generator, n_frames: int, n: int, *, exclude: range = range(0)) -> np.ndarray:
    """(n,) int64 random frames of a clip of ``n_frames`` frames outside ``exclude`` (IP_LAP's landmark
    references skip the target window), with repeats only when the clip has fewer than ``n`` others."""
    pool = np.setdiff1d(np.arange(n_frames), np.asarray(exclude, np.int64))
    return rng.choice(pool, n, replace=len(pool) < n)


AUGMENT_SCALE, AUGMENT_ANGLE, AUGMENT_SHIFT, AUGMENT_MEL = 0.1, 0.1, 0.03, 0.5
"""Landmark augmentation: scale 1 +- 0.1, rotation +- 0.1 rad about the crop centre, shift +- 0.03 of
the crop; mel windows raised by +- 0.5 (about 6 dB on the [-4, 4] scale)."""


def augment_landmarks(rng: np.random.Generator, points: list[np.ndarray], mels: np.ndarray | None
                      ) -> tuple[list[np.ndarray], np.ndarray | None]:
    """One random similarity transform applied to every (..., 2) point array of an item (so pose, references
    and targets stay consistent) and one random level shift of its (..., 16, 80) mel windows (when given)."""
    scale = 1.0 + rng.uniform(-AUGMENT_SCALE, AUGMENT_SCALE)
    angle = rng.uniform(-AUGMENT_ANGLE, AUGMENT_ANGLE)
    m = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]], np.float32)
    shift = rng.uniform(-AUGMENT_SHIFT, AUGMENT_SHIFT, 2).astype(np.float32)
    moved = [((p - 0.5) @ m.T + 0.5 + shift).astype(np.float32) for p in points]
    level = np.float32(rng.uniform(-AUGMENT_MEL, AUGMENT_MEL))
    return moved, None if mels is None else np.clip(mels + level, -4.0, 4.0)


class _IPLAPClips(_Windows):
    """Windows of ``length`` frames over clips whose points, speech inputs of kind ``speech`` (and crops at
    ``image_size``) are cached."""

    def __init__(self, roots: list[Path] | Path, split: str | None, *, length: int, stride: int, train: bool,
                 image_size: int | None, seed: int, speech: str = "mel",
                 exclude: frozenset[tuple[Path, str]] = frozenset()) -> None:
        super().__init__(roots, split, length=length, stride=stride, seed=seed, exclude=exclude)
        self.train, self.image_size, self.speech = train, image_size, speech
        self._calls = 0
        self._cache: dict[int, dict[str, np.ndarray]] = {}

    def clip_inputs(self, k: int) -> dict[str, np.ndarray]:
        """points (T, 131, 2), speech (T, ...) (:func:`talkinghead.train.datasets.clip_speech_inputs`; mels
        (T, 16, 80)) and, with an image size, crops (T, S, S, 3) uint8 of clip ``k``."""
        if k not in self._cache:
            clip = self.store.clip(k)
            inputs = {"points": subcrop_points(clip.meshes, clip.frames([0]).shape[1]),
                      "speech": clip_speech_inputs(self.speech, clip)}
            if self.image_size:
                inputs["crops"] = subcrop_images(clip.frames(range(clip.n_frames)), self.image_size)
            self._cache[k] = inputs
        return self._cache[k]

    def _rng(self, i: int) -> np.random.Generator:
        self._calls += 1
        return np.random.default_rng([self.seed, i] + ([self._calls] if self.train else []))


class LandmarkDataset(_IPLAPClips):
    """Stage 1 items for windows of T = ``frames`` frames. Keys: speech (T, ...) of kind ``speech`` (mels:
    (T, 16, 80)), pose (T, 74, 2), references (N_l, 131, 2) from random frames of the same clip outside the window,
    content (T, 57, 2) targets. ``augment`` (training only): :func:`augment_landmarks`. The clips in ``exclude``
    ((folder, clip id) pairs) are left out."""

    def __init__(self, roots: list[Path] | Path, split: str | None = "train", *, frames: int = 5,
                 references: int = 15, train: bool = False, augment: bool = False, seed: int = 0,
                 speech: str = "mel", exclude: frozenset[tuple[Path, str]] = frozenset()) -> None:
        super().__init__(roots, split, length=frames, stride=1 if train else frames, train=train, image_size=None,
                         seed=seed, speech=speech, exclude=exclude)
        self.frames, self.references, self.augment = frames, references, train and augment

    def __getitem__(self, i: int) -> dict:
        k, s = self.index[i]
        rng = self._rng(i)
        x = self.clip_inputs(k)
        refs = reference_frames(rng, len(x["points"]), self.references, exclude=range(s, s + self.frames))
        window, ref_pts, speech = x["points"][s:s + self.frames], x["points"][refs], x["speech"][s:s + self.frames]
        if self.augment:
            (window, ref_pts), mels = augment_landmarks(rng, [window, ref_pts], speech if self.speech == "mel" else None)
            speech = speech if mels is None else mels
        return {"speech": torch.from_numpy(speech), "pose": torch.from_numpy(window[:, :N_POSE]),
                "references": torch.from_numpy(ref_pts), "content": torch.from_numpy(window[:, N_POSE:])}


class RendererDataset(_IPLAPClips):
    """Stage 2 items: the centre frame of a window of ``frames`` (2k + 1) frames. Keys: target (3, S, S),
    sketches (frames, 3, S, S) of the window, refs and ref_sketches (N, 3, S, S) of N random frames
    of the same clip, mel (16, 80) window of the centre frame; images in [0, 1]."""

    def __init__(self, roots: list[Path] | Path, split: str | None = "train", *, size: int = 128,
                 frames: int = 5, references: int = 3, train: bool = False, seed: int = 0) -> None:
        super().__init__(roots, split, length=frames, stride=1 if train else frames, train=train, image_size=size,
                         seed=seed)
        self.size, self.frames, self.references = size, frames, references

    def __getitem__(self, i: int) -> dict:
        k, s = self.index[i]
        rng = self._rng(i)
        x = self.clip_inputs(k)
        pts, crops, centre = x["points"], x["crops"], s + self.frames // 2
        refs = reference_frames(rng, len(pts), self.references)
        window = range(s, s + self.frames)
        return {"target": visual_tensor(crops[centre]),
                "sketches": visual_tensor(np.stack([draw_sketch(pts[t], self.size) for t in window])),
                "refs": visual_tensor(crops[refs]),
                "ref_sketches": visual_tensor(np.stack([draw_sketch(pts[t], self.size) for t in refs])),
                "mel": torch.from_numpy(x["speech"][centre])}
