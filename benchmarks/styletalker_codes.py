"""Where StyleTalker's mouth comes from, in code space, on held-out clips: no image is drawn.

    python benchmarks/styletalker_codes.py CODES.npz DATASET HELD_OUT [--checkpoint stk.pt ...]

A linear probe reads the mouth opening from the manipulated style vectors (:func:`fit_mouth_probe`, fitted on
CODES.npz, the code cache that ``train-styletalker --code-cache DIR`` wrote for DATASET's train split, and on
DATASET's meshes). Each clip of HELD_OUT (a preprocessed dataset never trained on, e.g. ``data/talking``) is
encoded by the shipped encoder; with its first frame's code as the reference, StyleTalker decodes its speech
with motion latents from:

- ``posterior``: the clip's own codes (an upper bound: the latents see the real frames);
- ``prior`` (seed 0) and ``prior_mode`` (temperature 0): what ``generate`` does;
- ``other_clip``: the posterior of the next held-out clip, looped (what ``--motion-from`` does);
- ``zero``: all-zero latents (the audio alone);
- with a speech mouth map (``mouth_window``), ``prior + map`` and ``other_clip + map``: those codes with the mouth
  moved by the map (:meth:`StyleTalker.speak_mouth`), as ``generate`` draws them.

Printed per checkpoint (default: the shipped one): the mean over clips of the Pearson correlation between the
probe's read-out of the decoded codes and the real mouth opening, beside the read-out of the clip's real codes
(what the probe itself reaches). The codes are read before a model's ``mouth_gain`` (``generate`` applies it after
decoding): along the model's mouth direction it scales the read-out and leaves these correlations as they are.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from code_probe import cached_codes_and_openings
from talkinghead.metrics.mouth import mouth_opening, pearson
from talkinghead.motion.styletalker.model import StyleTalker
from talkinghead.render.stylegan.model import Encoder
from talkinghead.train.datasets import ClipStore, clip_speech_inputs
from talkinghead.train.styletalker import clip_codes, fit_mouth_probe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("codes", type=Path)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("held_out", type=Path)
    parser.add_argument("--checkpoint", type=Path, action="append", default=None)
    args = parser.parse_args()
    models = {str(p): StyleTalker.load(p).eval() for p in args.checkpoint} if args.checkpoint else \
        {"shipped": StyleTalker.default().eval()}
    manipulated = {m.config.manipulated for m in models.values()}
    if len(manipulated) != 1:
        parser.error("the checkpoints manipulate different numbers of style vectors")
    m = manipulated.pop()
    weights, _ = fit_mouth_probe(*cached_codes_and_openings(args.codes, args.dataset), m)

    def read(w: torch.Tensor) -> np.ndarray:
        return w[0, :, :m].flatten(1).numpy() @ weights

    store = ClipStore([args.held_out], None, cache=2)
    codes = [torch.from_numpy(c.astype(np.float32))[None] for c in clip_codes(Encoder.default().eval(), store,
                                                                                quiet=True)]
    real = [mouth_opening(store.clip(k).meshes) for k in range(len(store))]
    results: dict[str, dict[str, float]] = {"probe on the real codes": {}}
    results["probe on the real codes"]["all"] = float(np.mean([pearson(read(c), o[:c.shape[1]])
                                                              for c, o in zip(codes, real)]))
    for name, model in models.items():
        scores: dict[str, list[float]] = {}
        speech = [torch.from_numpy(clip_speech_inputs(model.config.speech, store.clip(k))).float()[None]
                  for k in range(len(store))]
        with torch.no_grad():
            audio = [model.encode_audio(s) for s in speech]
            latents = [model.posterior(c[:, :a.shape[1]], a[:, :c.shape[1]])[0] for c, a in zip(codes, audio)]
            for k, (w, a) in enumerate(zip(codes, audio)):
                n = min(w.shape[1], a.shape[1])
                w, a, w_ref = w[:, :n], a[:, :n], w[:, 0]
                other = latents[(k + 1) % len(codes)]
                decoded = {
                    "posterior": model.decode(latents[k][:, :n], a, w_ref),
                    "prior": model.decode(model.sample_latents(w_ref, a, generator=torch.Generator().manual_seed(0)),
                                          a, w_ref),
                    "prior_mode": model.decode(model.sample_latents(w_ref, a, temperature=0.0), a, w_ref),
                    "other_clip": model.decode(other[:, np.arange(n) % other.shape[1]], a, w_ref),
                    "zero": model.decode(torch.zeros_like(latents[k][:, :n]), a, w_ref)}
                if model.config.mouth_window:
                    for kind in ("prior", "other_clip"):
                        decoded[f"{kind} + map"] = model.speak_mouth(decoded[kind], w_ref, speech[k][:, :n])
                for kind, out in decoded.items():
                    scores.setdefault(kind, []).append(pearson(read(out), real[k][:n]))
        results[name] = {kind: float(np.mean(v)) for kind, v in scores.items()}
        results[name]["per_clip_prior"] = [round(v, 3) for v in scores["prior"]]  # type: ignore[assignment]
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
