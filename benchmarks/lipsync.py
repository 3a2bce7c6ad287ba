"""Lip sync and identity on real talking clips (reconstruction setting).

For every clip in ../shared/media/talking/: generate from its first frame + its own audio with the
default engine, run the mesh on the generated and the real video, and report

- the Pearson correlation of the mouth-opening curves (inner-lip gap, pose removed), raw and
  after light smoothing of both curves (Gaussian, sigma = 1 frame, against mesh jitter);
- the mean lip-landmark distance (40 lip points, pose removed, mouth-centred), in % of the
  outer eye-corner distance;
- the dlib identity distance between the reference frame and 10 generated frames.

    python benchmarks/lipsync.py [--media ../shared/media] [--out benchmarks/out]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d

from talkinghead.api import generate
from talkinghead.face.identity import FaceEmbedder, identity_distance
from talkinghead.face.mesh import track_faces
from talkinghead.io import read_video
from talkinghead.metrics.mouth import lip_distance, mouth_opening, pearson


def evaluate_clip(clip_path: Path, work: Path, embedder: FaceEmbedder) -> dict:
    real = read_video(clip_path, max_side=512)
    ref_png = work / f"{clip_path.stem}_ref.png"
    cv2.imwrite(str(ref_png), real.frames[0][:, :, ::-1])
    out = work / f"{clip_path.stem}_gen.mp4"
    result = generate(image=ref_png, audio=clip_path, output=out, fps=real.fps,
                      size=max(real.frames.shape[1:3]), quiet=True)
    gen = read_video(out)
    n = min(len(gen.frames), len(real.frames))
    g_mesh = track_faces(gen.frames[:n]).meshes
    r_mesh = track_faces(real.frames[:n]).meshes
    g_open, r_open = mouth_opening(g_mesh), mouth_opening(r_mesh)
    ref_emb = embedder.embed(real.frames[0])
    dists = []
    for i in np.linspace(0, n - 1, 10).astype(int):
        e = embedder.embed(gen.frames[i])
        if e is not None and ref_emb is not None:
            dists.append(identity_distance(ref_emb, e))
    return {
        "clip": clip_path.name,
        "frames": int(n),
        "fps": round(real.fps, 2),
        "phonemes": result.phoneme_method,
        "corr": pearson(g_open, r_open),
        "corr_smoothed": pearson(gaussian_filter1d(g_open, 1.0), gaussian_filter1d(r_open, 1.0)),
        "lip_dist_pct": 100 * lip_distance(g_mesh, r_mesh),
        "identity": float(np.mean(dists)) if dists else float("nan"),
        "identity_faces": len(dists),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--media", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "media")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    embedder = FaceEmbedder()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for clip in sorted((args.media / "talking").glob("*.mp4")):
            rows.append(evaluate_clip(clip, Path(tmp), embedder))
            r = rows[-1]
            print(f"{r['clip']:34s} {r['frames']:5d} {r['phonemes']:8s} corr {r['corr']:+.3f} "
                  f"smoothed {r['corr_smoothed']:+.3f} lipdist {r['lip_dist_pct']:5.2f}% id {r['identity']:.3f}",
                  flush=True)
    mean = {k: float(np.nanmean([r[k] for r in rows])) for k in ("corr", "corr_smoothed", "lip_dist_pct", "identity")}
    print(f"{'MEAN':34s} {'':14s} corr {mean['corr']:+.3f} smoothed {mean['corr_smoothed']:+.3f} "
          f"lipdist {mean['lip_dist_pct']:5.2f}% id {mean['identity']:.3f}")
    print("targets: mean corr >= 0.6; identity (dlib, not ArcFace) < 0.4")
    (args.out / "lipsync.json").write_text(json.dumps({"clips": rows, "mean": mean}, indent=1))


if __name__ == "__main__":
    main()
