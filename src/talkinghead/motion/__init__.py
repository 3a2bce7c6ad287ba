"""Motion models: audio (+ references) -> per-frame FaceMotion."""

from talkinghead.face.motion import FaceMotion

__all__ = ["FaceMotion"]
