"""The feature-path generator on held-out clips: every frame redrawn from another frame of its clip.

    python benchmarks/generator.py [STYLEGAN_DIR] DATASET [--every 5] [--sheets 3] [--out benchmarks/out/generator]
        [--clips N] [--gains 4,8,12,16 [--styletalker STK.pt]]

For every clip of DATASET (``data/talking``: speakers never trained on), the first frame is the reference, as a
photo would be, and every ``every``-th later frame a target: the encoder gives the reference's feature map and codes
and each target's codes, and the generator draws the target from the reference's map (the target's pixels never
reach it, only its W+ codes). Measured at the generator's size against the real target crop: PSNR over the whole
crop and over its lower half (the IP_LAP renderer's figure), and the dlib identity distance (not ArcFace, which has
no offline weights) between the drawn crop and the real one, both upscaled to 256 px (frames where dlib finds no
face in either are counted, not scored), and the Pearson correlation of the mouth opening (MediaPipe mesh, pose
removed) of the drawn targets with the real ones: how much of the mouth's motion the codes carry through the
generator, the most any model of the codes (StyleTalker) can reach. The same correlation for each target drawn from
its own map and codes (``mouth_corr_own_map``) shows how much of the mouth the map carries rather than the codes;
each drawn with the reference's codes except the motion latents (``mouth_corr_motion``) shows what StyleTalker and
StyleHEAT can draw, which move only those. With ``--gains``, the last again with the mouth moved as StyleTalker
``generate`` moves it (the model of ``--styletalker``, by default the shipped one): where the model has a speech
mouth map, the motion latents' offset from the reference's along its mouth direction takes its changes from the
map over the clip's own speech (``StyleTalker.speak_mouth``), then is multiplied by each gain
(``StyleTalker.exaggerate_mouth``), with the drawn opening's spread over the real one's: how StyleTalker's
``mouth_gain`` is chosen (on clips of ``train/``, so that ``talking/`` stays held out; the map was fitted on the
clips of its train split).
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
from talkinghead.metrics.mouth import CROP_MESH_SIZE, crop_openings, pearson
from talkinghead.motion.styletalker.model import StyleTalker
from talkinghead.render.stylegan.infer import crops_tensor, to_crops
from talkinghead.render.stylegan.model import Encoder, Generator
from talkinghead.train.datasets import clip_speech_inputs

BATCH = 16
UP = (CROP_MESH_SIZE, CROP_MESH_SIZE)
"""Crops are upscaled to this size for dlib, as for the mesh."""


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR (dB) of two uint8 images."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-10)))


@torch.no_grad()
def redraw(generator: Generator, encoder: Encoder, reference: np.ndarray, targets: np.ndarray,
           mouth: StyleTalker | None = None, gains: tuple[float, ...] = (), said: torch.Tensor | None = None
           ) -> tuple[np.ndarray, np.ndarray, dict[float, np.ndarray]]:
    """Crops (N, S, S, 3) uint8 of the targets (N, S', S', 3) drawn from the reference crop's (S', S', 3) map with
    their own codes, each from its own map with its own codes, and for gain 1 and each of ``gains`` from the
    reference's map with the reference's codes but the targets' motion latents: for gain 1 as they are, for each
    of ``gains`` their mouth moved along ``mouth``'s direction by ``said`` (N,) (its speech map's motion at the
    targets, :meth:`StyleTalker.move_mouth`; None: their own) and multiplied by that gain."""
    size = generator.config.size
    m = generator.config.motion_latents
    ref_codes, ref_map = encoder.encode(crops_tensor(reference[None], size))
    from_reference, from_own = [], []
    moved = []
    for s in range(0, len(targets), BATCH):
        codes, maps = encoder.encode(crops_tensor(targets[s:s + BATCH], size))
        from_reference.append(to_crops(generator(codes, noise="none", reference=(ref_map, ref_codes))[0]))
        from_own.append(to_crops(generator(codes, noise="none", reference=(maps, codes))[0]))
        moved.append(torch.cat([codes[:, :m], ref_codes[:, m:].expand(len(codes), -1, -1)], 1))
    motion = torch.cat(moved)[None]
    spoken = motion if mouth is None or said is None else mouth.move_mouth(motion, ref_codes, said[None])
    motion_only = {}
    for gain in (1.0, *gains):
        drawn = (motion if gain == 1.0 else mouth.exaggerate_mouth(spoken, ref_codes, gain))[0]
        motion_only[gain] = np.concatenate([to_crops(generator(drawn[s:s + BATCH], noise="none",
                                                               reference=(ref_map, ref_codes))[0])
                                            for s in range(0, len(drawn), BATCH)])
    return np.concatenate(from_reference), np.concatenate(from_own), motion_only


def clip_figures(generator: Generator, encoder: Encoder, embedder: FaceEmbedder, frames: np.ndarray,
                 mouth: StyleTalker | None = None, gains: tuple[float, ...] = (), said: torch.Tensor | None = None
                 ) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """(figures, real targets, drawn targets) at the generator's size for one clip's crops (T, S', S', 3) (``said``:
    :func:`redraw`'s, for frames 1..T-1)."""
    size = generator.config.size
    real = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in frames])
    drawn, own, motion = redraw(generator, encoder, frames[0], frames[1:], mouth, gains, said)
    targets, copy = real[1:], real[0]
    half = size // 2
    distances, unscored = [], 0
    for r, d in zip(targets, drawn):
        er = embedder.embed(cv2.resize(r, UP, interpolation=cv2.INTER_CUBIC))
        ed = embedder.embed(cv2.resize(d, UP, interpolation=cv2.INTER_CUBIC))
        if er is None or ed is None:
            unscored += 1
        else:
            distances.append(identity_distance(er, ed))
    real_open, drawn_open, own_open = (crop_openings(crops) for crops in (targets, drawn, own))
    figures = {
        "psnr": float(np.mean([psnr(d, r) for d, r in zip(drawn, targets)])),
        "mouth_corr": pearson(drawn_open, real_open),
        "mouth_corr_own_map": pearson(own_open, real_open),
        "psnr_lower": float(np.mean([psnr(d[half:], r[half:]) for d, r in zip(drawn, targets)])),
        "copy_psnr": float(np.mean([psnr(copy, r) for r in targets])),
        "copy_psnr_lower": float(np.mean([psnr(copy[half:], r[half:]) for r in targets])),
        "identity_distance": float(np.mean(distances)) if distances else float("nan"),
        "unscored": unscored, "targets": len(targets)}
    for gain, crops in motion.items():
        motion_open = crop_openings(crops)
        suffix = "" if gain == 1.0 else f"_x{gain:g}"
        figures[f"mouth_corr_motion{suffix}"] = pearson(motion_open, real_open)
        figures[f"mouth_spread_motion{suffix}"] = float(np.std(motion_open) / max(np.std(real_open), 1e-8))
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
    p.add_argument("--clips", type=int, default=None, help="this many clips, spread evenly (default: all)")
    p.add_argument("--gains", type=lambda v: tuple(float(g) for g in v.split(",")), default=(),
                   help="mouth gains to draw the motion-only targets at too, comma-separated (e.g. 4,8,12,16)")
    p.add_argument("--styletalker", type=Path, default=None,
                   help="StyleTalker checkpoint whose mouth direction --gains follow (default: the shipped one)")
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
    mouth = None
    if args.gains:
        mouth = StyleTalker.load(args.styletalker) if args.styletalker else StyleTalker.default()
        if not mouth.config.stores_mouth_direction:
            raise SystemExit(f"{args.styletalker or 'the shipped StyleTalker'}: stores no mouth direction")
    per_clip = {}
    clips = list_clips(args.dataset, None)
    if not clips:
        raise SystemExit(f"{args.dataset}: no preprocessed clips")
    if args.clips is not None:
        clips = [clips[i] for i in np.unique(np.linspace(0, len(clips) - 1, args.clips).round().astype(int))]
    for i, cid in enumerate(clips):
        clip = load_clip(clip_dir(args.dataset, cid))
        picks = np.arange(0, clip.n_frames, args.every)
        frames = clip.frames(picks)
        said = None
        if mouth is not None and mouth.config.mouth_window:
            speech = torch.from_numpy(clip_speech_inputs(mouth.config.speech, clip)).float()[None]
            said = mouth.speech_mouth_motion(speech)[0, np.minimum(picks[1:], speech.shape[1] - 1)]
            said = said - said.mean()
        figures, targets, drawn = clip_figures(generator, encoder, embedder, frames, mouth, args.gains, said)
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
