"""The learned mouth painter: paints the inside of the lips (teeth, tongue, cavity, the inner lip edge) of a face
already warped to its target shape, from the target lip contour and one reference frame of the same person.

It works in a small mouth-aligned square (:func:`mouth_frame`: centred on the lips, rotated with the line between
the mouth corners, the corners :data:`MOUTH_WIDTH_FRACTION` of the side apart). Inputs, all (B, C, S, S) in that
square, stacked as channels (:func:`painter_inputs`, the one implementation shared by training and rendering):
the warped crop with the region to paint masked out (3 + the mask), the target's lip sketch (2: the inner mouth
filled, the lip outlines drawn), the reference crop and its lip sketch (3 + 2). The network (a small U-Net working
on 2x2 pixel blocks: pixel-unshuffle in, pixel-shuffle out, so it costs 1-2 ms a frame on one CPU core, run on 8
frames at once; this machine's speed varies that much from hour to hour)
returns RGB that replaces the masked region only; lips, skin and everything around stay the warp's. The shipped
painter (v2) also copies the reference's own mouth through a flow it predicts, where that mouth is open
(:attr:`PainterConfig.reference_warp`).

Trained on the real clips of ``train/`` (``talkinghead train-painter``, :mod:`talkinghead.train.painter`): the
region is the real frame's own inner mouth, the reference another frame of the same clip.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from talkinghead.face import indices as ix
from talkinghead.nn.checkpoint import CheckpointModel

PAINT_SIZE = 64
"""Side of the mouth square the painter works in by default (pixels). The lengths below are in pixels of a square
this size, and scale with a painter's own side."""
MOUTH_WIDTH_FRACTION = 0.6
"""Distance between the mouth corners as a fraction of the square's side."""
MASK_DILATION = 2.0
"""The painted region is the inner mouth grown by this many square pixels (it covers the inner lip edge)."""
PAINT_GAPS = (0.3, 1.5)
"""Inner-lip gaps (square pixels) over which the painting fades in: lips closer than the first are left as warped
(a closed mouth keeps the reference's own lips), from the second on the painting replaces the region fully."""
SKETCH_CHANNELS = 2
INPUT_CHANNELS = 3 + 1 + SKETCH_CHANNELS + 3 + SKETCH_CHANNELS
REFERENCE_RGB = slice(3 + 1 + SKETCH_CHANNELS, 3 + 1 + SKETCH_CHANNELS + 3)
"""The input channels of the reference square's RGB; the next one is its inner mouth filled (its sketch)."""
MAX_FLOW = 0.5
"""Largest offset of the reference-warp flow, as a fraction of the square's half-side."""
REFERENCE_OPEN_AREA = (35.0, 80.0)
"""Areas of the reference's filled inner-mouth sketch (pixels of a :data:`PAINT_SIZE` square) over which the
reference warp's copying fades in: none below the first, fully from the second on. In the training corpus the first
is the area at an inner-lip gap of about 0.3 pixels, the second at about 1.5 (:data:`PAINT_GAPS`); closed lips
measure 25-35 (the sketch's anti-aliased edge). Copying from a closed reference filled an opened mouth with lip
texture."""
GROWN_COPY_LOGIT = -3.0
"""The copy weight's logit at which a drawing painter grown into a copying one starts
(:meth:`MouthPainter.with_reference_warp`): 5 % copied, close to the drawing painter's output, with gradient to learn
from."""
OUTER_LOOP = np.concatenate([ix.LIPS_UPPER_OUTER, ix.LIPS_LOWER_OUTER[::-1][1:-1]])
"""The outer lip outline, in order around the mouth (20 points)."""
LIP_POINTS = np.concatenate([ix.MOUTH_INNER_LOOP, OUTER_LOOP])
"""The 40 mesh points a sketch is drawn from: the inner loop, then the outer loop."""
_SUB = 4  # fractional bits of the polygons drawn


def mouth_frame(mesh_xy: np.ndarray, size: int = PAINT_SIZE) -> np.ndarray:
    """(2, 3) float64 affine mapping image pixels -> the mouth square of side ``size`` for a (478, >=2) pixel mesh."""
    pts = np.asarray(mesh_xy, np.float64)[:, :2]
    left, right = pts[ix.MOUTH_CORNERS[0]], pts[ix.MOUTH_CORNERS[1]]
    axis = right - left
    width = max(float(np.hypot(*axis)), 1e-3)
    c, s = axis / width
    k = MOUTH_WIDTH_FRACTION * size / width
    centre = pts[OUTER_LOOP].mean(0)
    rot = k * np.array([[c, s], [-s, c]])
    return np.concatenate([rot, (size / 2 - 0.5 - rot @ centre)[:, None]], 1)


def to_square(points: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """(N, 2) image pixels -> square pixels by the (2, 3) ``frame``."""
    return np.asarray(points, np.float64)[:, :2] @ frame[:, :2].T + frame[:, 2]


def inner_gap(lips: np.ndarray, size: int = PAINT_SIZE) -> np.ndarray:
    """Mean distance between the upper and lower inner lip of (..., 40, 2) lip points in a square of side ``size``
    (:data:`LIP_POINTS` order: the inner loop's upper arc is points 1..9, its lower arc 19..11 beneath them), in
    pixels of a :data:`PAINT_SIZE` square: (...)."""
    return np.mean(lips[..., 19:10:-1, 1] - lips[..., 1:10, 1], axis=-1) * (PAINT_SIZE / size)


def _poly(points: np.ndarray) -> np.ndarray:
    return np.round(points * (1 << _SUB)).astype(np.int32)


def lip_sketch(lips: np.ndarray, size: int = PAINT_SIZE) -> np.ndarray:
    """(2, S, S) float32 sketch of (40, 2) square-pixel lip points (:data:`LIP_POINTS` order): the inner mouth
    filled, and the inner and outer lip outlines drawn."""
    inner, outer = _poly(lips[:20]), _poly(lips[20:])
    fill = np.zeros((size, size), np.float32)
    cv2.fillPoly(fill, [inner], 1.0, cv2.LINE_AA, _SUB)
    lines = np.zeros((size, size), np.float32)
    cv2.polylines(lines, [inner, outer], True, 1.0, 1, cv2.LINE_AA, _SUB)
    return np.stack([fill, lines])


def paint_mask(lips: np.ndarray, size: int = PAINT_SIZE) -> np.ndarray:
    """(S, S) float32 in 0..1: where the painter's output replaces the crop (the inner mouth grown by
    :data:`MASK_DILATION`, soft-edged)."""
    inner = np.zeros((size, size), np.uint8)
    cv2.fillPoly(inner, [_poly(lips[:20])], 255, cv2.LINE_AA, _SUB)
    r = int(np.ceil(MASK_DILATION * size / PAINT_SIZE))
    grown = cv2.dilate(inner, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    return cv2.GaussianBlur(grown.astype(np.float32) / 255.0, (0, 0), 0.7)


def painter_inputs(crop: np.ndarray, lips: np.ndarray, reference: np.ndarray, reference_lips: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(the (C, S, S) float32 input of :class:`MouthPainter`, the (S, S) paint mask) for one frame.

    Args:
        crop: (S, S, 3) uint8 RGB mouth square of the frame to paint.
        lips: (40, 2) its target lip points in square pixels.
        reference: (S, S, 3) uint8 RGB mouth square of the reference frame.
        reference_lips: (40, 2) the reference's lip points in square pixels.
    """
    size = crop.shape[0]
    mask = paint_mask(lips, size)
    hidden = crop.astype(np.float32).transpose(2, 0, 1) / 127.5 - 1.0
    hidden *= 1.0 - mask
    ref = reference.astype(np.float32).transpose(2, 0, 1) / 127.5 - 1.0
    x = np.concatenate([hidden, mask[None], lip_sketch(lips, size), ref, lip_sketch(reference_lips, size)])
    return x.astype(np.float32), mask


@dataclass
class PainterConfig:
    """Architecture of :class:`MouthPainter` (stored in its checkpoint)."""

    size: int = PAINT_SIZE
    widths: tuple[int, int, int] = (24, 48, 64)
    block: int = 2
    """Pixel-unshuffle factor of the input (the network's first level works on block x block pixel groups)."""
    reference_warp: bool = False
    """Also copy the reference's mouth through a flow the network predicts, blended per pixel with the colours it
    draws: teeth taken from the reference at the square's resolution instead of drawn. Copying fades in with the
    reference mouth's opening (:data:`REFERENCE_OPEN_AREA`): a closed reference mouth, as in most photos, has no
    inside to copy and leaves the drawn colours."""


class _Conv(nn.Sequential):
    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__(nn.Conv2d(cin, cout, 3, stride, 1), nn.LeakyReLU(0.2))


class MouthPainter(CheckpointModel):
    """A three-level U-Net on pixel-unshuffled input: (B, :data:`INPUT_CHANNELS`, S, S) -> (B, 3, S, S) RGB in
    -1..1 (tanh; with :attr:`PainterConfig.reference_warp`, blended per pixel with the reference square sampled
    through a predicted flow)."""

    config_class = PainterConfig
    default_checkpoint: Path | None = Path(__file__).parent / "assets" / "mouth_painter_v2.pt"

    def __init__(self, config: PainterConfig) -> None:
        super().__init__()
        self.config = config
        w, r = config.widths, config.block
        self.e0 = nn.Sequential(_Conv(INPUT_CHANNELS * r * r, w[0]), _Conv(w[0], w[0]))
        self.e1 = nn.Sequential(_Conv(w[0], w[1], 2), _Conv(w[1], w[1]))
        self.e2 = nn.Sequential(_Conv(w[1], w[2], 2), _Conv(w[2], w[2]), _Conv(w[2], w[2]))
        self.d1 = nn.Sequential(_Conv(w[2] + w[1], w[1]), _Conv(w[1], w[1]))
        outputs = 6 if config.reference_warp else 3  # RGB, and with the reference warp its flow (2) and weight (1)
        self.d0 = nn.Sequential(_Conv(w[1] + w[0], w[0]), nn.Conv2d(w[0], outputs * r * r, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.config.block
        a = self.e0(F.pixel_unshuffle(x, r))
        b = self.e1(a)
        c = self.e2(b)
        b = self.d1(torch.cat([F.interpolate(c, scale_factor=2.0, mode="nearest"), b], 1))
        # contiguous: the shuffled channels-last output is slow to slice and to apply tanh to (3.8 ms against 0.4)
        out = F.pixel_shuffle(self.d0(torch.cat([F.interpolate(b, scale_factor=2.0, mode="nearest"), a], 1)),
                              r).contiguous()
        if not self.config.reference_warp:
            return torch.tanh(out)
        # the squares of target and reference are both aligned to their mouth: the flow starts at the identity
        h, w = x.shape[-2:]
        grid = _identity_grid(h, w, x.device) + MAX_FLOW * torch.tanh(out[:, 3:5]).permute(0, 2, 3, 1)
        copied = F.grid_sample(x[:, REFERENCE_RGB], grid, mode="bilinear", padding_mode="border", align_corners=False)
        # the area of the reference's inner mouth (its filled sketch) in pixels of a PAINT_SIZE square
        area = x[:, REFERENCE_RGB.stop].sum((1, 2)) * (PAINT_SIZE / h) ** 2
        low, high = REFERENCE_OPEN_AREA
        weight = torch.sigmoid(out[:, 5:6]) * ((area - low) / (high - low)).clamp(0, 1)[:, None, None, None]
        return weight * copied + (1 - weight) * torch.tanh(out[:, :3])

    def with_reference_warp(self) -> MouthPainter:
        """This drawing painter grown into one that also copies the reference (:attr:`PainterConfig.reference_warp`),
        to be trained on: its colours are this painter's, its flow starts at the identity and its copy weight at
        sigmoid(:data:`GROWN_COPY_LOGIT`), so it paints as this one did until training moves the copy."""
        if self.config.reference_warp:
            raise ValueError("this painter copies the reference already")
        grown = MouthPainter(replace(self.config, reference_warp=True))
        state = self.state_dict()
        weight, bias = state["d0.1.weight"], state["d0.1.bias"]  # the last convolution: 3 x block^2 outputs, RGB
        r2 = self.config.block ** 2  # pixel-shuffle groups the outputs by channel: RGB, flow (2), weight (1)
        state["d0.1.weight"] = torch.cat([weight, weight.new_zeros((3 * r2, *weight.shape[1:]))])
        state["d0.1.bias"] = torch.cat([bias, bias.new_zeros(2 * r2), bias.new_full((r2,), GROWN_COPY_LOGIT)])
        grown.load_state_dict(state)
        return grown


@functools.cache
def _identity_grid(h: int, w: int, device: torch.device) -> torch.Tensor:
    """(1, h, w, 2) grid_sample coordinates of the pixel centres of an h x w image (align_corners=False), on the
    input's device (training on GPUs); made outside inference mode, so that one cached while rendering can serve in
    training too."""
    with torch.inference_mode(False):
        ys, xs = torch.meshgrid(torch.linspace(-1 + 1 / h, 1 - 1 / h, h, device=device),
                                torch.linspace(-1 + 1 / w, 1 - 1 / w, w, device=device), indexing="ij")
        return torch.stack([xs, ys], -1)[None]


def composite(x: torch.Tensor, painted: torch.Tensor) -> torch.Tensor:
    """The painted RGB in the masked region of the input's crop, the crop elsewhere: (B, 3, S, S) in -1..1."""
    mask = x[:, 3:4]
    return x[:, :3] + mask * painted  # the input's crop is already zero where mask is 1


class LearnedMouth:
    """Paints the mouths of one video's frames with :class:`MouthPainter` against one reference frame.

    Args:
        image: (H, W, 3) uint8 RGB reference frame (a photo, or a dubbed video's frame with the mouth open).
        mesh_xy: (478, >=2) its pixel mesh.
        painter: the model (default: the shipped one).
    """

    def __init__(self, image: np.ndarray, mesh_xy: np.ndarray, painter: MouthPainter | None = None) -> None:
        # channels-last weights and inputs: oneDNN's faster convolution layout on the CPU (a quarter off a frame)
        self.painter = (painter or MouthPainter.default()).to(memory_format=torch.channels_last)
        self.size = self.painter.config.size
        frame = mouth_frame(mesh_xy, self.size)
        self.reference = cv2.warpAffine(image, frame, (self.size, self.size), flags=cv2.INTER_LINEAR,
                                        borderMode=cv2.BORDER_REPLICATE)
        self.reference_lips = to_square(np.asarray(mesh_xy)[LIP_POINTS], frame)

    def paint(self, image: np.ndarray, mesh_xy: np.ndarray, source_xy: np.ndarray | None = None) -> None:
        """Paint the mouth of ``image`` ((H, W, 3) uint8 RGB, modified in place) whose lips are at ``mesh_xy``
        ((478, >=2) pixels). ``source_xy`` ((478, >=2), the same pixels): the mesh of the frame warped into
        ``image``. The painting fades in with the wider of the two mouths' openings: a mouth that was open in the
        warped frame and is closed in the target has its inside squeezed into the line between the lips, and is
        painted over too."""
        self.paint_all([(image, mesh_xy, source_xy)])

    def paint_all(self, jobs: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray | None]]) -> None:
        """:meth:`paint` for each (image, mesh_xy, source_xy) of ``jobs``, the network run once on all of them
        (8 frames at once, as the renderer paints them: about 1.1 ms a frame on one core against 1.6 ms one by one,
        and 2-3 ms one by one between the warps of a run)."""
        inputs = [_PaintJob.of(self, *job) for job in jobs]
        inputs = [job for job in inputs if job is not None]
        if not inputs:
            return
        x = torch.from_numpy(np.stack([job.x for job in inputs])).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            rgb = self.painter(x).numpy()
        for job, out in zip(inputs, rgb):
            job.apply(np.clip((out.transpose(1, 2, 0) + 1.0) * 127.5, 0, 255).astype(np.float32))


@dataclass
class _PaintJob:
    """One frame's mouth on its way through :meth:`LearnedMouth.paint_all`: the image to paint, its mouth square
    ``frame`` ((2, 3) affine), the painter's input ``x`` and paint ``mask`` (:func:`painter_inputs`), and the
    painting's ``fade`` (0..1)."""

    image: np.ndarray
    frame: np.ndarray
    x: np.ndarray
    mask: np.ndarray
    fade: float

    @classmethod
    def of(cls, mouth: LearnedMouth, image: np.ndarray, mesh_xy: np.ndarray, source_xy: np.ndarray | None
           ) -> _PaintJob | None:
        """The job of one frame (see :meth:`LearnedMouth.paint`), or None where nothing is painted."""
        size = mouth.size
        frame = mouth_frame(mesh_xy, size)
        lips = to_square(np.asarray(mesh_xy)[LIP_POINTS], frame)
        gap = inner_gap(lips, size)
        if source_xy is not None:
            source = to_square(np.asarray(source_xy)[LIP_POINTS], mouth_frame(source_xy, size))
            gap = max(gap, inner_gap(source, size))
        low, high = PAINT_GAPS
        fade = float(np.clip((gap - low) / (high - low), 0.0, 1.0))
        if fade == 0.0:
            return None
        crop = cv2.warpAffine(image, frame, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        x, mask = painter_inputs(crop, lips, mouth.reference, mouth.reference_lips)
        return cls(image=image, frame=frame, x=x, mask=mask, fade=fade)

    def apply(self, painted: np.ndarray) -> None:
        """Blend the painter's (S, S, 3) float32 0..255 output into the image, through the mask faded in."""
        image, frame, mask = self.image, self.frame, self.mask
        # back to the image: only the box the mask covers there
        inverse = cv2.invertAffineTransform(frame)
        ys, xs = np.nonzero(mask > 1e-3)
        if not len(xs):
            return
        corners = to_square(np.array([[xs.min() - 1, ys.min() - 1], [xs.max() + 1, ys.min() - 1],
                                      [xs.min() - 1, ys.max() + 1], [xs.max() + 1, ys.max() + 1]], np.float64),
                            inverse)
        h, w = image.shape[:2]
        x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int) + 1, [w, h])
        if x1 <= x0 or y1 <= y0:
            return
        back = inverse.copy()
        back[:, 2] = inverse[:, 2] - [x0, y0]
        box = (int(x1 - x0), int(y1 - y0))
        a = self.fade * cv2.warpAffine(mask, back, box, flags=cv2.INTER_LINEAR, borderValue=0)[..., None]
        p = cv2.warpAffine(painted, back, box, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        region = image[y0:y1, x0:x1].astype(np.float32)
        image[y0:y1, x0:x1] = np.clip(region + a * (p - region) + 0.5, 0, 255).astype(np.uint8)
