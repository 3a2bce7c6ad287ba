"""StyleHEAT checks: which generator layer to warp, and do attribute edits work.

    python benchmarks/styleheat.py layers --stylegan DIR DATASET [...] [--pairs 60]
    python benchmarks/styleheat.py edits STYLEHEAT.pt [--stylegan DIR] [FACE.jpg ...] [--strengths -2 -1 0 1 2]

layers (the study of StyleHEAT's supplement, Fig. 1, on our generator): pairs of frames of the datasets' val/test
clips (a source and a target 8..40 frames later); the source crop is inverted by the encoder and the generator's
feature map at each resolution r is warped by the same motion, the backward flow of the target's mesh to the
source's (:func:`talkinghead.motion.styleheat.flows.mesh_flows`, the mesh flows StyleHEAT v2 draws with; until v2,
piecewise linear over the target mesh's own triangles), before the rest of the generator
runs. Each result is compared (PSNR, at the generator's size) with the real target crop, beside three references
(no warp, the generated image warped in image space, the encoder's own code of the target), and with the image-space
warp of the generated source: how exactly warping features at r carries out the motion (StyleHEAT's observation is
that the 64 x 64 features of a 1024 px generator still transform like the image).

edits: for every face photo (default: ../shared/media/faces) the aligned face crop is inverted (the encoder), each
labelled edit (smile, mouth_open) is applied at each strength (standard deviations of the codes along its
direction, the whole strength at once; with mesh flows the face mesh moves too, the flow drawn from it warps the
photo's features, and the crop is pasted into the photo as ``generate`` pastes it, the mouth's inside drawn by the
learned painter), and the result is measured: the attribute on its MediaPipe mesh
(:func:`talkinghead.train.styleheat.mesh_attributes`, eye-corner distances), CSIM (cosine of dlib embeddings;
not ArcFace, whose weights are not available offline) and the dlib distance (Euclidean; dlib's same-person rule
is < 0.6) against the unedited result (strength 0). The result is the generator's crop upscaled to 256 px (mesh
flows: the pasted photo, read at ``generate``'s default size). A face whose edited result has no detectable face at
some strength is reported and
left out of the summary.

Prints, per edit: the share of (face) series that are strictly monotonic in the strength, the mean Spearman
correlation of attribute and strength, the lowest CSIM and the largest dlib distance over the series.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from talkinghead.constants import CROP_SIZE, DEFAULT_SIZE
from talkinghead.data.clip import clip_dir, list_clips, load_clip
from talkinghead.errors import InputError
from talkinghead.face.crop import crop_face
from talkinghead.face.identity import FaceEmbedder, identity_distance
from talkinghead.face.mesh import mesh_image
from talkinghead.face.model import default_face_model
from talkinghead.face.pose import pose_free
from talkinghead.io import read_image, resize_longer
from talkinghead.motion.styleheat.flows import mesh_flows
from talkinghead.motion.styleheat.infer import (
    StyleHeatModels,
    crop_flows,
    edited_codes,
    edited_expressions,
    load_models,
    moved_meshes,
)
from talkinghead.nn.layers import warp
from talkinghead.render.stylegan.infer import crops_tensor, encode_crops, reference_code, render_codes, to_crops
from talkinghead.render.stylegan.model import Encoder, Generator
from talkinghead.render.stylegan.spec import FacePaste
from talkinghead.spec import MOUTHS
from talkinghead.train.stylegan import psnr
from talkinghead.train.styleheat import LABELLED_EDITS, mesh_attributes

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"


@torch.no_grad()
def layer_study(generator: Generator, encoder: Encoder, datasets: list[Path], *, pairs: int, seed: int = 0) -> dict:
    """Mean PSNR (dB) of warping at each resolution (and of the references) against the real target, and of the
    feature warps against the image-space warp."""
    rng = np.random.default_rng(seed)
    clips = [load_clip(clip_dir(root, c)) for root in datasets for split in ("val", "test")
             for c in list_clips(root, split)]
    clips = [c for c in clips if len(c.meshes) and c.n_frames > 48]
    if not clips:
        raise SystemExit("layers: needs val/test clips with meshes, longer than 48 frames")
    s = generator.config.size
    resolutions = [2**i for i in range(3, generator.config.log_size + 1)]
    scores: dict[str, list[float]] = {k: [] for k in ["no warp", *(f"warp at {r}" for r in resolutions),
                                                       "image warp", "target's own code"]}
    agreement: dict[str, list[float]] = {f"warp at {r}": [] for r in resolutions}
    for _ in range(pairs):
        clip = clips[int(rng.integers(len(clips)))]
        a = int(rng.integers(clip.n_frames - 40))
        b = a + int(rng.integers(8, 41))
        crops = clip.frames([a, b])
        codes = encode_crops(encoder, crops)
        target = crops_tensor(crops[1:], s)
        flow = mesh_flows(clip.meshes[a, :, :2], clip.meshes[b, None, :, :2], size=CROP_SIZE, resolution=s)
        plain, _ = generator(codes[:1], noise="none")
        moved = warp(plain, flow)
        scores["no warp"].append(float(psnr(plain, target)))
        for r in resolutions:
            out, _ = generator(codes[:1], noise="none", flow=F.interpolate(flow, size=(r, r), mode="area") * (r / s))
            scores[f"warp at {r}"].append(float(psnr(out, target)))
            agreement[f"warp at {r}"].append(float(psnr(out, moved)))
        scores["image warp"].append(float(psnr(moved, target)))
        scores["target's own code"].append(float(psnr(generator(codes[1:], noise="none")[0], target)))
    return {"pairs": pairs, "psnr": {k: float(np.mean(v)) for k, v in scores.items()},
            "psnr_to_image_warp": {k: float(np.mean(v)) for k, v in agreement.items()}}


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    rx, ry = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
    return float(np.corrcoef(rx, ry)[0, 1])


def edit_series(models: StyleHeatModels, embedder: FaceEmbedder, face: Path, strengths: list[float]) -> dict:
    """Attribute values and CSIM (against strength 0) of each labelled edit of one face at each strength."""
    photo = resize_longer(read_image(face), DEFAULT_SIZE)
    mesh, _ = mesh_image(photo, source=str(face))
    crop, fc = crop_face(photo, mesh, size=CROP_SIZE)
    w, reference = reference_code(models.generator, models.encoder, crop)
    model, face_model = models.model, default_face_model()
    paste = FacePaste(photo, mesh, mouth=MOUTHS[0]) if model.config.flows == "mesh" else None
    out = {}
    for name in LABELLED_EDITS:
        codes = torch.cat([edited_codes(model, w, {name: s}, 1) for s in strengths])
        if paste is not None:  # the edit moves the face mesh too: the photo's features follow it, then generate's paste
            expression = np.concatenate([edited_expressions(model, {name: s}, 1) for s in strengths])
            targets = moved_meshes(mesh, expression, np.zeros((len(strengths), 3)), face_model=face_model)
            flows = crop_flows(mesh, fc, targets, resolution=model.config.warp_resolution)
            drawn = to_crops(model.render(models.generator, codes, flows, None, reference=reference)[0])
            images = [paste.moved(cv2.resize(c, (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_CUBIC), t)
                      for c, t in zip(drawn, targets)]
        else:
            images = [cv2.resize(c, (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_CUBIC)
                      for c in render_codes(models.generator, codes, reference)]
        values, embeddings = [], []
        for c in images:
            try:
                m, _ = mesh_image(c, source=f"{face.name} {name}")
            except InputError:  # no face found in a blurry generated crop: reported, not fatal
                values.append(float("nan"))
            else:
                values.append(float(mesh_attributes(pose_free(m[None]))[name][0]))
            embeddings.append(embedder.embed(c))
        ref = embeddings[strengths.index(0.0)]
        csim = [float(e @ ref / (np.linalg.norm(e) * np.linalg.norm(ref))) if e is not None and ref is not None
                else float("nan") for e in embeddings]
        dist = [identity_distance(e, ref) if e is not None and ref is not None else float("nan") for e in embeddings]
        out[name] = {"values": values, "csim": csim, "identity": dist}
    return out


def summarise(series: dict[str, dict], strengths: list[float]) -> dict:
    s = np.array(strengths)
    summary = {}
    for name in LABELLED_EDITS:
        rows = [v[name] for v in series.values() if np.isfinite(v[name]["values"]).all()]
        mono = [bool(np.all(np.diff(np.array(r["values"])[np.argsort(s)]) > 0)) for r in rows]
        summary[name] = {"faces": len(rows), "monotonic_share": float(np.mean(mono)) if rows else float("nan"),
                         "spearman": float(np.mean([spearman(s, np.array(r["values"])) for r in rows]))
                         if rows else float("nan"),
                         "min_csim": float(np.nanmin([r["csim"] for r in rows])) if rows else float("nan"),
                         "max_identity": float(np.nanmax([r["identity"] for r in rows])) if rows else float("nan")}
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("check", choices=("layers", "edits"))
    ap.add_argument("paths", nargs="*", type=Path, help="layers: datasets; edits: STYLEHEAT.pt [FACE.jpg ...]")
    ap.add_argument("--stylegan", type=Path, default=None,
                    help="train-stylegan folder (edits: default the shipped feature-path models; layers: needed)")
    ap.add_argument("--pairs", type=int, default=60)
    ap.add_argument("--strengths", type=float, nargs="+", default=[-2.0, -1.0, 0.0, 1.0, 2.0])
    ap.add_argument("-o", "--output", type=Path, default=None)
    args = ap.parse_intermixed_args()
    torch.manual_seed(0)
    if args.check == "layers":
        if args.stylegan is None:
            raise SystemExit("layers: give --stylegan (a constant-path train-stylegan folder)")
        result = layer_study(Generator.load(args.stylegan / "generator.pt"), Encoder.load(args.stylegan / "encoder.pt"),
                             args.paths, pairs=args.pairs)
        for k, v in result["psnr"].items():
            to_warp = result["psnr_to_image_warp"].get(k)
            print(f"{k:>18}: PSNR {v:.2f} dB" + (f", {to_warp:.2f} dB to the image-space warp" if to_warp else ""))
        if args.output:
            args.output.write_text(json.dumps(result, indent=1))
        return
    if not args.paths:
        raise SystemExit("edits: give the StyleHEAT checkpoint")
    if 0.0 not in args.strengths:
        raise SystemExit("--strengths must include 0 (the unedited reference)")
    paths = {"styleheat": args.paths[0]}
    if args.stylegan is not None:
        paths.update(generator=args.stylegan / "generator.pt", encoder=args.stylegan / "encoder.pt")
    models = load_models(paths)
    faces = args.paths[1:] or sorted((MEDIA / "faces").glob("*.jpg"))
    embedder = FaceEmbedder()
    series = {f.name: edit_series(models, embedder, f, args.strengths) for f in faces}
    result = {"strengths": args.strengths, "summary": summarise(series, args.strengths), "faces": series}
    for name, s in result["summary"].items():
        print(f"{name}: {s['faces']} faces, monotonic {s['monotonic_share']:.0%}, spearman {s['spearman']:.2f}, "
              f"lowest CSIM {s['min_csim']:.3f}, largest dlib distance {s['max_identity']:.3f}")
    if args.output:
        args.output.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
