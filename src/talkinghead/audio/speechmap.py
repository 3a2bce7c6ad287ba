"""Linear maps from frame-level speech features to mouth measurements: a time window of features, an optional
PCA, and ridge regression. Used by the speech-representation probe (``benchmarks/speech_probe.py``) and by the
default engine's Whisper map (:mod:`talkinghead.motion.viseme.calibrate`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from talkinghead.audio.speech import around


def stack_window(x: np.ndarray, k: int) -> np.ndarray:
    """(T, D) per-frame features -> (T, (2k + 1) D): each frame with the k frames before and after it (the edge
    frames repeated past the ends)."""
    return around(x, k).reshape(len(x), -1)


def pca_basis(x: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean (D,), components (D, dims)) of the rows of ``x`` (N, D): the directions of largest variance."""
    mean = x.mean(0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    return mean, vt[:dims].T.copy()


def centred(x: np.ndarray, centre: bool) -> np.ndarray:
    """(T, D) features of one utterance, less their own mean over it when ``centre`` is set."""
    return x - x.mean(0) if centre else x


@dataclass
class WindowRidge:
    """y_t = [PCA(x)_{t-k} .. PCA(x)_{t+k}, 1] @ weights.

    Attributes:
        mean: (D,) feature mean; components: (D, P) PCA directions (identity when the features are used as they
            are); scale: ((2k + 1) P,) standard deviation of each windowed input (inputs are standardised before
            the penalty, so one ``alpha`` suits every representation); window: k; weights: ((2k + 1) P + 1, F);
        centre: subtract each utterance's own feature mean first (what stays constant over an utterance, the
            speaker's voice and the channel, is removed; the features then describe what changes).
    """

    mean: np.ndarray
    components: np.ndarray
    scale: np.ndarray
    window: int
    weights: np.ndarray
    centre: bool = False

    def inputs(self, x: np.ndarray) -> np.ndarray:
        """(T, D) features -> (T, (2k + 1) P + 1) standardised windowed inputs with a constant column."""
        z = stack_window((centred(x, self.centre) - self.mean) @ self.components, self.window) / self.scale
        return np.concatenate([z, np.ones((len(z), 1))], 1)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(T, D) features -> (T, F) predictions."""
        return self.inputs(np.asarray(x, np.float64)) @ self.weights


def fit_window_ridge(xs: list[np.ndarray], ys: list[np.ndarray], *, window: int, alpha: float,
                     dims: int | None = None, centre: bool = False) -> WindowRidge:
    """Ridge regression of ``ys`` (each (T_i, F)) on windows of ``xs`` (each (T_i, D)), clip by clip so that no
    window crosses two clips.

    Args:
        window: k frames each side.
        alpha: L2 penalty on the standardised inputs' weights (the constant is not penalised).
        dims: PCA dimensions kept (None: the features as they are).
        centre: see :attr:`WindowRidge.centre`.
    """
    xs = [np.asarray(x, np.float64) for x in xs]
    x_all = np.concatenate([centred(x, centre) for x in xs])
    if dims is None:
        mean, comps = np.zeros(x_all.shape[1]), np.eye(x_all.shape[1])
    else:
        mean, comps = pca_basis(x_all, dims)
    z = [stack_window((centred(x, centre) - mean) @ comps, window) for x in xs]
    scale = np.concatenate(z).std(0) + 1e-8
    model = WindowRidge(mean, comps, scale, window, np.zeros((len(scale) + 1, ys[0].shape[1])), centre)
    a = np.concatenate([model.inputs(x) for x in xs])
    y = np.concatenate(ys).astype(np.float64)
    penalty = np.full(a.shape[1], alpha)
    penalty[-1] = 0.0
    model.weights = np.linalg.solve(a.T @ a + np.diag(penalty), a.T @ y)
    return model
