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
4. the audio-visual lag maximising the correlation of the synthesised and measured lip gap;
5. when every clip has Whisper features (and there are at least two clips), the speech map: ridge regression
   from a window of Whisper tiny.en encoder features (the output of its third block,
   :data:`~talkinghead.audio.whisper_encoder.SPEECH_MAP_BLOCK`; each clip's own mean removed) to the
   measured mouth features, how much of it to blend into the phone shapes
   (:meth:`~talkinghead.motion.viseme.model.VisemeCalibration.mouth_deltas`) and the shortest pause that closes
   the mouth with it, chosen by the lip-gap correlation of out-of-fold predictions (folds of whole clips); and the
   gain that gives the engine's output the measured lip gap's spread
   (:attr:`~talkinghead.motion.viseme.model.SpeechMap.gain`).

Inputs are videos (meshed and aligned here) or ``talkinghead preprocess`` output folders (their meshes, phones,
loudness and voice activity are used as stored; the Whisper features are computed from their audio). Run by
``talkinghead calibrate CLIP_OR_DIR ...``; the shipped calibration was fitted on ``../shared/media/train`` only (see
the README), keeping the shipped canonical mesh.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talkinghead.audio.features import features_from_timeline
from talkinghead.audio.phonemes import PHONE_INDEX, PHONES, PhonemeTimeline, phoneme_timeline
from talkinghead.audio.speechmap import fit_window_ridge
from talkinghead.audio.whisper_encoder import BLOCKS, SPEECH_MAP_BLOCK, whisper_block_features
from talkinghead.constants import DATA_FPS
from talkinghead.data.clip import clip_dir, list_clips
from talkinghead.data.clip import load_clip as load_data_clip
from talkinghead.face import indices as ix
from talkinghead.face.expression import GAP, MOUTH_FEATURES, ExpressionBasis, mouth_features
from talkinghead.face.mesh import track_video
from talkinghead.face.pose import CANONICAL_ASSET, canonical_mesh, pose_free, procrustes_mean
from talkinghead.io import load_audio
from talkinghead.motion.viseme.config import PHONES_CLOSED_PAUSE, VISEME_CLASSES, VisemeConfig
from talkinghead.motion.viseme.infer import shape_mouth
from talkinghead.motion.viseme.model import CALIBRATION_ASSET, SpeechMap, VisemeCalibration, articulation, closure_hold
from talkinghead.progress import bar
from talkinghead.spec import Command

SHRINKAGE = 5.0
"""Pseudo-count pulling a rare phone's target toward its class mean."""
LAGS = np.arange(-0.10, 0.101, 0.02)
WORK_SIZE = 720
"""Videos are meshed at most this large (longer side)."""


MAP_WINDOW = 6
"""The speech map reads Whisper features this many frames either side of each frame."""
MAP_DIMS: int | None = None
"""Principal components of the Whisper features the map reads; None: all 384 features as they are (each windowed
input standardised before the penalty). The penalty then shrinks the features' weak directions instead of giving
every kept component the same weight: the engine's out-of-fold lip gap on ``train/`` 0.5616 with 192 components,
0.5643 with none (``visemes_v5``; see the README, "The speech map without its PCA")."""
MAP_CENTRE = True
"""Each utterance's Whisper features lose their own mean before the map
(:attr:`talkinghead.audio.speechmap.WindowRidge.centre`)."""
MAP_ALPHAS = (1e3, 1e4, 3e4, 1e5, 3e5)
MAP_BLENDS = (0.0, 0.25, 0.5, 0.75, 1.0)
MAP_FOLDS = 5
MAP_PAUSES = (0.5, 1.0, 2.0)
"""Shortest pauses (s) that close the mouth, tried with the map (in shorter ones the map shapes the lips)."""


@dataclass
class Clip:
    """One calibration clip: pixel meshes (T, 478, 3), fps, phone timeline, per-frame loudness (dB) and voice
    activity (T,), and Whisper encoder features (T, 384) or None."""

    name: str
    meshes: np.ndarray
    fps: float
    timeline: PhonemeTimeline
    loudness_db: np.ndarray
    voiced: np.ndarray
    whisper: np.ndarray | None


def load_clip(path: Path, *, quiet: bool = False) -> Clip:
    """Mesh and analyse one talking clip (phones, loudness, voice activity, Whisper features)."""
    video, track = track_video(path, label=f"mesh {path.name}", max_side=WORK_SIZE, quiet=quiet)
    audio = load_audio(path)
    n = len(track.meshes)
    features = features_from_timeline(audio, phoneme_timeline(audio), fps=video.fps)
    return Clip(path.name, track.meshes, video.fps, features.phonemes, _frames(features.loudness_db, n),
                _frames(features.voiced, n), _map_features(audio, video.fps, n))


def _map_features(audio: np.ndarray, fps: float, n: int) -> np.ndarray:
    """The Whisper features the speech map reads, of (N,) float32 16 kHz audio, for n frames at ``fps``."""
    return whisper_block_features(audio, fps=fps, n_frames=n, block=SPEECH_MAP_BLOCK)


def _frames(x: np.ndarray, n: int) -> np.ndarray:
    """``x`` cut or edge-padded to n frames (the audio and the video of a clip may differ by a frame)."""
    return np.pad(x[:n], (0, max(0, n - len(x))), mode="edge")


def dataset_clips(root: Path, *, quiet: bool = False) -> list[Clip]:
    """Every clip of a ``talkinghead preprocess`` output folder, as stored (25 fps), with the speech map's Whisper
    features computed from its audio (the stored ones are CTranslate2's last layer, which the learned families
    read)."""
    out = []
    ids = list_clips(root)
    with bar(len(ids), f"Whisper features of {root.name}", quiet=quiet, unit="clip") as progress:
        for cid in ids:
            c = load_data_clip(clip_dir(root, cid))
            tl = PhonemeTimeline([PHONES[i] for i in c.phones], c.phone_starts, c.phone_ends,
                                 c.meta.get("phonemes", ""))
            whisper = _map_features(c.audio.astype(np.float32) / 32767, float(DATA_FPS), len(c.meshes))
            out.append(Clip(c.clip_id, c.meshes, float(DATA_FPS), tl, c.loudness_db, c.voiced, whisper))
            progress.update()
    return out


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


def fit(clips: list[Clip], *, canonical: np.ndarray | None = None) -> tuple[np.ndarray, VisemeCalibration]:
    """Fit (canonical mesh (478, 3), calibration) from meshed and aligned clips.

    Args:
        canonical: the canonical mesh to measure in (default: the generalised Procrustes mean of the clips).
    """
    sample = np.concatenate([c.meshes[:: max(1, len(c.meshes) // 60)] for c in clips])
    if canonical is None:
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
    speech_map, map_card = (fit_speech_map(clips, deltas, feats, targets, lag)
                            if len(clips) > 1 and all(c.whisper is not None for c in clips) else (None, None))
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
        **({"speech_map": map_card} if map_card else {}),
    }
    basis = ExpressionBasis("articulation_v1", MOUTH_FEATURES, components.astype(np.float32))
    return canonical, VisemeCalibration(targets, counts, gap_direction, basis, lag, card, speech_map)


def fit_speech_map(clips: list[Clip], deltas: list[np.ndarray], feats: list[np.ndarray], targets: np.ndarray,
                   lag: float) -> tuple[SpeechMap, dict]:
    """The Whisper speech map (see the module docstring, step 5) and its card entry.

    The penalty, the blend and the shortest pause that closes the mouth are chosen by the mean lip-gap correlation,
    with the measured gap, of the engine's shaped output (loudness gain and pause gate included) when each clip's
    map prediction comes from a ridge fitted without its fold. With those, the gain is the measured lip gap's spread
    over that output's (:func:`spread_gain`)."""
    phone = [articulation(c.timeline, targets, fps=c.fps, n_frames=len(d), lag=lag) for c, d in zip(clips, deltas)]
    hold = [closure_hold(c.timeline, fps=c.fps, n_frames=len(d), lag=lag) for c, d in zip(clips, deltas)]
    xs = [c.whisper for c in clips]
    folds = np.arange(len(clips)) % MAP_FOLDS

    def gaps(predicted: list[np.ndarray], blend: float, pause: float) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per clip: (the engine's shaped lip gap, the measured one)."""
        config = VisemeConfig(closed_pause=pause)
        out = []
        for c, f, p, h, q in zip(clips, feats, phone, hold, predicted):
            shaped = shape_mouth(SpeechMap.mix(p, q, h, blend), c.loudness_db, c.voiced, fps=c.fps, config=config)
            out.append((shaped[:, GAP], f[:, GAP]))
        return out

    def score(predicted: list[np.ndarray], blend: float, pause: float) -> float:
        return float(np.mean([np.corrcoef(g, m)[0, 1] for g, m in gaps(predicted, blend, pause)]))

    results, oofs = {}, {}
    for alpha in MAP_ALPHAS:
        oof: list[np.ndarray] = [np.empty(0)] * len(clips)
        for k in range(min(MAP_FOLDS, len(clips))):
            inside = [i for i in range(len(clips)) if folds[i] != k]
            ridge = fit_window_ridge([xs[i] for i in inside], [deltas[i] for i in inside], window=MAP_WINDOW,
                                     alpha=alpha, dims=MAP_DIMS, centre=MAP_CENTRE)
            for i in np.nonzero(folds == k)[0]:
                oof[i] = ridge.predict(xs[i])
        oofs[alpha] = oof
        for blend in MAP_BLENDS:
            for pause in MAP_PAUSES:
                results[(alpha, blend, pause)] = score(oof, blend, pause)
    alpha, blend, pause = max(results, key=results.get)
    gain = spread_gain(*zip(*gaps(oofs[alpha], blend, pause)))
    ridge = fit_window_ridge(xs, deltas, window=MAP_WINDOW, alpha=alpha, dims=MAP_DIMS, centre=MAP_CENTRE)
    card = {"features": f"Whisper tiny.en encoder, output of block {SPEECH_MAP_BLOCK} of {BLOCKS}, 25 fps",
            "window_frames": MAP_WINDOW, "pca_dims": MAP_DIMS,
            "centred_per_utterance": MAP_CENTRE,
            "alpha": alpha, "blend": blend, "closed_pause": pause, "folds": MAP_FOLDS,
            "out_of_fold_lip_gap_correlation": round(results[(alpha, blend, pause)], 4),
            "out_of_fold_lip_gap_correlation_by_closed_pause": {
                str(p): round(results[(alpha, blend, p)], 4) for p in MAP_PAUSES},
            "out_of_fold_lip_gap_correlation_phones_only": round(results[(alpha, 0.0, PHONES_CLOSED_PAUSE)], 4),
            "spread_gain": round(gain, 4)}
    return SpeechMap(ridge, blend, gain, pause, SPEECH_MAP_BLOCK), card


def spread_gain(shaped: Sequence[np.ndarray], measured: Sequence[np.ndarray]) -> float:
    """How much wider the measured lip gap moves than the shaped one, both within each clip (the clips' (T,) pairs
    in order): the root of the ratio of their frame-weighted mean variances."""
    return float(np.sqrt(sum(m.var() * len(m) for m in measured) / sum(g.var() * len(g) for g in shaped)))


def clip_paths(inputs: list[str]) -> list[Path]:
    """Video files named directly or found (non-recursively) in named folders, and preprocessed dataset folders
    (those holding ``clips/``) as they are, sorted."""
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir() and not (p / "clips").is_dir():
            out.extend(sorted(q for q in p.iterdir() if q.suffix.lower() in {".mp4", ".mov", ".mkv", ".mpg", ".avi"}))
        else:
            out.append(p)
    return out


def calibrate(inputs: list[str], *, canonical_out: Path | None, calibration_out: Path, quiet: bool = False,
              terms: str = "") -> dict:
    """Mesh, align and fit; write the calibration, and the canonical mesh refitted from the clips when
    ``canonical_out`` is given (else the shipped canonical mesh is kept and measured in); return the card, which
    names the inputs and the ``terms`` their data carries. Clips without voice activity (a driving video without
    speech) are skipped: the engine keeps their mouths closed, so they hold nothing to fit the mouth's motion on."""
    clips: list[Clip] = []
    for p in clip_paths(inputs):
        clips.extend(dataset_clips(p, quiet=quiet) if (p / "clips").is_dir() else [load_clip(p, quiet=quiet)])
    silent = [c.name for c in clips if not c.voiced.any()]
    for name in silent:
        print(f"calibrate: {name}: no voice activity, skipped", file=sys.stderr)
    clips = [c for c in clips if c.voiced.any()]
    if not clips:
        raise ValueError(f"no clip with speech in {', '.join(inputs)}")
    canonical, calibration = fit(clips, canonical=None if canonical_out else canonical_mesh())
    calibration.card.update(inputs=list(inputs), canonical="refitted" if canonical_out else "shipped", terms=terms,
                            skipped_without_speech=silent)
    if canonical_out:
        np.savez_compressed(canonical_out, mesh=canonical.astype(np.float32),
                            card=np.array(f"Generalised Procrustes mean of {calibration.card['canonical_meshes']} "
                                          f"MediaPipe meshes (about 60 per clip) from: "
                                          f"{', '.join(c.name for c in clips)}"))
    calibration.save(calibration_out)
    return calibration.card


def _arguments(cal: argparse.ArgumentParser) -> None:
    cal.add_argument("clips", nargs="+", metavar="CLIP_OR_DIR",
                     help="videos with their own speech, folders of them, or talkinghead preprocess output folders")
    cal.add_argument("--canonical-out", type=Path, default=None,
                     help="also refit the canonical mesh from the clips and write it here (the package's is "
                          f"face/assets/{CANONICAL_ASSET}; default: keep the shipped one)")
    cal.add_argument("--calibration-out", type=Path, default=Path(__file__).parent / "assets" / CALIBRATION_ASSET)
    cal.add_argument("--terms", default="", help="the terms the clips' data carries, for the card (e.g. "
                                                  "'non-commercial research: First Impressions, MEAD')")
    cal.add_argument("-q", "--quiet", action="store_true")


def _run(args: argparse.Namespace) -> int:
    card = calibrate(args.clips, canonical_out=args.canonical_out, calibration_out=args.calibration_out,
                     quiet=args.quiet, terms=args.terms)
    print(json.dumps(card, indent=1))
    return 0


COMMAND = Command(description="Mesh and align real talking clips and fit the canonical mesh and the viseme "
                              "calibration (writes the package assets by default).", arguments=_arguments, run=_run)
