"""``talkinghead evaluate``: compare generated talking-head videos with references.

Per pair (frames matched by index, so both must have the same frame rate, else an error; the generated video
resized to the reference's size):

- PSNR, SSIM, MS-SSIM on 256 px face crops cut at the reference's face in each frame;
- CPBD sharpness of the generated crops (and of the reference's, for scale);
- LMD and mouth LMD: mean distance of all 478 / the 40 lip mesh points after removing each
  frame's pose by the Umeyama fit (canonical units x 100 = % of the eye-corner distance);
- CSIM: cosine similarity of dlib face embeddings, reference's first frame vs generated frames
  (dlib, not ArcFace: no ArcFace weights are available offline);
- AED / APD: mean L1 distance of face-model expression coefficients (each video's own neutral)
  and of head pose angles (degrees);
- mouth-opening correlation (Pearson, inner-lip gap), and its best over shifts of up to :data:`MOUTH_LAGS` frames
  (``mouth_corr_lag``: real clips carry their own audio/video offsets of a few frames, which cap the first);
- the mouth box (the reference's inner lips in the 256 px crop, grown by :data:`MOUTH_BOX_MARGIN` of the mouth
  width on every side): PSNR, SSIM and CPBD there (CPBD of the reference's too), and flicker: the mean absolute
  frame difference (grey levels) inside each video's own mouth box between consecutive frames whose lips do not
  move (lip points shift less than :data:`STILL_LIPS`), for the generated video and the reference;
- sync: LSE-D, LSE-C and the audio-visual offset (frames, positive = audio late) of our own SyncNet
  (:mod:`talkinghead.sync`; syncnet_python's weights are not available offline) against the speech
  (``audio``, else the generated video's audio track, else the reference's), for the generated video and
  (LSE-C) for the reference;
- diversity (VAST reports the diversity of the generated expressions; our reading): the temporal
  standard deviation of each face-model expression coefficient, averaged over coefficients, for the
  generated video and the reference.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from talkinghead.errors import InputError
from talkinghead.face import indices as ix
from talkinghead.face.crop import crop_face
from talkinghead.face.identity import FaceEmbedder
from talkinghead.face.mesh import track_faces
from talkinghead.face.model import default_face_model
from talkinghead.face.pose import fit_pose
from talkinghead.io import load_audio, read_video
from talkinghead.io.paths import require_file
from talkinghead.metrics.image import cpbd, luma, ms_ssim, psnr, ssim
from talkinghead.metrics.mouth import best_lag_pearson, mouth_opening, pearson
from talkinghead.progress import bar
from talkinghead.sync.metrics import score_video
from talkinghead.sync.model import SyncNet

METRICS = ("psnr", "ssim", "ms_ssim", "cpbd", "cpbd_ref", "mouth_psnr", "mouth_ssim", "mouth_cpbd",
           "mouth_cpbd_ref", "flicker", "flicker_ref", "lmd", "mouth_lmd", "csim", "aed", "apd", "mouth_corr",
           "mouth_corr_lag",
           "lse_d", "lse_c", "lse_c_ref", "offset", "diversity", "diversity_ref")
HIGHER_IS_BETTER = {"psnr", "ssim", "ms_ssim", "cpbd", "cpbd_ref", "mouth_psnr", "mouth_ssim", "mouth_cpbd",
                    "mouth_cpbd_ref", "csim", "mouth_corr", "mouth_corr_lag", "lse_c", "lse_c_ref", "diversity", "diversity_ref"}
ZERO_IS_BEST = {"offset"}
MOUTH_LAGS = 3
"""``mouth_corr_lag`` allows shifts of up to this many frames either way."""
CPBD_EVERY = 5
"""CPBD (slow) is measured on every 5th frame."""
MAX_SIDE = 720
MOUTH_BOX_MARGIN = 0.15
"""The mouth box is the inner lips' bounding box grown by this fraction of the mouth width on every side."""
STILL_LIPS = 0.006
"""Lips whose points move less than this between two frames (mean, canonical units: eye-corner distance = 1) are
still (flicker is measured there)."""


def mouth_box(crop_mesh: np.ndarray, size: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the mouth box of a (478, >=2) mesh in a ``size`` crop's pixels."""
    inner = crop_mesh[ix.MOUTH_INNER_LOOP, :2]
    pad = MOUTH_BOX_MARGIN * float(np.linalg.norm(crop_mesh[ix.MOUTH_CORNERS[1], :2] - crop_mesh[ix.MOUTH_CORNERS[0], :2]))
    x0, y0 = np.floor(inner.min(0) - pad).astype(int)
    x1, y1 = np.ceil(inner.max(0) + pad).astype(int)
    return max(x0, 0), max(y0, 0), min(x1, size), min(y1, size)


def mouth_flicker(frames: np.ndarray, meshes: np.ndarray, free: np.ndarray) -> float:
    """Mean absolute grey-level difference inside the mouth box (256 px face crop of the later frame) between
    consecutive frames whose lips are still (:data:`STILL_LIPS`); NaN when none are."""
    lips = free[:, ix.LIPS_ALL, :2] - free[:, ix.MOUTH_CORNERS, :2].mean(1, keepdims=True)
    moved = np.linalg.norm(np.diff(lips, axis=0), axis=-1).mean(1)
    diffs = []
    for t in np.flatnonzero(moved < STILL_LIPS) + 1:
        a, fc = crop_face(frames[t], meshes[t], size=256)
        b = cv2.warpAffine(frames[t - 1], fc.matrix, (256, 256), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
        x0, y0, x1, y1 = mouth_box(fc.to_crop(meshes[t].astype(np.float64)), 256)
        diffs.append(float(np.abs(luma(a[y0:y1, x0:x1]) - luma(b[y0:y1, x0:x1])).mean()))
    return float(np.mean(diffs)) if diffs else float("nan")


def pose_free_and_angles(meshes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(meshes (T, 478, 3) in the canonical frame, head angles (T, 3): Euler xyz in degrees) of meshes (T, 478, 3)."""
    poses = [fit_pose(m) for m in meshes]
    free = np.stack([p.to_canonical(m.astype(np.float64)) for p, m in zip(poses, meshes)])
    angles = np.rad2deg(Rotation.from_matrix(np.stack([p.rotation for p in poses])).as_euler("xyz"))
    return free, angles


def _speech(generated: Path, reference: Path, audio: Path | None) -> np.ndarray:
    """The speech a generated video should match: ``audio``, else its own track, else the reference's."""
    if audio is not None:
        return load_audio(audio)
    try:
        return load_audio(generated)
    except InputError as exc:
        if "no audio" not in exc.problem:
            raise
    return load_audio(reference)


def evaluate_pair(generated: Path, reference: Path, *, embedder: FaceEmbedder, syncnet: SyncNet,
                  audio: Path | None = None) -> dict:
    """All metrics of one generated video against its reference (see the module docstring)."""
    ref = read_video(reference, max_side=MAX_SIDE)
    gen = read_video(generated, max_side=MAX_SIDE)
    if abs(gen.fps - ref.fps) > 1e-3 * ref.fps:
        raise InputError(generated, f"{gen.fps:g} fps, but its reference {reference.name} has {ref.fps:g} fps: frames "
                                    "are matched by index, so generate it at the reference's rate (--fps)")
    speech = _speech(generated, reference, audio)
    n = min(len(ref.frames), len(gen.frames))
    h, w = ref.frames.shape[1:3]
    gframes = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) if f.shape[:2] != (h, w) else f
                        for f in gen.frames[:n]])
    rframes = ref.frames[:n]
    r_mesh = track_faces(rframes, source=str(reference)).meshes
    g_mesh = track_faces(gframes, source=str(generated)).meshes
    scores: dict[str, list[float]] = {k: [] for k in ("psnr", "ssim", "ms_ssim", "cpbd", "cpbd_ref", "mouth_psnr",
                                                        "mouth_ssim", "mouth_cpbd", "mouth_cpbd_ref")}
    for i in range(n):
        rc, fc = crop_face(rframes[i], r_mesh[i], size=256)
        gc = cv2.warpAffine(gframes[i], fc.matrix, (256, 256), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE)
        scores["psnr"].append(min(psnr(gc, rc), 100.0))
        scores["ssim"].append(ssim(gc, rc))
        scores["ms_ssim"].append(ms_ssim(gc, rc))
        x0, y0, x1, y1 = mouth_box(fc.to_crop(r_mesh[i].astype(np.float64)), 256)
        gm, rm = gc[y0:y1, x0:x1], rc[y0:y1, x0:x1]
        scores["mouth_psnr"].append(min(psnr(gm, rm), 100.0))
        scores["mouth_ssim"].append(ssim(gm, rm))
        if i % CPBD_EVERY == 0:
            scores["cpbd"].append(cpbd(gc))
            scores["cpbd_ref"].append(cpbd(rc))
            scores["mouth_cpbd"].append(cpbd(gm))
            scores["mouth_cpbd_ref"].append(cpbd(rm))
    r_free, r_angles = pose_free_and_angles(r_mesh)
    g_free, g_angles = pose_free_and_angles(g_mesh)
    model = default_face_model()
    r_expr = model.encode_expression(r_free, r_free.mean(0))
    g_expr = model.encode_expression(g_free, g_free.mean(0))
    dist = np.linalg.norm(g_free[..., :2] - r_free[..., :2], axis=-1)
    ref_emb = embedder.embed(rframes[0])
    sims = []
    for i in np.linspace(0, n - 1, min(n, 10)).astype(int):
        e = embedder.embed(gframes[i])
        if e is not None and ref_emb is not None:
            sims.append(float(e @ ref_emb / (np.linalg.norm(e) * np.linalg.norm(ref_emb))))
    g_sync = score_video(syncnet, gframes, g_mesh, g_free, speech, gen.fps)
    r_sync = score_video(syncnet, rframes, r_mesh, r_free, speech, ref.fps)
    out = {k: float(np.mean(v)) for k, v in scores.items()}
    out.update({
        "lmd": 100 * float(dist.mean()), "mouth_lmd": 100 * float(dist[:, ix.LIPS_ALL].mean()),
        "csim": float(np.mean(sims)) if sims else float("nan"),
        "aed": float(np.abs(g_expr - r_expr).mean()), "apd": float(np.abs(g_angles - r_angles).mean()),
        "mouth_corr": pearson(mouth_opening(g_mesh), mouth_opening(r_mesh)),
        "mouth_corr_lag": best_lag_pearson(mouth_opening(g_mesh), mouth_opening(r_mesh), MOUTH_LAGS),
        "flicker": mouth_flicker(gframes, g_mesh, g_free), "flicker_ref": mouth_flicker(rframes, r_mesh, r_free),
        "lse_d": g_sync.lse_d, "lse_c": g_sync.lse_c, "lse_c_ref": r_sync.lse_c, "offset": float(g_sync.offset),
        "diversity": float(g_expr.std(0).mean()), "diversity_ref": float(r_expr.std(0).mean()),
        "frames": int(n), "generated": str(generated), "reference": str(reference),
    })
    return out


def pairs(generated: Path, reference: Path) -> list[tuple[Path, Path]]:
    """(generated, reference) video pairs: two files, or two folders matched by file name stem."""
    if generated.is_file() and reference.is_file():
        return [(generated, reference)]
    if not (generated.is_dir() and reference.is_dir()):
        bad = generated if not generated.exists() else reference
        raise InputError(bad, "not found (give two videos or two folders)" if not bad.exists()
                         else "give two videos or two folders")
    refs = {p.stem: p for p in reference.iterdir() if p.is_file()}
    found = [(g, refs[g.stem]) for g in sorted(generated.iterdir()) if g.is_file() and g.stem in refs]
    if not found:
        raise InputError(generated, f"no video has a same-named reference in {reference}")
    return found


def summarise(rows: list[dict]) -> dict[str, float]:
    """Mean of every metric over rows (NaNs ignored)."""
    return {k: float(np.nanmean([r[k] for r in rows])) if rows else math.nan for k in METRICS}


def table(rows: list[dict], mean: dict[str, float]) -> str:
    """A plain-text table: one row per pair plus the mean."""
    head = f"{'video':32s} " + " ".join(f"{k:>9s}" for k in METRICS)
    lines = [head, "-" * len(head)]
    for r in rows + [{**mean, "generated": "MEAN"}]:
        lines.append(f"{Path(r['generated']).name[:32]:32s} " + " ".join(f"{r[k]:9.3f}" for k in METRICS))
    lines.append("higher is better: " + ", ".join(sorted(HIGHER_IS_BETTER)) + "; lower: "
                 + ", ".join(k for k in METRICS if k not in HIGHER_IS_BETTER | ZERO_IS_BEST)
                 + "; offset: frames, 0 = in sync; *_ref: the reference, for scale")
    return "\n".join(lines)


def _audio_for(generated: Path, audio: Path | None) -> Path | None:
    """The speech of one generated video: ``audio`` itself, or the same-named file in an ``audio`` folder."""
    if audio is None or not audio.is_dir():
        return audio
    found = [p for p in audio.iterdir() if p.stem == generated.stem and p.is_file()]
    if not found:
        raise InputError(audio, f"no audio named like {generated.name}")
    return found[0]


def load_syncnet(checkpoint: Path | None) -> SyncNet:
    """The SyncNet of a checkpoint (default: the shipped one)."""
    if checkpoint is None:
        return SyncNet.default()
    require_file(checkpoint)
    return SyncNet.load(checkpoint)


def evaluate(generated: Path, reference: Path, *, audio: Path | None = None, syncnet: Path | None = None,
             quiet: bool = False) -> dict:
    """Evaluate a video or a folder of videos; returns {"pairs": [...], "mean": {...}}.

    Args:
        audio: the driving speech (a file, or a folder of files named like the generated videos);
            default: each generated video's own audio track.
        syncnet: a SyncNet checkpoint; default: the shipped one.
    """
    todo = pairs(generated, reference)
    if audio is not None and not audio.exists():
        raise InputError(audio, "not found")
    embedder, net = FaceEmbedder(), load_syncnet(syncnet)
    rows = []
    with bar(len(todo), "evaluate", quiet=quiet, unit="video") as pb:
        for g, r in todo:
            rows.append(evaluate_pair(g, r, embedder=embedder, syncnet=net, audio=_audio_for(g, audio)))
            pb.update(1)
    return {"pairs": rows, "mean": summarise(rows)}


def write_json(result: dict, path: Path) -> None:
    path.write_text(json.dumps(result, indent=1))
