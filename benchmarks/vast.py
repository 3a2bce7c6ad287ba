"""VAST checks on preprocessed clips (coefficient level: no rendering).

    python benchmarks/vast.py diversity CKPT [CKPT ...] DATASET [...] [--split test] [--samples 5]
    python benchmarks/vast.py style CKPT DATASET [...] [--plot out.png]

diversity (VAST Table 2 shape: the full model against the ablations without the flow and without the
enhancer): every held-out clip (val + test: faces never trained on) is regenerated from its own speech
features with itself as the style clip (the style encoder reads its first frames, up to the model's style
length). Columns, meshes of the face model on the clip's rest shape, canonical units x 100 (% of the
eye-corner distance):
- mouth LMD (lip + jaw points) against the clip's own motion, and LSE-D / LSE-C of our SyncNet's mesh stream
  against its audio (our own SyncNet: not comparable with published LSE numbers);
- temporal diversity: the standard deviation over time of each mesh point, averaged over the points (the
  clip's own value in the last row): how much the face moves;
- sample diversity: the standard deviation over ``--samples`` draws of z from the posterior (same speech,
  same style clip), averaged over frames and points (0 without the enhancer: z is deterministic);
- style diversity: the standard deviation over four style clips of four other style classes (same speech),
  averaged over frames and points: how far the style clip moves the output.

style: the style vector (posterior mean) of every clip; each held-out clip is classified by the style class
of its nearest training clip, and a 2-D PCA projection of all vectors, coloured by class, is saved as a PNG.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

import coefficients
from coefficients import HELD_OUT, load_clips, reconstruction_scores, shapes
from talkinghead.data.clip import ClipData
from talkinghead.motion.vast.model import Vast
from talkinghead.train.datasets import clip_speech, style_class


def style_inputs(model: Vast, clip: ClipData) -> tuple[torch.Tensor, torch.Tensor]:
    """A clip's first frames (up to the style length) as a style clip: (coefficients (1, L, K), speech (1, L, S))."""
    n = model.config.max_style_frames
    return (torch.from_numpy(clip.expression[:n, :model.config.n_expression]).float()[None],
            torch.from_numpy(clip_speech(clip, model.config.speech)[:n]).float()[None])


def regenerate(model: Vast, clip: ClipData, style: ClipData, *, sample: int | None = None) -> np.ndarray:
    """(T, K) coefficients of ``clip``'s speech in the style of ``style`` (posterior mean, or draw ``sample``)."""
    generator = None if sample is None else torch.Generator().manual_seed(sample)
    z, _ = model.style(*style_inputs(model, style), sample=sample is not None, generator=generator)
    speech = torch.from_numpy(clip_speech(clip, model.config.speech)).float()[None]
    return model.generate(speech, z)[0].numpy()


def spread(meshes: list[np.ndarray]) -> float:
    """Std over the list (same-shape (T, 478, 3) meshes) per frame and point, averaged; canonical units x 100."""
    stack = np.stack(meshes)
    return float(100 * np.sqrt((np.linalg.norm(stack - stack.mean(0), axis=-1) ** 2).mean(0)).mean())


def temporal(mesh: np.ndarray) -> float:
    """Std over time of each point, averaged over the points; canonical units x 100."""
    return spread(list(mesh))


def diversity(model: Vast, clips: list[ClipData], *, samples: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    classes = sorted({style_class(c.meta) for c in clips})
    temporal_d, sample_d, style_d = [], [], []
    for clip in clips:
        mean = shapes(clip, regenerate(model, clip, clip))
        temporal_d.append(temporal(mean))
        if model.config.enhancer:
            sample_d.append(spread([shapes(clip, regenerate(model, clip, clip, sample=s)) for s in range(samples)]))
        else:
            sample_d.append(0.0)
        others = [k for k in classes if k != style_class(clip.meta)]
        picks = rng.choice(others, min(4, len(others)), replace=False)
        styles = [clips[int(rng.choice([i for i, x in enumerate(clips) if style_class(x.meta) == k]))] for k in picks]
        style_d.append(spread([shapes(clip, regenerate(model, clip, s)) for s in styles]))
    scores = reconstruction_scores(lambda c: regenerate(model, c, c), clips)
    return {**scores, "temporal_diversity": float(np.mean(temporal_d)), "sample_diversity": float(np.mean(sample_d)),
            "style_diversity": float(np.mean(style_d))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("check", choices=("diversity", "style"))
    ap.add_argument("paths", nargs="+", type=Path, help="checkpoint(s) (.pt), then dataset folders")
    ap.add_argument("--split", default=None, help="diversity: split (default: val + test)")
    ap.add_argument("--samples", type=int, default=5, help="diversity: posterior draws per clip (default: 5)")
    ap.add_argument("--plot", type=Path, default=Path("benchmarks/out/vast_style_space.png"))
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    checkpoints = [p for p in args.paths if p.suffix == ".pt"]
    datasets = [p for p in args.paths if p.suffix != ".pt"]
    if not checkpoints or not datasets:
        raise SystemExit("give checkpoint(s) (.pt) and dataset folder(s)")
    if args.check == "style":
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        model = Vast.load(checkpoints[0])
        result = coefficients.style_space(lambda c: model.style(*style_inputs(model, c))[0][0].numpy(), datasets,
                                          args.plot, title="VAST style vectors")
        print(f"nearest-neighbour style accuracy on {result['held_out']} held-out clips: {result['accuracy']:.1%}")
        for k, v in result["per_class"].items():
            print(f"  {k:20s} {v:6.1%}")
        print(f"plot: {args.plot}")
    else:
        clips = load_clips(datasets, (args.split,) if args.split else HELD_OUT)
        result = {p.name: diversity(Vast.load(p), clips, samples=args.samples) for p in checkpoints}
        real = reconstruction_scores(None, clips)
        result["real coefficients"] = {**real, "temporal_diversity": float(np.mean(
            [temporal(shapes(c, c.expression)) for c in clips])), "sample_diversity": 0.0, "style_diversity": 0.0}
        keys = ["mouth_lmd", "lse_d", "lse_c", "temporal_diversity", "sample_diversity", "style_diversity"]
        print(f"{len(clips)} held-out clips; meshes in % of the eye-corner distance")
        print(f"{'checkpoint':24s} " + " ".join(f"{k:>18s}" for k in keys))
        for name, row in result.items():
            print(f"{name:24s} " + " ".join(f"{row[k]:18.3f}" for k in keys))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
