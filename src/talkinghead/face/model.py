"""The face coefficient model ("our 3DMM"): identity + expression PCA of pose-free meshes.

shape = mean + identity @ identity_basis + expression @ expression_basis, in canonical units
(outer eye-corner distance = 1). A clip's identity is its mean pose-free mesh; expressions are
the per-frame offsets from it. Expression components whose motion lies mostly on the lips, jaw
and chin form the "lower face / speech-strongly-related" group, the rest the "upper face /
weakly-related" group (the split by measured speech correlation is VAST's own script).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from talkinghead.face import indices as ix
from talkinghead.face.expression import GAP, ExpressionBasis, mouth_features

FACE_MODEL_ASSET = "face_model_v1.npz"
LOWER_FACE_SHARE = 0.6
"""A component is in the lower-face group when at least this share of its squared motion lies on
vertices below the nose tip (lips, jaw, chin, lower cheeks) of the mean shape."""
EXPRESSION_PRIOR = 1e-3
"""Weight of the expression coefficients' Gaussian prior (each with its spread in the fit data) against the squared
vertex error in :meth:`FaceModel.fit_expression`. Chosen on `train/` by the lip gap of the rest shape recovered
from single frames against the clip's mean shape (448 frames of 56 clips; flat from 3e-4 to 3e-3): mean error 0.028
canonical units, against 0.043 with no prior and 0.042 taking the frame itself as the rest shape (on the 8
`talking/` clips: 0.017, 0.020, 0.034)."""


@dataclass
class FaceModel:
    """Linear identity + expression model of the 478-point mesh.

    Attributes:
        mean: (478, 3) float32 mean identity shape.
        identity_basis: (I, 478, 3) float32 orthonormal (as flattened vectors) identity components.
        expression_basis: (K, 478, 3) float32 orthonormal expression components, by decreasing variance.
        expression_std: (K,) float32 standard deviation of each expression coefficient in the fit data.
        lower_face: (K,) bool, mouth-related components.
        card: provenance and fit figures.
    """

    mean: np.ndarray
    identity_basis: np.ndarray
    expression_basis: np.ndarray
    expression_std: np.ndarray
    lower_face: np.ndarray
    card: dict

    @property
    def n_expression(self) -> int:
        return len(self.expression_basis)

    def encode_identity(self, neutral: np.ndarray) -> np.ndarray:
        """(..., 478, 3) neutral shapes -> (..., I) identity coefficients."""
        d = (neutral - self.mean).reshape(*neutral.shape[:-2], -1)
        return d @ self.identity_basis.reshape(len(self.identity_basis), -1).T

    def encode_expression(self, meshes: np.ndarray, neutral: np.ndarray) -> np.ndarray:
        """(T, 478, 3) pose-free meshes of one face with its (478, 3) neutral shape -> (T, K) coefficients."""
        d = (meshes - neutral).reshape(len(meshes), -1)
        return (d @ self.expression_basis.reshape(self.n_expression, -1).T).astype(np.float32)

    def fit_expression(self, shape: np.ndarray) -> np.ndarray:
        """(K,) expression coefficients of one (478, 3) pose-free mesh of a face seen once (a photo): identity and
        expression fitted together by least squares, the expression under its Gaussian prior
        (:data:`EXPRESSION_PRIOR`). The two bases are not orthogonal, so the expression cannot be projected alone.
        ``shape`` minus these coefficients' offsets is the face's rest shape, the clip-mean shape that encoded
        clips' coefficients are offsets from."""
        ids = self.identity_basis.reshape(len(self.identity_basis), -1).astype(np.float64)
        exprs = self.expression_basis.reshape(self.n_expression, -1).astype(np.float64)
        a = np.concatenate([ids, exprs]).T
        prior = np.concatenate([np.zeros(len(ids)), EXPRESSION_PRIOR / self.expression_std.astype(np.float64) ** 2])
        x = (shape - self.mean).reshape(-1).astype(np.float64)
        return np.linalg.solve(a.T @ a + np.diag(prior), a.T @ x)[len(ids):].astype(np.float32)

    def decode(self, identity: np.ndarray, expression: np.ndarray) -> np.ndarray:
        """(I,) identity and (T, K) expression coefficients -> (T, 478, 3) float32 pose-free meshes."""
        return self.expression_meshes(self.mean + np.tensordot(identity, self.identity_basis, axes=1), expression)

    def expression_meshes(self, neutral: np.ndarray, expression: np.ndarray) -> np.ndarray:
        """(478, 3) neutral shape moved by (T, K') expression coefficients (K' <= K: the first K' components)
        -> (T, 478, 3) float32 pose-free meshes; the inverse of :meth:`encode_expression`."""
        basis = self.expression_basis[:expression.shape[-1]]
        return (neutral[None] + np.tensordot(expression, basis, axes=1)).astype(np.float32)

    def lower_face_gap(self, neutral: np.ndarray, expression: np.ndarray) -> np.ndarray:
        """(T,) inner-lip gap (``mouth_features``' GAP) of the (478, 3) neutral shape moved by the lower-face
        components of (T, K') expression coefficients alone: the mouth opening a speech model's coefficients draw."""
        lower = self.lower_face[:expression.shape[-1]]
        return mouth_features(self.expression_meshes(neutral, np.where(lower, expression, 0.0)))[:, GAP]

    def opening(self) -> np.ndarray:
        """(478, 3) float64 offsets that open the mouth by one canonical unit of lip gap (``mouth_features``' mean
        over facing inner-lip pairs), spread over the face as faces in the fit data move when their mouth opens:
        the mean expression offset given the lip gap under the coefficients' Gaussian spread (each component in
        proportion to its variance times how much it opens the lips)."""
        up, lo = ix.INNER_LIP_PAIRS[:, 0], ix.INNER_LIP_PAIRS[:, 1]
        basis = self.expression_basis.astype(np.float64)
        variance = self.expression_std.astype(np.float64) ** 2
        gain = (basis[:, lo, 1] - basis[:, up, 1]).mean(1)
        return np.tensordot(variance * gain, basis, axes=1) / float(np.sum(variance * gain**2))

    def basis(self, k: int | None = None) -> ExpressionBasis:
        """The expression components (the first ``k``; default: all) as an :class:`ExpressionBasis` (drives the
        warp renderer)."""
        names = tuple(f"{'lower' if low else 'upper'}_{i}" for i, low in enumerate(self.lower_face))[:k]
        return ExpressionBasis(self.card.get("name", "face_model"), names, self.expression_basis[:k])

    def save(self, path: str | Path) -> None:
        """Write the model as a compressed .npz with its card."""
        np.savez_compressed(path, mean=self.mean, identity_basis=self.identity_basis,
                            expression_basis=self.expression_basis, expression_std=self.expression_std,
                            lower_face=self.lower_face, card=np.array(json.dumps(self.card, indent=1)))

    @classmethod
    def load(cls, path: str | Path) -> FaceModel:
        """Read a model written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as z:
            return cls(z["mean"], z["identity_basis"], z["expression_basis"], z["expression_std"],
                       z["lower_face"], json.loads(str(z["card"])))


@lru_cache(maxsize=1)
def default_face_model() -> FaceModel:
    """The face model shipped with the package."""
    with resources.as_file(resources.files("talkinghead.face").joinpath("assets", FACE_MODEL_ASSET)) as p:
        return FaceModel.load(p)


def _pca(rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k principal directions (k, D) and their standard deviations of centred rows (N, D)."""
    _, sing, vt = np.linalg.svd(rows, full_matrices=False)
    k = min(k, len(sing))
    return vt[:k], sing[:k] / np.sqrt(max(len(rows) - 1, 1))


def fit_face_model(clips: list[np.ndarray], *, n_expression: int = 64, n_identity: int = 16,
                   sources: list[str] | None = None, max_frames_per_clip: int = 2000) -> FaceModel:
    """Fit the model from pose-free mesh sequences, one (T, 478, 3) array per clip (one face each).

    Args:
        clips: pose-free meshes per clip; a clip's mean is taken as its identity's neutral shape.
        n_expression: expression components kept (fewer if the data has fewer).
        n_identity: identity components kept (at most clips - 1).
        sources: clip names for the card.
        max_frames_per_clip: frames sampled evenly per clip for the expression PCA.
    """
    neutrals = np.stack([c.mean(0) for c in clips]).astype(np.float64)
    mean = neutrals.mean(0)
    id_rows = (neutrals - mean).reshape(len(clips), -1)
    id_basis, _ = _pca(id_rows, min(n_identity, max(len(clips) - 1, 1)))
    expr_rows = np.concatenate([
        (c[np.linspace(0, len(c) - 1, min(len(c), max_frames_per_clip)).astype(int)] - n).reshape(-1, id_rows.shape[1])
        for c, n in zip(clips, neutrals)])
    expr_basis, expr_std = _pca(expr_rows, n_expression)
    comps = expr_basis.reshape(len(expr_basis), -1, 3)
    energy = (comps**2).sum(-1)
    below_nose = mean[:, 1] > mean[ix.NOSE_TIP, 1]
    lower = energy[:, below_nose].sum(1) / energy.sum(1) >= LOWER_FACE_SHARE
    model = FaceModel(mean.astype(np.float32), id_basis.reshape(-1, *mean.shape).astype(np.float32),
                      comps.astype(np.float32), expr_std.astype(np.float32), lower, {})
    model.card = {
        "name": f"pca{len(expr_basis)}_v1",
        "clips": len(clips),
        "frames": int(len(expr_rows)),
        "sources": sources or [],
        "n_identity": int(len(id_basis)),
        "n_expression": int(len(expr_basis)),
        "lower_face_components": [int(i) for i in np.nonzero(lower)[0]],
        "explained_variance": float((expr_std**2).sum() / (expr_rows**2).sum(1).mean() * (len(expr_rows) - 1)
                                    / len(expr_rows)),
        "units": "canonical (outer eye-corner distance = 1)",
    }
    return model


def round_trip_error(model: FaceModel, clips: list[np.ndarray]) -> dict[str, float]:
    """Mean vertex distance (canonical units) between meshes and their encode -> decode reconstruction.

    Returns:
        {"expression": error with each clip's own neutral shape (the expression model alone),
         "full": error when the neutral shape is also encoded by the identity model}.
    """
    expr, full = [], []
    for c in clips:
        neutral = c.mean(0)
        coeffs = model.encode_expression(c, neutral)
        own = model.expression_meshes(neutral, coeffs)
        expr.append(np.linalg.norm(own - c, axis=-1).mean())
        recon = model.decode(model.encode_identity(neutral), coeffs)
        full.append(np.linalg.norm(recon - c, axis=-1).mean())
    return {"expression": float(np.mean(expr)), "full": float(np.mean(full))}
