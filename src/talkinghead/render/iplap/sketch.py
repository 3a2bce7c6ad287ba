"""Landmark sketches: IP_LAP's 131 landmarks drawn as coloured polylines (the renderer's input)."""

from __future__ import annotations

import cv2
import numpy as np

from talkinghead.face import indices as ix

PART_COLOURS = {"lips": (255, 64, 64), "eyes": (64, 255, 64), "brows": (64, 64, 255), "nose": (255, 255, 64),
                "oval": (64, 255, 255)}
"""RGB colour of each sketch part (distinct parts let the renderer tell lips from jaw)."""
_SLOT = {int(p): i for i, p in enumerate(ix.IPLAP_REFERENCE)}
SKETCH_LINES = [(part, np.array([_SLOT[p] for p in line])) for part, lines in ix.IPLAP_SKETCH_PARTS.items()
                for line in lines]
"""(part, indices into the 131 reference points) of every polyline."""


def draw_sketch(points: np.ndarray, size: int) -> np.ndarray:
    """(131, 2) landmarks in [0, 1] crop coordinates (IPLAP_REFERENCE order) -> (size, size, 3) uint8 sketch."""
    img = np.zeros((size, size, 3), np.uint8)
    px = np.round(points * size * 4).astype(np.int32)  # 2 fractional bits for sub-pixel lines
    for part, idx in SKETCH_LINES:
        cv2.polylines(img, [px[idx]], False, PART_COLOURS[part], 1, cv2.LINE_AA, shift=2)
    return img
