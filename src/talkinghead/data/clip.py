"""The preprocessed clip format shared by ``preprocess``, ``synth`` and the datasets.

A dataset folder holds ``clips/<clip_id>/data.npz`` + ``meta.json`` per clip, ``splits/{train,val,test}.txt``
and ``summary.json``. Every per-frame array is at :data:`DATA_FPS`; face crops are JPEG-encoded.
A clip folder appears only when complete (written under a temporary name, then renamed).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from talkinghead.constants import CROP_SIZE, DATA_FPS

FORMAT_VERSION = 2
"""2: clips store their rest shape (``neutral``); format-1 clips load with the clip mean as it."""
JPEG_QUALITY = 92
SPLITS = ("train", "val", "test")


@dataclass
class ClipData:
    """One preprocessed clip (T frames at DATA_FPS).

    Attributes:
        clip_id, speaker, split: identifiers; split is one of SPLITS.
        jpeg: (B,) uint8 concatenated JPEG crops; offsets: (T + 1,) int64 byte offsets.
        crop_matrices: (T, 2, 3) float32 source-frame pixels -> crop pixels.
        meshes: (T, 478, 3) float32 mesh in crop pixels (z scaled like x).
        canonical: (T, 478, 3) float32 pose-free meshes (canonical units).
        neutral: (478, 3) float32 pose-free rest shape the expression coefficients are offsets from: the
            clip mean for real clips, the source photo's own mesh for synthetic ones (so a held smile
            stays in the coefficients).
        rotation: (T, 3, 3), translation: (T, 3), scale: (T,) float32 head pose in source-frame pixels.
        expression: (T, K) float32 coefficients of the face model named in meta; identity: (I,) float32.
        blink: (T,) float32 eyelid closure 0 (open) .. 1 (closed).
        audio: (N,) int16 mono at 16 kHz, covering the T frames.
        mel_styletalker: (F1, 80), mel_iplap: (F2, 80) float32 (see talkinghead.audio.mel).
        phone_ids: (T,) int64 phone per frame; phones: (P,) int64, phone_starts/phone_ends: (P,) float64 s.
        loudness_db: (T,) float32; voiced: (T,) bool.
        identity_embedding: (128,) float32 dlib embedding (NaN when dlib found no face).
        whisper: (T, 384) Whisper tiny.en encoder features at DATA_FPS (stored float16; None in clips written
            before they were stored: :func:`talkinghead.train.datasets.clip_speech` then computes them).
        whisper3: (T, 384) the encoder's third block at DATA_FPS (the ``whisper3`` speech kind; float16; None in
            clips written before it was stored, computed then the same way).
        meta: source, labels, transcript, phoneme method, face model, format version.
    """

    clip_id: str
    speaker: str
    split: str
    jpeg: np.ndarray
    offsets: np.ndarray
    crop_matrices: np.ndarray
    meshes: np.ndarray
    canonical: np.ndarray
    neutral: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    scale: np.ndarray
    expression: np.ndarray
    identity: np.ndarray
    blink: np.ndarray
    audio: np.ndarray
    mel_styletalker: np.ndarray
    mel_iplap: np.ndarray
    phone_ids: np.ndarray
    phones: np.ndarray
    phone_starts: np.ndarray
    phone_ends: np.ndarray
    loudness_db: np.ndarray
    voiced: np.ndarray
    identity_embedding: np.ndarray
    whisper: np.ndarray | None = None
    whisper3: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    ARRAYS = ("jpeg", "offsets", "crop_matrices", "meshes", "canonical", "neutral", "rotation", "translation", "scale",
              "expression", "identity", "blink", "audio", "mel_styletalker", "mel_iplap", "phone_ids", "phones",
              "phone_starts", "phone_ends", "loudness_db", "voiced", "identity_embedding", "whisper",
              "whisper3")

    @property
    def n_frames(self) -> int:
        return len(self.offsets) - 1

    @property
    def duration(self) -> float:
        return self.n_frames / DATA_FPS

    def frames(self, indices: np.ndarray | list[int]) -> np.ndarray:
        """Decoded face crops: (len(indices), S, S, 3) uint8 RGB, S = CROP_SIZE as preprocessing writes them (a
        crop corpus, :func:`talkinghead.train.datasets.crop_corpus`, stores smaller ones)."""
        images = [cv2.imdecode(self.jpeg[self.offsets[i]:self.offsets[i + 1]], cv2.IMREAD_COLOR)[:, :, ::-1]
                  for i in indices]
        return np.stack(images) if images else np.empty((0, CROP_SIZE, CROP_SIZE, 3), np.uint8)


def encode_frames(crops: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """JPEG-encode RGB crops: (concatenated bytes, (T + 1,) offsets)."""
    parts = [cv2.imencode(".jpg", c[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])[1].reshape(-1)
             for c in crops]
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)
    return np.concatenate(parts).astype(np.uint8), offsets


def clip_dir(root: Path, clip_id: str) -> Path:
    return root / "clips" / clip_id


def save_clip(root: Path, clip: ClipData, *, compressed: bool = False) -> Path:
    """Write a clip atomically: it appears under clips/<clip_id> only once complete (``compressed``: a deflated
    npz)."""
    final = clip_dir(root, clip.clip_id)
    tmp = final.parent / f".{clip.clip_id}.partial-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    write = np.savez_compressed if compressed else np.savez
    write(tmp / "data.npz", **{k: getattr(clip, k) for k in ClipData.ARRAYS if getattr(clip, k) is not None})
    meta = {**clip.meta, "clip_id": clip.clip_id, "speaker": clip.speaker, "split": clip.split,
            "frames": clip.n_frames, "fps": DATA_FPS, "format": FORMAT_VERSION}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    return final


def load_clip(path: Path) -> ClipData:
    """Read a clip folder written by :func:`save_clip`."""
    meta = json.loads((path / "meta.json").read_text())
    with np.load(path / "data.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in ClipData.ARRAYS if k in z}
    # float16 on disk: Whisper features, a crop corpus's meshes
    arrays = {k: v.astype(np.float32) if v.dtype == np.float16 else v for k, v in arrays.items()}
    if "neutral" not in arrays:  # format 1
        arrays["neutral"] = arrays["canonical"].mean(0)
    return ClipData(clip_id=meta["clip_id"], speaker=meta["speaker"], split=meta["split"], meta=meta, **arrays)


def list_clips(root: Path, split: str | None = None) -> list[str]:
    """Clip ids of a dataset folder (from its split file, or every complete clip folder)."""
    if split is not None:
        path = root / "splits" / f"{split}.txt"
        return [line for line in path.read_text().split() if line] if path.exists() else []
    base = root / "clips"
    return sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")) if base.is_dir() else []


def write_splits(root: Path) -> dict[str, int]:
    """(Re)write splits/*.txt from the clips' meta; returns clips per split."""
    by_split: dict[str, list[str]] = {s: [] for s in SPLITS}
    for cid in list_clips(root):
        meta = json.loads((clip_dir(root, cid) / "meta.json").read_text())
        by_split[meta["split"]].append(cid)
    (root / "splits").mkdir(parents=True, exist_ok=True)
    for s, ids in by_split.items():
        (root / "splits" / f"{s}.txt").write_text("".join(f"{i}\n" for i in sorted(ids)))
    return {s: len(v) for s, v in by_split.items()}
