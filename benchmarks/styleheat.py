"""StyleHEAT attribute-edit check: does the edited attribute move monotonically with the edit strength (measured on
the mesh) while the identity stays close?

    python benchmarks/styleheat.py edits STYLEHEAT.pt --stylegan DIR [FACE.jpg ...] [--strengths -2 -1 0 1 2]

For every face photo (default: ../shared/media/faces) the aligned face crop is inverted (the encoder), each
labelled edit (smile, mouth_open) is applied at each strength (standard deviations of the codes along its
direction, the whole strength at once), and the generator's crop is measured: the attribute on its MediaPipe mesh
(:func:`talkinghead.train.styleheat.mesh_attributes`, eye-corner distances) and CSIM (cosine of dlib embeddings;
not ArcFace, whose weights are not available offline) against the unedited crop (strength 0). Crops are upscaled
to 256 px before both measures. A face whose edited crop has no detectable face at some strength is reported and
left out of the summary.

Prints, per edit: the share of (face) series that are strictly monotonic in the strength, the mean Spearman
correlation of attribute and strength, and the lowest CSIM over the series.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import torch

from talkinghead.data.clip import CROP_SIZE
from talkinghead.errors import InputError
from talkinghead.face.crop import crop_face
from talkinghead.face.mesh import mesh_image
from talkinghead.face.pose import pose_free
from talkinghead.io import read_image
from talkinghead.metrics.identity import FaceEmbedder
from talkinghead.motion.styleheat.infer import StyleHeatModels, edited_codes, load_models
from talkinghead.render.stylegan.infer import reference_code, render_codes
from talkinghead.train.styleheat import LABELLED_EDITS, mesh_attributes

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    rx, ry = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
    return float(np.corrcoef(rx, ry)[0, 1])


def edit_series(models: StyleHeatModels, embedder: FaceEmbedder, face: Path, strengths: list[float]) -> dict:
    """Attribute values and CSIM (against strength 0) of each labelled edit of one face at each strength."""
    photo = read_image(face)
    mesh, _ = mesh_image(photo, source=str(face))
    crop, _ = crop_face(photo, mesh, size=CROP_SIZE)
    w = reference_code(models.generator, models.encoder, crop)
    out = {}
    for name in LABELLED_EDITS:
        codes = torch.cat([edited_codes(models.model, w, {name: s}, 1) for s in strengths])
        crops = [cv2.resize(c, (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_CUBIC)
                 for c in render_codes(models.generator, codes)]
        values, embeddings = [], []
        for c in crops:
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
        out[name] = {"values": values, "csim": csim}
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
                         "min_csim": float(np.nanmin([r["csim"] for r in rows])) if rows else float("nan")}
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("check", choices=("edits",))
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("faces", nargs="*", type=Path)
    ap.add_argument("--stylegan", type=Path, required=True)
    ap.add_argument("--strengths", type=float, nargs="+", default=[-2.0, -1.0, 0.0, 1.0, 2.0])
    ap.add_argument("-o", "--output", type=Path, default=None)
    args = ap.parse_args()
    if 0.0 not in args.strengths:
        raise SystemExit("--strengths must include 0 (the unedited reference)")
    models = load_models({"styleheat": args.checkpoint, "generator": args.stylegan / "generator.pt",
                          "encoder": args.stylegan / "encoder.pt"})
    faces = args.faces or sorted((MEDIA / "faces").glob("*.jpg"))
    embedder = FaceEmbedder()
    series = {f.name: edit_series(models, embedder, f, args.strengths) for f in faces}
    result = {"strengths": args.strengths, "summary": summarise(series, args.strengths), "faces": series}
    for name, s in result["summary"].items():
        print(f"{name}: {s['faces']} faces, monotonic {s['monotonic_share']:.0%}, spearman {s['spearman']:.2f}, "
              f"lowest CSIM {s['min_csim']:.3f}")
    if args.output:
        args.output.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
