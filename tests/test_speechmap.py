"""Windowed ridge maps from speech features to mouth measurements, on exactly known data."""

from __future__ import annotations

import numpy as np

from talkinghead.audio.speechmap import fit_window_ridge, stack_window


def test_stack_window_repeats_the_edge_frames() -> None:
    x = np.arange(4.0)[:, None]
    assert stack_window(x, 1).tolist() == [[0, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 3]]


def test_ridge_recovers_a_known_lagged_map_across_clips() -> None:
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((300, 3)) for _ in range(4)]
    a, b = np.array([1.0, -2.0, 0.5]), np.array([0.3, 0.0, 1.0])

    def truth(x: np.ndarray) -> np.ndarray:  # y_t = x_{t+2} . a + x_{t-1} . b + 4 (edges repeated)
        padded = np.pad(x, ((1, 2), (0, 0)), mode="edge")
        return (padded[3:] @ a + padded[:-3] @ b + 4.0)[:, None]

    model = fit_window_ridge(xs, [truth(x) for x in xs], window=2, alpha=1e-6)
    test = rng.standard_normal((50, 3))
    assert np.allclose(model.predict(test), truth(test), atol=1e-6)
    pca = fit_window_ridge(xs, [truth(x) for x in xs], window=2, alpha=1e-6, dims=3)  # all of a 3-d space
    assert np.allclose(pca.predict(test), truth(test), atol=1e-6)
    shrunk = fit_window_ridge(xs, [truth(x) for x in xs], window=2, alpha=1e12)
    mean = np.concatenate([truth(x) for x in xs]).mean()
    assert np.allclose(shrunk.predict(test), mean, atol=1e-5)  # a huge penalty leaves the (unpenalised) mean


def test_a_centred_ridge_ignores_what_stays_constant_over_an_utterance() -> None:
    rng = np.random.default_rng(1)
    a = np.array([1.0, -2.0, 0.5])
    xs = [rng.standard_normal((200, 3)) for _ in range(5)]
    xs = [x - x.mean(0) for x in xs]  # each clip's own motion, mean zero ...
    shifted = [x + 3.0 * rng.standard_normal(3) for x in xs]  # ... heard through a voice of its own
    ys = [(x @ a + 4.0)[:, None] for x in xs]
    model = fit_window_ridge(shifted, ys, window=1, alpha=1e-6, centre=True)
    test = rng.standard_normal((60, 3))
    test -= test.mean(0)
    assert np.allclose(model.predict(test + np.array([10.0, -5.0, 2.0])), (test @ a + 4.0)[:, None], atol=1e-6)
    plain = fit_window_ridge(shifted, ys, window=1, alpha=1e-6)
    assert not np.allclose(plain.predict(test + np.array([10.0, -5.0, 2.0])), (test @ a + 4.0)[:, None], atol=0.1)
