"""Fit the viseme engine's assets from real talking-face videos.

For every clip: 478-point mesh per frame, pose removed, mouth features measured, and the clip's
own audio aligned into phones with the same pipeline used at inference. From all clips:

1. the canonical mesh (generalised Procrustes mean; ``face/assets/canonical_mesh_v1.npz``);
2. the articulation basis: least-squares mesh offsets per unit change of each mouth feature
   (lower face only, per-clip centred);
3. per-phone mouth targets: mean features at phone centres relative to each clip's rest shape,
   shrunk toward the phone's viseme class mean; p/b/m are pinned to closed lips. Short pauses
   inside speech ("SIL" phones) keep their measured, usually parted, lips: real silence is
   closed by voice activity at inference;
4. the audio-visual lag maximising the correlation of the synthesised and measured lip gap.

Run by ``talkinghead calibrate CLIP_OR_DIR ...``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talkinghead.audio.phonemes import PHONE_INDEX, PHONES, PhonemeTimeline, phoneme_timeline
from talkinghead.face import indices as ix
from talkinghead.face.expression import GAP, MOUTH_FEATURES, ExpressionBasis, mouth_features
from talkinghead.face.mesh import track_video
from talkinghead.face.pose import CANONICAL_ASSET, pose_free, procrustes_mean
from talkinghead.io import load_audio
from talkinghead.motion.viseme.config import VISEME_CLASSES
from talkinghead.motion.viseme.model import CALIBRATION_ASSET, VisemeCalibration, articulation
from talkinghead.spec import Command

SHRINKAGE = 5.0
"""Pseudo-count pulling a rare phone's target toward its class mean."""
LAGS = np.arange(-0.10, 0.101, 0.02)
WORK_SIZE = 720
"""Videos are meshed at most this large (longer side)."""


@dataclass
class Clip:
    """One calibration clip: pixel meshes (T, 478, 3), fps, phone timeline."""

    name: str
    meshes: np.ndarray
    fps: float
    timeline: PhonemeTimeline


def load_clip(path: Path, *, quiet: bool = False) -> Clip:
    """Mesh and align one talking clip."""
    video, track = track_video(path, label=f"mesh {path.name}", max_side=WORK_SIZE, quiet=quiet)
    audio = load_audio(path)
    return Clip(path.name, track.meshes, video.fps, phoneme_timeline(audio))


def lower_face_weight(canonical: np.ndarray) -> np.ndarray:
    """(478,) 0 at and above the eyes, rising to 1 at the nose tip and below."""
    y = canonical[:, 1]
    y_eyes = canonical[ix.OUTER_EYE_CORNERS, 1].mean()
    return np.clip((y - y_eyes) / (canonical[ix.NOSE_TIP, 1] - y_eyes), 0.0, 1.0)


def _phone_samples(clip_feats: list[np.ndarray], clips: list[Clip], lag: float) -> list[list[np.ndarray]]:
    samples: list[list[np.ndarray]] = [[] for _ in PHONES]
    for f, clip in zip(clip_feats, clips):
        tl = clip.timeline
        for p, s, e in zip(tl.phones, tl.starts, tl.ends):
            k = int(round(((s + e) / 2 - lag) * clip.fps - 0.5))
            if 0 <= k < len(f):
                samples[PHONE_INDEX[p]].append(f[k])
    return samples


def phone_targets(samples: list[list[np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Per-phone mean targets shrunk toward their class means; closures pinned shut."""
    n_feat = len(MOUTH_FEATURES)
    counts = np.array([len(s) for s in samples], np.int64)
    means = np.array([np.mean(s, 0) if s else np.zeros(n_feat) for s in samples])
    targets = np.zeros((len(PHONES), n_feat))
    for phones in VISEME_CLASSES.values():
        idx = [PHONE_INDEX[p] for p in phones]
        pooled = [x for i in idx for x in samples[i]]
        cls_mean = np.mean(pooled, 0) if pooled else np.zeros(n_feat)
        for i in idx:
            targets[i] = (counts[i] * means[i] + SHRINKAGE * cls_mean) / (counts[i] + SHRINKAGE)
    for p in VISEME_CLASSES["closure"]:
        targets[PHONE_INDEX[p], GAP] = 0.0
    targets[:, GAP] = np.maximum(targets[:, GAP], 0.0)
    return targets, counts


def fit(clips: list[Clip]) -> tuple[np.ndarray, VisemeCalibration]:
    """Fit (canonical mesh (478, 3), calibration) from meshed and aligned clips."""
    sample = np.concatenate([c.meshes[:: max(1, len(c.meshes) // 60)] for c in clips])
    canonical = procrustes_mean(sample)
    norm = [pose_free(c.meshes, canonical) for c in clips]
    feats = [mouth_features(n) for n in norm]

    # articulation basis: per-clip centred regression of mesh offsets on feature changes
    f_c = np.concatenate([f - f.mean(0) for f in feats])
    m_c = np.concatenate([(n - n.mean(0)).reshape(len(n), -1) for n in norm])
    coef, *_ = np.linalg.lstsq(f_c, m_c, rcond=None)
    components = coef.reshape(len(MOUTH_FEATURES), *canonical.shape) * lower_face_weight(canonical)[None, :, None]
    lips = m_c.reshape(len(m_c), -1, 3)[:, ix.LIPS_ALL]
    pred = (f_c @ components.reshape(len(MOUTH_FEATURES), -1)).reshape(len(m_c), -1, 3)[:, ix.LIPS_ALL]
    r2 = 1.0 - float(((lips - pred) ** 2).sum() / (lips**2).sum())

    # offsets from each clip's rest shape; the lip gap relative to the clip's median gap plus the
    # median over clips, so speakers with habitually parted lips do not bias the pooled targets
    gap_c = f_c[:, GAP]
    gap_direction = (f_c * gap_c[:, None]).sum(0) / (gap_c**2).sum()
    typical_gap = float(np.median([np.median(f[:, GAP]) for f in feats]))
    deltas = []
    for f in feats:
        d = f - np.median(f - f[:, GAP:GAP + 1] * gap_direction, axis=0)
        d[:, GAP] = f[:, GAP] - np.median(f[:, GAP]) + typical_gap
        deltas.append(d)

    best = (-np.inf, 0.0, None, None)
    for lag in LAGS:
        targets, counts = phone_targets(_phone_samples(deltas, clips, lag))
        corrs = []
        for d, clip in zip(deltas, clips):
            synth = articulation(clip.timeline, targets, fps=clip.fps, n_frames=len(d), lag=lag)
            corrs.append(float(np.corrcoef(synth[:, GAP], d[:, GAP])[0, 1]))
        if np.mean(corrs) > best[0]:
            best = (float(np.mean(corrs)), float(lag), targets, counts)
    score, lag, targets, counts = best
    lag = round(lag, 3)
    card = {
        "version": 1,
        "basis": "articulation_v1",
        "made_by": "talkinghead calibrate",
        "clips": [{"name": c.name, "frames": int(len(c.meshes)), "fps": round(c.fps, 3),
                   "phones": len(c.timeline.phones), "method": c.timeline.method} for c in clips],
        "frames": int(sum(len(c.meshes) for c in clips)),
        "canonical_meshes": int(len(sample)),
        "phone_samples": int(counts.sum()),
        "lag_seconds": lag,
        "lip_gap_correlation_fit": round(score, 4),
        "typical_speaking_lip_gap": round(typical_gap, 4),
        "basis_lip_r2": round(r2, 4),
        "features": list(MOUTH_FEATURES),
        "units": "canonical (outer eye-corner distance = 1)",
    }
    basis = ExpressionBasis("articulation_v1", MOUTH_FEATURES, components.astype(np.float32))
    return canonical, VisemeCalibration(targets, counts, gap_direction, basis, lag, card)


def clip_paths(inputs: list[str]) -> list[Path]:
    """Video files named directly or found (non-recursively) in named folders, sorted."""
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        out.extend(sorted(q for q in p.iterdir() if q.suffix.lower() in {".mp4", ".mov", ".mkv", ".mpg", ".avi"})
                   if p.is_dir() else [p])
    return out


def calibrate(inputs: list[str], *, canonical_out: Path, calibration_out: Path, quiet: bool = False) -> dict:
    """Mesh, align and fit; write both assets; return the calibration card."""
    clips = [load_clip(p, quiet=quiet) for p in clip_paths(inputs)]
    canonical, calibration = fit(clips)
    np.savez_compressed(canonical_out, mesh=canonical.astype(np.float32),
                        card=np.array(f"Generalised Procrustes mean of {calibration.card['canonical_meshes']} "
                                      f"MediaPipe meshes (about 60 per clip) from: {', '.join(c.name for c in clips)}"))
    calibration.save(calibration_out)
    return calibration.card


def _arguments(cal: argparse.ArgumentParser) -> None:
    cal.add_argument("clips", nargs="+", metavar="CLIP_OR_DIR", help="videos with their own speech, or folders of them")
    cal.add_argument("--canonical-out", type=Path, 
                     default=Path(__file__).parents[2] / "face" / "assets" / CANONICAL_ASSET)
    cal.add_argument("--calibration-out", type=Path, default=Path(__file__).parent / "assets" / CALIBRATION_ASSET)
    cal.add_argument("-q", "--quiet", action="store_true")


def _run(args: argparse.Namespace) -> int:
    card = calibrate(args.clips, canonical_out=args.canonical_out, calibration_out=args.calibration_out,
                     quiet=args.quiet)
    print(json.dumps(card, indent=1))
    return 0


COMMAND = Command(description="Mesh and align real talking clips and fit the canonical mesh and the viseme "
                              "calibration (writes the package assets by default).", arguments=_arguments, run=_run)
