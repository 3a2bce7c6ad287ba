"""A learned family on speakers it never saw, without rendering: the lip gap of its output on the clips a checkpoint
was trained without, for choosing a training recipe on ``train/`` alone.

    talkinghead train-vast data/train -o base.pt --speech whisper3 --steps 2000 --batch 16 --hold-out 0/4
    talkinghead train-vast data/train -o new.pt --speech whisper3 --steps 1000 --batch 16 --hold-out 0/4 \\
        --input-dropout 0.3
    python benchmarks/heldout.py vast base.pt new.pt
    talkinghead train-iplap data/train -o lm.pt --stage landmarks --steps 3000 --augment --speech whisper3 \\
        --hold-out 0/4
    python benchmarks/heldout.py iplap lm.pt ...
    talkinghead train-styletalk data/train data/synth data/multilingual -o st.pt --steps 1500 --batch 8 \
        --style-length 128 --speech whisper3 --hold-out 0/4     # the first dataset's speakers are dealt
    python benchmarks/heldout.py styletalk st.pt ...

Each checkpoint lists the clips it was trained without (``held_out``; the checkpoints compared must hold out the same
ones). Per clip:

- vast: VAST decodes the clip's own speech in the style of the clip's first ``max_style_frames`` frames (as the photo
  protocol styles a clip by itself); the gap is the inner-lip gap of the lower-face coefficients on the clip's rest
  shape (:meth:`~talkinghead.face.model.FaceModel.lower_face_gap`), against the real coefficients'.
- styletalk: StyleTalk decodes the clip's own speech in the style of the clip's first ``max_style_frames`` frames
  (coefficients and head motion, as the photo protocol styles a clip by itself); the gap as VAST's.
- iplap: the landmark generator predicts the lips and jaw from the clip's speech, its own pose landmarks and reference
  frames picked by mouth opening (as ``benchmarks/iplap.py landmarks`` and a dub do); the gap is the inner-lip gap of
  the predicted landmarks against the real ones (:func:`~talkinghead.render.iplap.landmarks.content_lip_gap`).

The gaps are correlated at lag 0 and at the best lag within +-3 frames; the predicted gap's standard deviation divided
by the real one's is the spread. Printed per checkpoint: the means over clips and the mean per-clip change of the
correlation against the first checkpoint with its standard error. With ``--clips-of CKPT`` every checkpoint is scored
on CKPT's held-out clips, so that a model trained on them (a shipped one) shows how much better it follows clips it saw:

    python benchmarks/heldout.py iplap lm.pt iplap_landmarks_v3.pt --clips-of lm.pt

Never point it at ``talking/``: a recipe chosen there is not held out.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from talkinghead.constants import CROP_SIZE
from talkinghead.data.clip import ClipData, load_clip
from talkinghead.face.model import default_face_model
from talkinghead.metrics.mouth import best_lag_pearson, pearson
from talkinghead.motion.iplap.infer import predict_content
from talkinghead.motion.iplap.model import LandmarkGenerator
from talkinghead.motion.styletalk.infer import decode_frames, style_code, style_frames
from talkinghead.motion.styletalk.model import StyleTalk
from talkinghead.motion.vast.model import Vast
from talkinghead.nn.checkpoint import checkpoint_meta
from talkinghead.render.iplap.landmarks import N_POSE, content_lip_gap, pick_references, subcrop_points
from talkinghead.train.datasets import clip_frame_vectors, clip_speech, clip_speech_inputs

Gaps = Callable[[ClipData], tuple[np.ndarray, np.ndarray]]
"""A clip -> (predicted, real) (T,) lip gaps."""


def vast_gaps(checkpoint: Path) -> Gaps:
    model, face_model = Vast.load(checkpoint).eval(), default_face_model()
    k, n = model.config.n_expression, model.config.max_style_frames

    def gaps(clip: ClipData) -> tuple[np.ndarray, np.ndarray]:
        speech = torch.from_numpy(clip_speech(clip, model.config.speech)).float()[None]
        real = clip.expression[:, :k].astype(np.float32)
        z = model.style(torch.from_numpy(real[:n])[None], speech[:, :n])[0]
        pred = model.generate(speech, z)[0].numpy()
        return face_model.lower_face_gap(clip.neutral, pred), face_model.lower_face_gap(clip.neutral, real)

    return gaps


def iplap_gaps(checkpoint: Path) -> Gaps:
    model = LandmarkGenerator.load(checkpoint).eval()

    def gaps(clip: ClipData) -> tuple[np.ndarray, np.ndarray]:
        pts = subcrop_points(clip.meshes, CROP_SIZE)
        refs = pts[pick_references(pts, model.config.references)]
        pred = predict_content(model, clip_speech_inputs(model.config.speech, clip), pts[:, :N_POSE], refs)
        return content_lip_gap(pred), content_lip_gap(pts[:, N_POSE:])

    return gaps


def styletalk_gaps(checkpoint: Path) -> Gaps:
    model, face_model = StyleTalk.load(checkpoint).eval(), default_face_model()
    k, kind = model.config.n_expression, model.config.speech

    def gaps(clip: ClipData) -> tuple[np.ndarray, np.ndarray]:
        real = clip.expression[:, :k].astype(np.float32)
        code = style_code(model, style_frames(model, real, clip.rotation))
        rows = None if kind == "phones" else clip_frame_vectors(kind, clip)
        pred = decode_frames(model, clip.phone_ids, rows, code)
        return face_model.lower_face_gap(clip.neutral, pred), face_model.lower_face_gap(clip.neutral, real)

    return gaps


FAMILIES: dict[str, Callable[[Path], Gaps]] = {"vast": vast_gaps, "iplap": iplap_gaps, "styletalk": styletalk_gaps}


def held_out(checkpoint: Path) -> Iterator[tuple[str, ClipData]]:
    """(name, clip) of the clips ``checkpoint`` was trained without."""
    folders = [Path(f) for f in checkpoint_meta(checkpoint).get("held_out") or []]
    if not folders:
        raise SystemExit(f"{checkpoint}: trained on every clip (train it with --hold-out FOLD/FOLDS)")
    return ((folder.name, load_clip(folder)) for folder in folders)


@torch.no_grad()
def held_out_scores(family: str, checkpoint: Path, clips_of: Path | None = None) -> tuple[list[str], np.ndarray]:
    """(clip names, (N, 3) lip-gap correlation, best-lag correlation and spread per clip) on the clips ``checkpoint``
    (or ``clips_of``) was trained without."""
    gaps, names, rows = FAMILIES[family](checkpoint), [], []
    for name, clip in held_out(clips_of or checkpoint):
        pred, real = gaps(clip)
        names.append(name)
        rows.append((pearson(pred, real), best_lag_pearson(pred, real, 3), pred.std() / real.std()))
    return names, np.array(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("family", choices=sorted(FAMILIES))
    ap.add_argument("checkpoints", type=Path, nargs="+",
                    help="the family's checkpoints, trained with the same --hold-out")
    ap.add_argument("--clips-of", type=Path, default=None, metavar="CKPT",
                    help="score every checkpoint on the clips CKPT was trained without, whichever clips it saw itself "
                         "(a model trained on every clip against one trained without them: how far it over-fits)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    names, first = None, None
    print(f"{'checkpoint':40s} {'clips':>5s} {'lip-gap corr':>12s} {'best lag':>9s} {'spread':>7s} "
          f"{'vs first (se; higher on)':>26s}")
    for checkpoint in args.checkpoints:
        clips, scores = held_out_scores(args.family, checkpoint, args.clips_of)
        if names is None:
            names, first = clips, scores
        elif clips != names:
            raise SystemExit(f"{checkpoint}: holds out other clips than {args.checkpoints[0]}")
        diff = scores[:, 0] - first[:, 0]
        se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else 0.0
        print(f"{checkpoint.name:40s} {len(scores):5d} {scores[:, 0].mean():12.3f} {scores[:, 1].mean():9.3f} "
              f"{scores[:, 2].mean():7.2f} {diff.mean():+10.3f} ({se:.3f}; {(diff > 0).sum()}/{len(diff)})")


if __name__ == "__main__":
    main()
