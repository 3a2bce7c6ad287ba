"""The mouth interiors the warp renderer draws where the lips part: a painted one (dark cavity, upper and lower
teeth bands; no weights) and, by default, the learned painter's (:mod:`talkinghead.render.warp.painter`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from talkinghead.face import indices as ix
from talkinghead.spec import MOUTHS

SUBPIXEL_BITS = 4
MIN_GAP_PX = 0.6
"""Lip gaps smaller than this (pixels) are left as warped."""


@dataclass
class MouthColours:
    """Colours of the painted interior, RGB float32 in 0..255."""

    cavity: np.ndarray
    teeth: np.ndarray


def mouth_colours(image: np.ndarray, mesh_xy: np.ndarray) -> MouthColours:
    """Cavity and teeth colours matched to the reference's lips, skin tone and lighting.

    The cavity is a dark shade of the lips; the teeth are an off-white pulled toward the skin
    colour, so they share the picture's white balance (a warm painting gets warm teeth).
    """
    h, w = image.shape[:2]
    lips_mask = np.zeros((h, w), np.uint8)
    outer = np.concatenate([ix.LIPS_UPPER_OUTER, ix.LIPS_LOWER_OUTER[::-1][1:-1]])
    cv2.fillPoly(lips_mask, [np.round(mesh_xy[outer]).astype(np.int32)], 1)
    face_mask = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(face_mask, cv2.convexHull(np.round(mesh_xy[ix.FACE_OVAL]).astype(np.int32)), 1)
    lips = image[lips_mask.astype(bool)].astype(np.float32)
    skin = image[(face_mask & (1 - lips_mask)).astype(bool)].astype(np.float32)
    lip = lips.mean(0) if len(lips) else np.array([150.0, 80.0, 80.0], np.float32)
    tone = np.percentile(skin, 75, axis=0) if len(skin) else np.array([200.0, 160.0, 140.0], np.float32)
    cavity = lip * 0.22 + np.array([6.0, 0.0, 0.0], np.float32)
    white = np.float32(min(235.0, 1.15 * float(tone.max())))
    teeth = 0.6 * white + 0.4 * tone
    return MouthColours(cavity=cavity.astype(np.float32), teeth=np.clip(teeth, 0, 240).astype(np.float32))


def paint_mouth(image: np.ndarray, mesh_xy: np.ndarray, colours: MouthColours) -> None:
    """Paint the mouth interior in place where the inner lips part.

    Args:
        image: (H, W, 3) uint8 RGB, modified in place.
        mesh_xy: (478, 2) target mesh in the image's pixel coordinates.
    """
    upper, lower = mesh_xy[ix.LIPS_UPPER_INNER], mesh_xy[ix.LIPS_LOWER_INNER]
    pairs = mesh_xy[ix.INNER_LIP_PAIRS]
    gap = float(np.mean(pairs[:, 1, 1] - pairs[:, 0, 1]))
    if gap < MIN_GAP_PX:
        return
    width = float(np.linalg.norm(upper[-1] - upper[0]))
    x0, y0 = np.floor(mesh_xy[ix.MOUTH_INNER_LOOP].min(0)).astype(int) - 3
    x1, y1 = np.ceil(mesh_xy[ix.MOUTH_INNER_LOOP].max(0)).astype(int) + 4
    h, w = image.shape[:2]
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 3 or y1 - y0 < 2:
        return
    origin = np.array([x0, y0], np.float64)
    scale = float(1 << SUBPIXEL_BITS)

    def poly(points: np.ndarray) -> np.ndarray:
        return np.round((points - origin) * scale).astype(np.int32)

    shape = (y1 - y0, x1 - x0)
    inside = np.zeros(shape, np.float32)
    cv2.fillPoly(inside, [poly(mesh_xy[ix.MOUTH_INNER_LOOP])], 1.0, cv2.LINE_AA, SUBPIXEL_BITS)
    upper_h = min(0.42 * gap, 0.11 * width)
    lower_h = float(np.clip(0.15 * gap - 0.02 * width, 0.0, 0.05 * width))
    upper_teeth = np.zeros(shape, np.float32)
    cv2.fillPoly(upper_teeth, [poly(np.concatenate([upper, (upper + [0, upper_h])[::-1]]))], 1.0, cv2.LINE_AA,
                 SUBPIXEL_BITS)
    lower_teeth = np.zeros(shape, np.float32)
    if lower_h > 0.5:
        cv2.fillPoly(lower_teeth, [poly(np.concatenate([lower, (lower - [0, lower_h])[::-1]]))], 1.0, cv2.LINE_AA,
                     SUBPIXEL_BITS)
    xs = ((np.arange(shape[1]) + x0 - upper[:, 0].mean()) / max(width / 2, 1.0))[None, :]
    # teeth fade toward the mouth corners (lower ones sooner); the cavity darkens there
    teeth = upper_teeth * np.clip(1.3 - 1.1 * xs**2, 0, 1) + lower_teeth * np.clip(1.0 - 2.0 * xs**2, 0, 1)
    sigma = max(0.5, 0.012 * width)
    teeth = np.clip(cv2.GaussianBlur(teeth, (0, 0), sigma), 0.0, 1.0)
    inside = cv2.GaussianBlur(inside, (0, 0), 0.6)
    shade = np.clip(1.0 - 0.5 * xs**2, 0.4, 1.0)[..., None]
    interior = (colours.cavity[None, None] + teeth[..., None] * (colours.teeth - colours.cavity)[None, None]) * shade
    region = image[y0:y1, x0:x1].astype(np.float32)
    a = inside[..., None]
    image[y0:y1, x0:x1] = np.clip(region + a * (interior - region) + 0.5, 0, 255).astype(np.uint8)


class Mouth(Protocol):
    """Draws the inside of the lips of a warped face."""

    def paint(self, image: np.ndarray, mesh_xy: np.ndarray, source_xy: np.ndarray | None = None) -> None:
        """Draw in place into ``image`` ((H, W, 3) uint8 RGB) whose target mesh is ``mesh_xy`` ((478, >=2) px);
        ``source_xy``: the mesh of the frame that was warped into ``image`` (same pixels), where it is known."""
        ...

    def paint_all(self, jobs: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray | None]]) -> None:
        """:meth:`paint` for each (image, mesh_xy, source_xy) of ``jobs`` (a learned mouth runs its network once)."""
        ...


@dataclass(frozen=True)
class PaintedMouth:
    """The painted interior in one set of colours (a video's frames share them, so it does not flicker)."""

    colours: MouthColours

    @classmethod
    def of(cls, image: np.ndarray, mesh_xy: np.ndarray) -> PaintedMouth:
        return cls(mouth_colours(image, np.asarray(mesh_xy)[:, :2]))

    def paint(self, image: np.ndarray, mesh_xy: np.ndarray, source_xy: np.ndarray | None = None) -> None:
        """Paint where the target's inner lips part (the source frame does not matter: closed lips are left)."""
        paint_mouth(image, np.asarray(mesh_xy)[:, :2], self.colours)

    def paint_all(self, jobs: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray | None]]) -> None:
        for job in jobs:
            self.paint(*job)


def make_mouth(kind: str, image: np.ndarray, mesh_xy: np.ndarray, *, checkpoint: str | None = None) -> Mouth:
    """The ``kind`` (:data:`MOUTHS`) of mouth for a reference frame ((H, W, 3) uint8 RGB) and its (478, >=2) pixel
    mesh: the learned painter (shipped weights, or ``checkpoint``) copies its teeth and lips, the painted interior
    its colours."""
    if kind == "painted":
        return PaintedMouth.of(image, mesh_xy)
    if kind != "learned":
        raise ValueError(f"unknown mouth {kind!r} (choose from {', '.join(MOUTHS)})")
    from talkinghead.render.warp.painter import LearnedMouth, MouthPainter

    return LearnedMouth(image, mesh_xy, MouthPainter.load(checkpoint) if checkpoint else None)
