"""The feature-path generator on held-out clips: every frame redrawn from another frame of its clip.

    python benchmarks/generator.py [STYLEGAN_DIR] DATASET [--every 5] [--sheets 3] [--out benchmarks/out/generator]

For every clip of DATASET (``data/talking``: speakers never trained on), the first frame is the reference, as a
photo would be, and every ``every``-th later frame a target: the encoder gives the reference's feature map and codes
and each target's codes, and the generator draws the target from the reference's map (the target's pixels never
reach it, only its W+ codes). Measured at the generator's size against the real target crop: PSNR over the whole
crop and over its lower half (the IP_LAP renderer's figure), and the dlib identity distance (not ArcFace, which has
no offline weights) between the drawn crop and the real one, both upscaled to 256 px (frames where dlib finds no
face in either are counted, not scored), and the Pearson correlation of the mouth opening (MediaPipe mesh, pose
removed) of the drawn targets with the real ones: how much of the mouth's motion the codes carry through the
generator, the most any model of the codes (StyleTalker) can reach. The same correlation for each target drawn from
its own map and codes (``mouth_corr_own_map``) shows how much of the mouth the map carries rather than the codes.
The baseline in the same run is the reference frame copied unchanged.

Writes ``contact_CLIP.png`` for the first ``sheets`` clips: rows real / drawn / reference copy, 8 targets each.
Prints per-clip and mean figures as JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import torch

from talkinghead.data.clip import clip_dir, list_clips, load_clip
from talkinghead.face.identity import FaceEmbedder, identity_distance
from talkinghead.face.mesh import track_faces
from talkinghead.metrics.mouth import mouth_opening, pearson
from talkinghead.render.stylegan.infer import crops_tensor, to_crops
from talkinghead.render.stylegan.model import Encoder, Generator

BATCH = 16


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR (dB) of two uint8 images."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-10)))


@torch.no_grad()
def redraw(generator: Generator, encoder: Encoder, reference: np.ndarray, targets: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray]:
    """Crops (N, S, S, 3) uint8 of the targets (N, S', S', 3) drawn with their own codes: from the reference crop's
    (S', S', 3) map, and each from its own map."""
    size = generator.config.size
    ref_codes, ref_map = encoder.encode(crops_tensor(reference[None], size))
    from_reference, from_own = [], []
    for s in range(0, len(targets), BATCH):
        codes, maps = encoder.encode(crops_tensor(targets[s:s + BATCH], size))
        from_reference.append(to_crops(generator(codes, noise="none", reference=(ref_map, ref_codes))[0]))
        from_own.append(to_crops(generator(codes, noise="none", reference=(maps, codes))[0]))
    return np.concatenate(from_reference), np.concatenate(from_own)


def clip_figures(generator: Generator, encoder: Encoder, embedder: FaceEmbedder, frames: np.ndarray
                 ) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """(figures, real targets, drawn targets) at the generator's size for one clip's crops (T, S', S', 3)."""
    size = generator.config.size
    real = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in frames])
    drawn, own = redraw(generator, encoder, frames[0], frames[1:])
    targets, copy = real[1:], real[0]
    half = size // 2
    up = (256, 256)
    distances, unscored = [], 0
    for r, d in zip(targets, drawn):
        er = embedder.embed(cv2.resize(r, up, interpolation=cv2.INTER_CUBIC))
        ed = embedder.embed(cv2.resize(d, up, interpolation=cv2.INTER_CUBIC))
        if er is None or ed is None:
            unscored += 1
        else:
            distances.append(identity_distance(er, ed))
    big = [np.stack([cv2.resize(c, up, interpolation=cv2.INTER_CUBIC) for c in crops])
           for crops in (targets, drawn, own)]
    real_open, drawn_open, own_open = (mouth_opening(track_faces(b).meshes) for b in big)
    figures = {
        "psnr": float(np.mean([psnr(d, r) for d, r in zip(drawn, targets)])),
        "mouth_corr": pearson(drawn_open, real_open),
        "mouth_corr_own_map": pearson(own_open, real_open),
        "psnr_lower": float(np.mean([psnr(d[half:], r[half:]) for d, r in zip(drawn, targets)])),
        "copy_psnr": float(np.mean([psnr(copy, r) for r in targets])),
        "copy_psnr_lower": float(np.mean([psnr(copy[half:], r[half:]) for r in targets])),
        "identity_distance": float(np.mean(distances)) if distances else float("nan"),
        "unscored": unscored, "targets": len(targets)}
    return figures, targets, drawn


def contact_sheet(targets: np.ndarray, drawn: np.ndarray, copy: np.ndarray, n: int = 8) -> np.ndarray:
    """Rows real / drawn / reference copy of ``n`` targets spread over the clip."""
    pick = np.linspace(0, len(targets) - 1, min(n, len(targets))).round().astype(int)
    rows = [np.concatenate(list(targets[pick]), 1), np.concatenate(list(drawn[pick]), 1),
            np.concatenate([copy] * len(pick), 1)]
    return np.concatenate(rows, 0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stylegan", type=Path, nargs="?", default=None,
                   help="train-stylegan folder of a feature-path generator (default: the shipped one)")
    p.add_argument("dataset", type=Path, help="preprocessed dataset (all its clips are used)")
    p.add_argument("--every", type=int, default=5, help="every how many frames a target (default: 5)")
    p.add_argument("--sheets", type=int, default=3, help="contact sheets of this many clips (default: 3)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/out/generator"))
    args = p.parse_args()
    if args.stylegan is None:
        generator, encoder = Generator.default(), Encoder.default()
    else:
        generator = Generator.load(args.stylegan / "generator.pt").eval()
        encoder = Encoder.load(args.stylegan / "encoder.pt").eval()
    if not generator.config.feature_path:
        raise SystemExit(f"{args.stylegan}: not a feature-path generator")
    embedder = FaceEmbedder()
    args.out.mkdir(parents=True, exist_ok=True)
    per_clip = {}
    for i, cid in enumerate(list_clips(args.dataset, None)):
        clip = load_clip(clip_dir(args.dataset, cid))
        frames = clip.frames(range(0, clip.n_frames, args.every))
        figures, targets, drawn = clip_figures(generator, encoder, embedder, frames)
        per_clip[cid] = figures
        print(cid, json.dumps(figures), flush=True)
        if i < args.sheets:
            sheet = contact_sheet(targets, drawn, cv2.resize(frames[0], targets.shape[1:3][::-1],
                                                             interpolation=cv2.INTER_AREA))
            cv2.imwrite(str(args.out / f"contact_{cid}.png"), sheet[:, :, ::-1])
    keys = [k for k in next(iter(per_clip.values())) if k not in ("unscored", "targets")]
    mean = {k: float(np.nanmean([f[k] for f in per_clip.values()])) for k in keys}
    mean["unscored"] = sum(f["unscored"] for f in per_clip.values())
    mean["targets"] = sum(f["targets"] for f in per_clip.values())
    print(json.dumps({"mean": mean, "clips": len(per_clip)}, indent=1))
    (args.out / "figures.json").write_text(json.dumps({"mean": mean, "clips": per_clip}, indent=1))


if __name__ == "__main__":
    main()
