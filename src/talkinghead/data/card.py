"""``talkinghead datacard``: counts, durations, identities and per-split statistics of datasets, and the sources of
their clips with their licences (from a ``MANIFEST.tsv`` beside the preprocessed corpus: columns ``file``,
``source repository`` and ``licence``, one row per video, as ``../shared/media/train`` has)."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np

from talkinghead.audio.phonemes import PHONES
from talkinghead.constants import DATA_FPS
from talkinghead.data.clip import SPLITS, clip_dir, list_clips


def _clip_stats(root: Path, cid: str) -> dict:
    meta = json.loads((clip_dir(root, cid) / "meta.json").read_text())
    with np.load(clip_dir(root, cid) / "data.npz", allow_pickle=False) as z:
        phone_ids, voiced, blink = z["phone_ids"], z["voiced"], z["blink"]
        has_embedding = bool(np.isfinite(z["identity_embedding"]).all())
    return {"meta": meta, "phone_ids": phone_ids, "voiced": float(voiced.mean()),
            "blinks": int(np.sum((blink[1:] > 0.5) & (blink[:-1] <= 0.5))), "embedding": has_embedding}


UNLISTED = "not in the corpus's MANIFEST.tsv (see the corpus's README)"


def manifest(corpus: Path) -> dict[str, dict[str, str]]:
    """The rows of ``corpus``/MANIFEST.tsv by file path (relative to the corpus), or {} when there is none."""
    path = corpus / "MANIFEST.tsv"
    if not path.is_file():
        return {}
    with path.open(newline="") as f:
        return {row["file"]: row for row in csv.DictReader(f, delimiter="\t")}


def sources(roots: list[Path]) -> list[dict]:
    """Clips and minutes per (source repository, licence) over every clip of the datasets, from the manifests of
    the corpora they were preprocessed from (each dataset's summary.json names its corpus)."""
    totals: dict[tuple[str, str], list[float]] = {}
    for root in roots:
        summary = root / "summary.json"
        corpus = Path(json.loads(summary.read_text())["source"]) if summary.exists() else None
        rows = manifest(corpus) if corpus else {}
        for cid in list_clips(root):
            meta = json.loads((clip_dir(root, cid) / "meta.json").read_text())
            try:
                row = rows.get(str(Path(meta["source"]).relative_to(corpus))) if corpus else None
            except ValueError:
                row = None
            key = (row["source repository"], row["licence"]) if row else (str(corpus or root), UNLISTED)
            t = totals.setdefault(key, [0, 0.0])
            t[0] += 1
            t[1] += meta["frames"] / DATA_FPS / 60
    return [{"source": k[0], "licence": k[1], "clips": int(v[0]), "minutes": round(v[1], 2)}
            for k, v in sorted(totals.items(), key=lambda kv: -kv[1][1])]


def datacard(roots: list[Path]) -> dict:
    """Statistics of one or more dataset folders, overall and per split."""
    card: dict = {"datasets": [str(r) for r in roots], "fps": DATA_FPS, "splits": {}}
    all_speakers: set[str] = set()
    phone_counts: Counter = Counter()
    labels: Counter = Counter()
    for split in SPLITS:
        stats = [_clip_stats(r, c) for r in roots for c in list_clips(r, split)]
        frames = [s["meta"]["frames"] for s in stats]
        speakers = {s["meta"]["speaker"] for s in stats}
        all_speakers |= speakers
        for s in stats:
            phone_counts.update(PHONES[i] for i in s["phone_ids"])
            labels.update(f"{k}={v}" for k, v in s["meta"].get("labels", {}).items())
        card["splits"][split] = {
            "clips": len(stats), "speakers": len(speakers), "frames": int(sum(frames)),
            "hours": round(sum(frames) / DATA_FPS / 3600, 4),
            "clip_seconds": {"min": round(min(frames) / DATA_FPS, 2),
                             "median": round(float(np.median(frames)) / DATA_FPS, 2),
                             "max": round(max(frames) / DATA_FPS, 2)} if frames else {},
            "voiced_share": round(float(np.mean([s["voiced"] for s in stats])), 3) if stats else 0.0,
            "blinks_per_minute": round(sum(s["blinks"] for s in stats) / max(sum(frames) / DATA_FPS / 60, 1e-9), 1)
            if frames else 0.0,
            "identity_embeddings": sum(s["embedding"] for s in stats),
            "phonemes": dict(Counter(s["meta"].get("phonemes", "") for s in stats)),
        }
    skipped: dict = {}
    for r in roots:
        summary = r / "summary.json"
        if summary.exists():
            for reason, n in json.loads(summary.read_text()).get("skip_reasons", {}).items():
                skipped[reason] = skipped.get(reason, 0) + n
    total = sum(v["frames"] for v in card["splits"].values())
    card.update({"clips": sum(v["clips"] for v in card["splits"].values()), "speakers": len(all_speakers),
                 "frames": total, "hours": round(total / DATA_FPS / 3600, 4), "skipped": skipped,
                 "labels": dict(labels), "phone_frames": {p: phone_counts.get(p, 0) for p in PHONES},
                 "sources": sources(roots)})
    return card


def markdown(card: dict) -> str:
    """The card as a Markdown page."""
    lines = ["# Data card", "", f"Datasets: {', '.join(card['datasets'])}  ", f"Frame rate: {card['fps']} fps  ",
             f"Clips: {card['clips']}, speakers: {card['speakers']}, frames: {card['frames']} "
             f"({card['hours'] * 60:.1f} min)", "", "| split | clips | speakers | minutes | clip s (min/median/max) | "
             "voiced | blinks/min | embeddings |", "|---|---|---|---|---|---|---|---|"]
    for split, s in card["splits"].items():
        cs = s["clip_seconds"]
        span = f"{cs['min']}/{cs['median']}/{cs['max']}" if cs else "-"
        lines.append(f"| {split} | {s['clips']} | {s['speakers']} | {s['hours'] * 60:.2f} | {span} | "
                     f"{s['voiced_share']} | {s['blinks_per_minute']} | {s['identity_embeddings']} |")
    if card["skipped"]:
        lines += ["", "Skipped clips: " + ", ".join(f"{k}: {v}" for k, v in card["skipped"].items())]
    if card["labels"]:
        lines += ["", "Labels: " + ", ".join(f"{k}: {v}" for k, v in sorted(card["labels"].items()))]
    lines += ["", "| source | licence | clips | minutes |", "|---|---|---|---|"]
    lines += [f"| {x['source']} | {x['licence']} | {x['clips']} | {x['minutes']} |" for x in card["sources"]]
    rare = [p for p, n in card["phone_frames"].items() if n == 0]
    lines += ["", f"Phones never seen: {', '.join(rare) if rare else 'none'}", ""]
    return "\n".join(lines)


def write_datacard(roots: list[Path], out: Path) -> dict:
    """Write ``out``.md and ``out``.json; returns the card."""
    card = datacard(roots)
    out.with_suffix(".json").write_text(json.dumps(card, indent=1))
    out.with_suffix(".md").write_text(markdown(card))
    return card
