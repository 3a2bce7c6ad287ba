"""The warp renderer: identity, known displacements, mouth interior, eyelids, head rotation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from talkinghead.face import indices as ix
from talkinghead.face.expression import MOUTH_FEATURES, ExpressionBasis
from talkinghead.face.mesh import mesh_image
from talkinghead.face.motion import FaceMotion
from talkinghead.io import read_image
from talkinghead.render.warp.renderer import Topology, WarpRenderer, target_meshes


@pytest.fixture(scope="module")
def face(media: Path) -> tuple[np.ndarray, np.ndarray]:
    image = read_image(media / "faces" / "liveportrait_s6.jpg")
    return image, mesh_image(image)[0]


def _motion(n: int, *, rotation=None, blink=None) -> FaceMotion:  # type: ignore[no-untyped-def]
    basis = ExpressionBasis("zero", MOUTH_FEATURES, np.zeros((5, 478, 3), np.float32))
    return FaceMotion(fps=25.0, expression=np.zeros((n, 5), np.float32), basis=basis,
                      head_rotation=np.zeros((n, 3), np.float32) if rotation is None else rotation,
                      head_translation=np.zeros((n, 3), np.float32),
                      blink=np.zeros(n, np.float32) if blink is None else blink)


def _mouth_box(mesh: np.ndarray, pad: int = 6) -> tuple[slice, slice]:
    lo = np.floor(mesh[ix.LIPS_ALL, :2].min(0)).astype(int) - pad
    hi = np.ceil(mesh[ix.LIPS_ALL, :2].max(0)).astype(int) + pad
    return slice(lo[1], hi[1]), slice(lo[0], hi[0])


def test_zero_motion_reproduces_the_reference(face) -> None:  # type: ignore[no-untyped-def]
    image, mesh = face
    assert np.allclose(target_meshes(mesh, _motion(1))[0], mesh, atol=1e-6)
    r = WarpRenderer(image, mesh)
    out = r.compose(image, r.render(mesh))
    diff = np.abs(out.astype(int) - image.astype(int))
    rows, cols = _mouth_box(mesh)
    diff[rows, cols] = 0  # the mouth interior may be repainted
    assert diff.max() <= 1


def test_a_motion_never_pushes_the_lips_past_each_other(face) -> None:  # type: ignore[no-untyped-def]
    from talkinghead.face.model import default_face_model
    from talkinghead.face.pose import fit_pose

    _, mesh = face  # a photo with the lips closed
    model = default_face_model()
    closing = -np.linspace(0.0, 0.1, 6)[:, None, None] * model.opening()  # ever further past closed
    motion = FaceMotion(fps=25.0, expression=np.eye(6, dtype=np.float32),
                        basis=ExpressionBasis("closing", tuple(f"c{i}" for i in range(6)), closing.astype(np.float32)),
                        head_rotation=np.zeros((6, 3), np.float32), head_translation=np.zeros((6, 3), np.float32),
                        blink=np.zeros(6, np.float32))
    targets = target_meshes(mesh, motion)
    pose = fit_pose(mesh)
    up, lo = ix.INNER_LIP_COLUMNS[:, 0], ix.INNER_LIP_COLUMNS[:, 1]
    own = pose.to_canonical(mesh.astype(np.float64))
    floor = np.minimum(own[lo, 1] - own[up, 1], 0.0)
    for t in targets:
        c = pose.to_canonical(t)
        assert np.all(c[lo, 1] - c[up, 1] >= floor - 1e-6)
    assert np.allclose(targets[0], mesh, atol=1e-6)


def test_known_translation_moves_the_face(face) -> None:  # type: ignore[no-untyped-def]
    image, mesh = face
    r = WarpRenderer(image, mesh)
    shift = np.array([6.0, -4.0, 0.0])
    out = r.compose(image, r.render(mesh + shift))
    x, y = np.round(mesh[ix.NOSE_TIP, :2]).astype(int)
    before = image[y - 20:y + 20, x - 20:x + 20].astype(float)
    after = out[y - 24:y + 16, x - 14:x + 26].astype(float)
    assert np.abs(after - before).mean() < 3.0
    assert np.abs(out[:10, :10].astype(int) - image[:10, :10].astype(int)).max() <= 1  # background still


def _opened(mesh: np.ndarray, by: float = 14.0) -> np.ndarray:
    target = mesh.copy().astype(np.float64)
    lower = np.concatenate([ix.LIPS_LOWER_INNER[1:-1], ix.LIPS_LOWER_OUTER[1:-1], ix.JAW[4:-4], [ix.CHIN]])
    target[lower, 1] += by
    return target


def test_opening_the_mouth_paints_a_dark_interior(face) -> None:  # type: ignore[no-untyped-def]
    image, mesh = face
    target = _opened(mesh)
    r = WarpRenderer(image, mesh, Topology.of(image, mesh, mouth="painted"))
    out = r.compose(image, r.render(target))
    gap_centre = (target[ix.UPPER_LIP_CENTRE, :2] + target[ix.LOWER_LIP_CENTRE, :2]) / 2
    cx, cy = np.round(gap_centre).astype(int)
    lip = image[int(mesh[ix.LOWER_LIP_BOTTOM, 1]) - 3, cx].astype(float).mean()
    below_teeth = out[cy + 3:cy + 5, cx - 2:cx + 3].astype(float).mean()
    assert below_teeth < 0.6 * lip  # the cavity is darker than the lips
    upper_teeth = out[int(target[ix.UPPER_LIP_CENTRE, 1]) + 2, cx - 2:cx + 3].astype(float).mean()
    assert upper_teeth > below_teeth + 40  # a light teeth band under the upper lip


def test_the_learned_mouth_is_drawn_inside_the_opened_lips_only(face) -> None:  # type: ignore[no-untyped-def]
    image, mesh = face
    target = _opened(mesh)
    learned = WarpRenderer(image, mesh)  # the default mouth
    painted = WarpRenderer(image, mesh, Topology.of(image, mesh, mouth="painted"))
    a, b = learned.render(target), painted.render(target)
    tgt = learned.fc.to_crop(target)
    differs = np.abs(a.astype(int) - b.astype(int)).max(-1) > 2
    rows, cols = _mouth_box(tgt, pad=4)
    assert differs[rows, cols].sum() > 50  # the learned mouth is its own
    differs[rows, cols] = False
    assert not differs.any()  # and nothing else changes
    gap = (tgt[ix.UPPER_LIP_CENTRE, :2] + tgt[ix.LOWER_LIP_CENTRE, :2]) / 2
    cx, cy = np.round(gap).astype(int)
    lip = a[int(tgt[ix.LOWER_LIP_BOTTOM, 1]) - 3, cx].astype(float).mean()
    assert a[cy - 1:cy + 2, cx - 2:cx + 3].astype(float).mean() < lip  # the opened mouth is darker than the lips


def test_blink_closes_the_eyes_as_seen_by_the_mesh(face) -> None:  # type: ignore[no-untyped-def]
    image, mesh = face
    target = target_meshes(mesh, _motion(1, blink=np.ones(1, np.float32)))[0]
    r = WarpRenderer(image, mesh)
    out = r.compose(image, r.render(target))
    seen, _ = mesh_image(out)

    def openness(m: np.ndarray) -> float:
        return float((m[ix.EYE_LOWER, 1] - m[ix.EYE_UPPER, 1]).mean())

    assert openness(seen) < 0.5 * openness(mesh)


def test_head_rotation_turns_the_mesh(face) -> None:  # type: ignore[no-untyped-def]
    _, mesh = face
    yaw = np.array([[0.0, np.deg2rad(10), 0.0]], np.float32)
    turned = target_meshes(mesh, _motion(1, rotation=yaw))[0]
    width = np.ptp(mesh[:, 0])
    moved = turned[:, :2] - mesh[:, :2]
    assert np.abs(moved[:, 0]).max() > 0.03 * width  # points swing sideways
    assert np.abs(moved[:, 1]).max() < 0.03 * width


def test_folded_lips_give_every_point_weights_inside_a_triangle(face) -> None:  # type: ignore[no-untyped-def]
    # a dubbed frame with the lips pressed together: the inner lower lip crosses above the inner upper lip, so
    # triangles of the first frame's topology fold over; every grid point must still be a convex mix of the corners
    # of one triangle (the previous point location extrapolated some, up to +-50, and drew spikes at the lips)
    image, mesh = face
    topology = Topology.of(image, mesh, mouth="painted")
    pressed = mesh.copy().astype(np.float64)
    inner = ix.LIPS_LOWER_INNER[1:-1]
    pressed[inner, 1] = mesh[ix.LIPS_UPPER_INNER[1:-1], 1] - 3.0
    weights = WarpRenderer(image, pressed, topology).weights
    assert weights.min() >= -1e-6 and weights.max() <= 1.0 + 1e-6
    assert np.allclose(np.asarray(weights.sum(1)).ravel()[weights.getnnz(1) > 0], 1.0)
