"""Identity distance with dlib's 128-d face embedding (weights ship in face-recognition-models).

This is not ArcFace (no weights for it are available offline); dlib's model is the one we
can run, and reports say so. Distances below ~0.6 usually mean the same person.
"""

from __future__ import annotations

import numpy as np


class FaceEmbedder:
    """dlib HOG face detector + 68-point shape predictor + ResNet face embedding."""

    def __init__(self) -> None:
        import warnings

        import dlib

        with warnings.catch_warnings():  # the package still imports pkg_resources
            warnings.simplefilter("ignore", UserWarning)
            import face_recognition_models as frm

        self._detect = dlib.get_frontal_face_detector()
        self._shape = dlib.shape_predictor(frm.pose_predictor_model_location())
        self._embed = dlib.face_recognition_model_v1(frm.face_recognition_model_location())
        self._dlib = dlib

    def embed(self, image: np.ndarray) -> np.ndarray | None:
        """128-d embedding of the largest face in an (H, W, 3) uint8 RGB image, or None if no face."""
        img = np.ascontiguousarray(image)
        boxes = self._detect(img, 1)
        if not boxes:
            return None
        box = max(boxes, key=lambda b: b.width() * b.height())
        shape = self._shape(img, box)
        return np.array(self._embed.compute_face_descriptor(img, shape), np.float64)


def identity_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance between two dlib embeddings."""
    return float(np.linalg.norm(a - b))
