"""Finding the clips of a corpus and their speakers and splits, per folder layout."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".mpg", ".mpeg", ".webm", ".m4v"}
LAYOUTS = ("folder", "voxceleb2", "lrs2", "lrs3", "hdtf", "mead")


@dataclass
class ClipSource:
    """A clip to preprocess: its file, a unique id, its speaker, split and labels."""

    path: Path
    clip_id: str
    speaker: str
    split: str
    labels: dict = field(default_factory=dict)


def speaker_split(speaker: str, *, val: float = 0.1, test: float = 0.1) -> str:
    """Deterministic split by speaker (no speaker in two splits): a hash of the name picks it."""
    u = int(hashlib.sha1(speaker.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "test" if u < test else "val" if u < test + val else "train"


def speaker_key(clip_id: str) -> str:
    """The speaker of a clip of ``../shared/media/train`` (``preprocess``'s folder layout, which names a speaker by
    its subfolder) as far as the clip ids tell: First Impressions clips of one YouTube video (``..._fi_<video>_NNN``),
    MEAD clips of one actor, and every GRID clip (its speakers are not named) share a key; any other clip is its own
    speaker."""
    if m := re.match(r"firstimpressions__karenyang_fi_(.+)_\d{3}$", clip_id):
        return f"fi:{m.group(1)}"
    if m := re.match(r"mead__filby89_mead_([MW]\d+)_", clip_id):
        return f"mead:{m.group(1)}"
    if clip_id.startswith("grid__"):
        return "grid"
    return clip_id


def _clip_id(rel: Path) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", "__".join(rel.with_suffix("").parts))


def _videos(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())


def _lrs2_official(root: Path) -> dict[str, str]:
    out = {}
    for split in ("train", "val", "test"):
        f = root / f"{split}.txt"
        if f.exists():
            for line in f.read_text().split("\n"):
                if line.strip():
                    out[line.split()[0]] = split
    return out


def discover(root: Path, layout: str) -> list[ClipSource]:
    """All clips under ``root`` for a layout.

    - folder: any videos, recursively; speaker = the parent folder (the file name for files at the top).
    - voxceleb2: .../idNNNNN/VIDEO/UTT.mp4; speaker = idNNNNN; "test" in the path -> test split.
    - lrs2: main|pretrain/VIDEO/UTT.mp4; official train/val/test.txt lists when present; speaker = VIDEO.
    - lrs3: pretrain|trainval|test/SPEAKER/UTT.mp4; test/ -> test split.
    - hdtf: NAME_NNN.mp4 (e.g. WDA_KatieHill_000.mp4); speaker = NAME.
    - mead: ACTOR/video/front/EMOTION/level_N/NNN.mp4; speaker = ACTOR; labels emotion, level (front view only).
    Other splits are chosen by :func:`speaker_split`.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r} (one of {', '.join(LAYOUTS)})")
    sources = []
    official = _lrs2_official(root) if layout == "lrs2" else {}
    for path in _videos(root):
        rel = path.relative_to(root)
        parts = rel.parts
        labels: dict = {}
        split = None
        if layout == "folder":
            speaker = parts[-2] if len(parts) > 1 else path.stem
        elif layout == "voxceleb2":
            ids = [p for p in parts if re.fullmatch(r"id\d+", p)]
            speaker = ids[0] if ids else parts[0]
            split = "test" if "test" in parts else None
        elif layout == "lrs2":
            speaker = parts[-2] if len(parts) > 1 else path.stem
            split = official.get(f"{parts[-2]}/{path.stem}") if len(parts) > 1 else None
        elif layout == "lrs3":
            speaker = parts[-2] if len(parts) > 1 else path.stem
            split = "test" if parts[0] == "test" else None
        elif layout == "hdtf":
            speaker = re.sub(r"_\d+$", "", path.stem)
        else:  # mead
            if "front" not in parts:
                continue
            speaker = parts[0]
            i = parts.index("front")
            if len(parts) > i + 2:
                labels = {"emotion": parts[i + 1], "level": parts[i + 2].replace("level_", "")}
        sources.append(ClipSource(path, _clip_id(rel), speaker, split or speaker_split(speaker), labels))
    return sources
