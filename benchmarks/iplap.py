"""IP_LAP checks on held-out preprocessed clips, and CPU speed.

    python benchmarks/iplap.py landmarks CKPT_TRANSFORMER CKPT_BILSTM DATASET [...] [--split test]
    python benchmarks/iplap.py renderer CKPT_WARP CKPT_NOWARP DATASET [...] [--split test] [--every 5]
    python benchmarks/iplap.py speed [--seconds 2]

landmarks (paper Table 3 shape): every clip's lip and jaw landmarks predicted from its audio, its own
pose landmarks and 15 reference frames of the clip; landmark distance (LMD) in pixels of the
128 px render crop, for all 57 points, the lips and the jaw, the frame-to-frame motion error, and the
mouth-opening correlation (the inner-lip gap: mean distance of the 7 inner-lip point pairs, predicted against real).
A third row scores the residual heads' anchor alone (the references' mean lip/jaw shape moved with
the head): what the landmarks would be without audio.

renderer (paper Table 4 shape): every ``every``-th frame of each clip rendered from its real
landmarks (sketches), the clip's 3 references picked by mouth opening, and its audio; PSNR/SSIM of
the whole crop and of its lower half against the real crop.

speed: frames per second at 128 px of the shipped small models and of the paper-size renderer
(random weights) with 3 and 25 references, against real time (25 fps) and against the default
warp renderer measured in the same run on the same 128 px crop.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from talkinghead.constants import CROP_SIZE
from talkinghead.data.clip import clip_dir, list_clips, load_clip
from talkinghead.metrics.image import psnr, ssim
from talkinghead.metrics.mouth import pearson
from talkinghead.motion.iplap.infer import predict_content
from talkinghead.motion.iplap.model import LandmarkGenerator
from talkinghead.render.iplap.config import RendererConfig
from talkinghead.render.iplap.landmarks import N_POSE, content_lip_gap, pick_references, subcrop_images, subcrop_points
from talkinghead.render.iplap.model import IPLAPRenderer
from talkinghead.render.iplap.sketch import draw_sketch
from talkinghead.sync.inputs import clip_mels, visual_tensor
from talkinghead.train.datasets import clip_speech_inputs

PX = 128
"""Landmark errors are reported in pixels of a 128 px render crop."""


def _clips(datasets: list[Path], split: str | None):
    for root in datasets:
        for cid in list_clips(root, split):
            yield load_clip(clip_dir(root, cid))


def landmark_errors(model: LandmarkGenerator, datasets: list[Path], split: str | None, *,
                    anchor: bool = False) -> dict[str, float]:
    """Errors of the model's landmarks (``anchor``: of its anchor alone: no audio, no learned motion)."""
    errs, lips, jaw, motion, corr = [], [], [], [], []
    for clip in _clips(datasets, split):
        pts = subcrop_points(clip.meshes, CROP_SIZE)
        refs = pts[pick_references(pts, model.config.references)]
        if anchor:
            pred = model.anchor(torch.from_numpy(pts[:, :N_POSE])[None], torch.from_numpy(refs)[None])[0].numpy()
        else:
            pred = predict_content(model, clip_speech_inputs(model.config.speech, clip), pts[:, :N_POSE], refs)
        d = np.linalg.norm(pred - pts[:, N_POSE:], axis=-1) * PX
        errs.append(d.mean())
        lips.append(d[:, :model.config.n_lips].mean())
        jaw.append(d[:, model.config.n_lips:].mean())
        motion.append(np.linalg.norm(np.diff(pred, axis=0) - np.diff(pts[:, N_POSE:], axis=0), axis=-1).mean() * PX)
        corr.append(pearson(content_lip_gap(pred), content_lip_gap(pts[:, N_POSE:])))
    return {"lmd": float(np.mean(errs)), "lip_lmd": float(np.mean(lips)), "jaw_lmd": float(np.mean(jaw)),
            "motion_error": float(np.mean(motion)), "mouth_corr": float(np.mean(corr)), "clips": len(errs)}


@torch.no_grad()
def render_scores(model: IPLAPRenderer, datasets: list[Path], split: str | None, every: int) -> dict[str, float]:
    c = model.config
    full_p, full_s, low_p, low_s = [], [], [], []
    for clip in _clips(datasets, split):
        pts = subcrop_points(clip.meshes, CROP_SIZE)
        crops = subcrop_images(clip.frames(range(clip.n_frames)), c.size)
        mels = clip_mels(clip)
        sketches = np.stack([draw_sketch(p, c.size) for p in pts])
        refs = pick_references(pts, 3)
        ref_img, ref_sk = visual_tensor(crops[refs])[None], visual_tensor(sketches[refs])[None]
        k = c.frames // 2
        for t in range(k, clip.n_frames - k, every):
            out, _ = model(visual_tensor(crops[t])[None], visual_tensor(sketches[t - k:t + k + 1])[None], ref_img,
                           ref_sk, torch.from_numpy(mels[t])[None])
            gen = (out[0].permute(1, 2, 0).numpy() * 255 + 0.5).clip(0, 255).astype(np.uint8)
            real, h = crops[t], c.size // 2
            full_p.append(psnr(gen, real))
            full_s.append(ssim(gen, real))
            low_p.append(psnr(gen[h:], real[h:]))
            low_s.append(ssim(gen[h:], real[h:]))
    return {"psnr": float(np.mean(full_p)), "ssim": float(np.mean(full_s)), "lower_psnr": float(np.mean(low_p)),
            "lower_ssim": float(np.mean(low_s)), "frames": len(full_p)}


def _fps(fn, seconds: float) -> float:
    fn()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - start)


@torch.no_grad()
def speed(seconds: float) -> dict[str, float]:
    from talkinghead.render.warp.renderer import WarpRenderer

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    out: dict[str, float] = {}
    # baseline: the default engine's warp renderer on a 128 px face (a real photo's mesh, slightly deformed)
    import cv2

    from talkinghead.face.mesh import mesh_image
    from talkinghead.io import read_image

    face = cv2.resize(read_image(Path(__file__).parents[2] / "shared/media/faces/liveportrait_s0.jpg"), (128, 128))
    mesh, _ = mesh_image(face, source="face")
    warp = WarpRenderer(face, mesh)
    target = mesh + rng.normal(0, 0.3, mesh.shape)
    out["warp_fps"] = _fps(lambda: warp.compose(face, warp.render(target)), seconds)
    lm = LandmarkGenerator.default()
    b = 64
    args = (torch.randn(b, 5, 16, 80), torch.rand(b, 5, 74, 2), torch.rand(b, 15, 131, 2))
    out["landmarks_fps"] = 5 * b * _fps(lambda: lm(*args), seconds)
    for name, model in (("small", IPLAPRenderer.default()), ("paper", IPLAPRenderer(RendererConfig()).eval())):
        s = model.config.size
        for n in (3, 25):
            x = (torch.rand(1, 3, s, s), torch.rand(1, 5, 3, s, s), torch.rand(1, n, 3, s, s),
                 torch.rand(1, n, 3, s, s), torch.randn(1, 16, 80))
            out[f"{name}_renderer_{n}refs_fps"] = _fps(lambda: model(*x), seconds)  # noqa: B023
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("check", choices=("landmarks", "renderer", "speed"))
    ap.add_argument("paths", nargs="*", type=Path, help="two checkpoints, then dataset folders")
    ap.add_argument("--split", default=None, help="split of the datasets (default: every clip)")
    ap.add_argument("--every", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    if args.check == "speed":
        result = speed(args.seconds)
        for k, v in result.items():
            print(f"{k:32s} {v:8.1f} fps  {v / 25:6.2f}x real time  {v / result['warp_fps']:6.3f}x warp baseline")
    else:
        a, b, *datasets = args.paths
        if args.check == "landmarks":
            result = {p.name: landmark_errors(LandmarkGenerator.load(p), datasets, args.split) for p in (a, b)}
            result["anchor (no audio)"] = landmark_errors(LandmarkGenerator.load(a), datasets, args.split, anchor=True)
        else:
            result = {p.name: render_scores(IPLAPRenderer.load(p), datasets, args.split, args.every) for p in (a, b)}
        keys = list(next(iter(result.values())))
        print(f"{'checkpoint':32s} " + " ".join(f"{k:>12s}" for k in keys))
        for name, row in result.items():
            print(f"{name:32s} " + " ".join(f"{row[k]:12.3f}" for k in keys))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
