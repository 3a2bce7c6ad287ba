"""Motion models: audio (+ references) -> per-frame FaceMotion."""

from talkinghead.motion.base import FaceMotion

__all__ = ["FaceMotion"]
