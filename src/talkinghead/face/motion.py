"""The motion representation every motion model produces and every renderer consumes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from talkinghead.face.expression import ExpressionBasis


@dataclass
class FaceMotion:
    """Per-frame face motion for T frames, relative to the reference face.

    Attributes:
        fps: frame rate.
        expression: (T, K) float32 coefficients in ``basis`` (offsets from the reference's own shape).
        basis: the linear expression model the coefficients belong to.
        head_rotation: (T, 3) float32 (pitch, yaw, roll) radians applied on top of the reference pose.
        head_translation: (T, 3) float32 canonical units, on top of the reference position.
        blink: (T,) float32 eyelid closure, 0 = as in the reference, 1 = closed.
    """

    fps: float
    expression: np.ndarray
    basis: ExpressionBasis
    head_rotation: np.ndarray
    head_translation: np.ndarray
    blink: np.ndarray

    def __len__(self) -> int:
        return len(self.expression)
