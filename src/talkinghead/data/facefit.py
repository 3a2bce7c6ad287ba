"""``talkinghead fit-face-model``: fit the face coefficient model on preprocessed corpora."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from talkinghead.data.clip import clip_dir, list_clips, load_clip, save_clip
from talkinghead.face.model import FaceModel, fit_face_model, round_trip_error
from talkinghead.progress import bar


def _canonical(roots: list[Path], split: str | None) -> tuple[list[np.ndarray], list[str]]:
    meshes, names = [], []
    for root in roots:
        for cid in list_clips(root, split):
            with np.load(clip_dir(root, cid) / "data.npz", allow_pickle=False) as z:
                meshes.append(z["canonical"].astype(np.float64))
            names.append(f"{root.name}/{cid}")
    return meshes, names


def fit(roots: list[Path], output: Path, *, n_expression: int = 64, n_identity: int = 16) -> FaceModel:
    """Fit on the train splits of ``roots``, measure the round trip on their val + test splits (or on
    train when those are empty), write the model to ``output``."""
    train, names = _canonical(roots, "train")
    if not train:
        raise ValueError("no training clips found (run talkinghead preprocess first)")
    held = [m for s in ("val", "test") for m in _canonical(roots, s)[0]]
    model = fit_face_model(train, n_expression=n_expression, n_identity=n_identity, sources=names)
    errors = round_trip_error(model, held or train)
    model.card["round_trip_error"] = {k: round(v, 5) for k, v in errors.items()}
    model.card["round_trip_on"] = "val+test clips" if held else "train clips (no val/test clips)"
    model.card["round_trip_units"] = "mean vertex distance, canonical units (eye-corner distance = 1)"
    model.save(output)
    return model


def reencode(roots: list[Path], model: FaceModel, *, quiet: bool = False) -> int:
    """Rewrite every clip's identity and expression coefficients with ``model``; returns clips rewritten."""
    ids = [(root, cid) for root in roots for cid in list_clips(root)]
    with bar(len(ids), "re-encode", quiet=quiet, unit="clip") as pb:
        for root, cid in ids:
            clip = load_clip(clip_dir(root, cid))
            neutral = clip.neutral.astype(np.float64)
            clip.expression = model.encode_expression(clip.canonical.astype(np.float64), neutral)
            clip.identity = model.encode_identity(neutral).astype(np.float32)
            clip.meta["face_model"] = model.card.get("name", "")
            save_clip(root, clip)
            pb.update(1)
    return len(ids)
