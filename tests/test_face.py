"""Face analysis: index tables, mesh on real photos, Umeyama pose, crop/paste-back, eyelids."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from talkinghead.errors import InputError
from talkinghead.face import indices as ix
from talkinghead.face.crop import FaceCrop, crop_face, face_mask, paste_back
from talkinghead.face.expression import eyelid_closure, mouth_features, uncross_lips
from talkinghead.face.mesh import FaceMesher, mesh_image, track_faces
from talkinghead.face.pose import canonical_mesh, fit_pose, umeyama
from talkinghead.io import read_image, read_video


def _loop(connections: frozenset) -> set[int]:
    return {i for edge in connections for i in edge}


def test_index_tables_match_mediapipe() -> None:
    from mediapipe.python.solutions import face_mesh_connections as fmc

    assert set(ix.LIPS_ALL.tolist()) == _loop(fmc.FACEMESH_LIPS)
    assert set(ix.FACE_OVAL.tolist()) == _loop(fmc.FACEMESH_FACE_OVAL)
    assert set(np.concatenate([ix.RIGHT_EYE_UPPER, ix.RIGHT_EYE_LOWER, ix.RIGHT_EYE_CORNERS]).tolist()) == \
        _loop(fmc.FACEMESH_RIGHT_EYE)
    assert set(np.concatenate([ix.LEFT_EYE_UPPER, ix.LEFT_EYE_LOWER, ix.LEFT_EYE_CORNERS]).tolist()) == \
        _loop(fmc.FACEMESH_LEFT_EYE)
    assert set(ix.RIGHT_IRIS.tolist()) == _loop(fmc.FACEMESH_RIGHT_IRIS) | {468}  # + iris centre
    assert set(ix.LEFT_IRIS.tolist()) == _loop(fmc.FACEMESH_LEFT_IRIS) | {473}


def test_umeyama_recovers_known_similarity() -> None:
    rng = np.random.default_rng(1)
    src = rng.normal(size=(50, 3))
    rot = Rotation.from_euler("xyz", [10, -25, 5], degrees=True).as_matrix()
    dst = 3.5 * src @ rot.T + [4.0, -2.0, 7.0]
    s, r, t = umeyama(src, dst)
    assert s == pytest.approx(3.5)
    assert np.allclose(r, rot, atol=1e-9) and np.allclose(t, [4.0, -2.0, 7.0])


def test_pose_of_rotated_canonical_mesh() -> None:
    rot = Rotation.from_euler("xyz", [0.1, -0.3, 0.05])
    mesh = 120.0 * canonical_mesh() @ rot.as_matrix().T + [256.0, 240.0, 0.0]
    pose = fit_pose(mesh)
    assert pose.scale == pytest.approx(120.0)
    assert np.allclose(pose.euler(), [0.1, -0.3, 0.05], atol=1e-9)
    assert np.allclose(pose.to_image(pose.to_canonical(mesh)), mesh)


def test_head_motion_is_the_movement_around_the_mean_pose() -> None:
    """Turns of -a, 0, +a about the image z axis on top of a tilted pose: the mean pose is the tilted one and
    each frame's motion is exactly (0, 0, sin(angle))."""
    from talkinghead.face.pose import HEAD_MOTION_SCALE, head_motion, with_head_motion

    def rz(a: float) -> np.ndarray:
        return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])

    tilt = np.array([[1, 0, 0], [0, np.cos(0.4), -np.sin(0.4)], [0, np.sin(0.4), np.cos(0.4)]])
    angles = np.array([-0.2, 0.0, 0.2])
    motion = head_motion(np.stack([rz(a) @ tilt for a in angles]))
    assert np.allclose(motion, np.stack([0 * angles, 0 * angles, np.sin(angles)], 1), atol=1e-12)
    assert np.allclose(head_motion(np.stack([tilt] * 4)), 0, atol=1e-12)  # a still head: no motion
    rows = with_head_motion(np.ones((3, 5)), np.stack([rz(a) @ tilt for a in angles]))
    assert rows.shape == (3, 8) and rows.dtype == np.float32 and np.allclose(rows[:, 5:], HEAD_MOTION_SCALE * motion)


def test_mesh_on_real_photo(media: Path) -> None:
    image = read_image(media / "faces" / "liveportrait_s5.jpg")
    mesh, faces = mesh_image(image)
    assert mesh.shape == (478, 3) and faces == 1
    h, w = image.shape[:2]
    assert (mesh[:, 0] > 0).all() and (mesh[:, 0] < w).all() and (mesh[:, 1] > 0).all() and (mesh[:, 1] < h).all()
    # the eyes are above the mouth, the chin lowest of the three
    assert mesh[ix.OUTER_EYE_CORNERS, 1].mean() < mesh[ix.UPPER_LIP_CENTRE, 1] < mesh[ix.CHIN, 1]
    # a real face is close to the canonical shape once its pose is removed
    norm = fit_pose(mesh).to_canonical(mesh.astype(np.float64))
    assert np.abs(norm[ix.POSE] - canonical_mesh()[ix.POSE]).mean() < 0.05


def test_no_face_and_face_index_errors(media: Path) -> None:
    blank = np.full((256, 256, 3), 128, np.uint8)
    with pytest.raises(InputError, match="no face found"):
        mesh_image(blank, source="blank.png")
    image = read_image(media / "faces" / "liveportrait_s5.jpg")
    with pytest.raises(InputError, match="face-index 3"):
        mesh_image(image, face_index=3, source="s5.jpg")


def test_largest_of_two_faces_first(media: Path) -> None:
    import cv2

    left = read_image(media / "faces" / "liveportrait_s5.jpg")  # 720 px, face ~145 px
    right = read_image(media / "faces" / "liveportrait_s7.jpg")  # 852 px, face ~460 px
    right = cv2.resize(right, (360, 360))  # face ~195 px: the larger one
    canvas = np.zeros((720, 1080, 3), np.uint8)
    canvas[:, :720] = left
    canvas[:360, 720:] = right
    largest, n = mesh_image(canvas)
    second, _ = mesh_image(canvas, face_index=1)
    assert n == 2
    assert largest[:, 0].mean() > 720 > second[:, 0].mean()
    track = track_faces([canvas, canvas], face_index=1)
    assert track.meshes.shape == (2, 478, 3) and (track.meshes[:, :, 0].mean(1) < 720).all()


def test_track_real_video(media: Path) -> None:
    clip = read_video(media / "talking" / "videoretalking_face5.mp4", max_side=256, max_frames=20)
    track = track_faces(clip.frames)
    assert track.meshes.shape == (20, 478, 3)
    assert np.abs(np.diff(track.meshes[:, ix.NOSE_TIP, :2], axis=0)).max() < 10  # smooth, same face


def test_a_lone_face_is_tracked_as_when_every_face_is_looked_for(media: Path) -> None:
    clip = read_video(media / "talking" / "videoretalking_face5.mp4", max_side=256, max_frames=20)
    with FaceMesher(video=True) as mesher:  # up to MAX_FACES faces, the face detector on every frame
        every = np.stack([mesher.detect(f)[0] for f in clip.frames])
    assert np.array_equal(track_faces(clip.frames).meshes, every)


def test_a_lone_face_is_found_again_beside_a_new_one(media: Path) -> None:
    # alone at first (followed by a one-face mesher), then hidden, then back lower down beside a second face, which
    # is the one a one-face mesher would pick there
    face = cv2.resize(read_image(media / "faces" / "liveportrait_s7.jpg"), (240, 240))
    other = read_image(media / "faces" / "liveportrait_s5.jpg")
    alone = np.zeros((720, 1080, 3), np.uint8)
    alone[:240, 720:960] = face
    both = np.zeros_like(alone)
    both[:, :720] = other
    both[40:280, 720:960] = face
    frames = [alone] * 4 + [np.zeros_like(alone)] * 2 + [both] * 4
    nose = track_faces(frames).meshes[:, ix.NOSE_TIP, :2]
    assert (nose[:, 0] > 720).all()
    assert (nose[6:, 1] - nose[0, 1] > 30).all()  # meshed 40 px lower, not copied from before


def test_crop_and_paste_back_round_trip(media: Path) -> None:
    image = read_image(media / "faces" / "liveportrait_s6.jpg")
    mesh, _ = mesh_image(image)
    crop, fc = crop_face(image, mesh, size=256)
    assert crop.shape == (256, 256, 3)
    eyes = fc.to_crop(mesh[ix.OUTER_EYE_CORNERS])
    assert abs(eyes[0, 1] - eyes[1, 1]) < 1e-6  # aligned: eyes level
    mask = face_mask(fc.to_crop(mesh), (256, 256), feather=4.0)
    assert mask.max() == pytest.approx(1.0) and mask[0, 0] == 0.0
    back = paste_back(image, crop, fc, mask)
    assert back.shape == image.shape
    diff = np.abs(back.astype(float) - image.astype(float))
    assert diff.mean() < 2.0  # resampled twice inside the mask, identical outside
    exact, fc1 = crop_face(image, mesh, size=None, align=False)
    x0, y0 = -fc1.matrix[:, 2].astype(int)
    assert np.array_equal(exact[10:20, 10:20], image[y0 + 10:y0 + 20, x0 + 10:x0 + 20])  # an exact cut


def test_exact_cut_is_the_frame_with_replicated_edges(media: Path) -> None:
    """An exact cut that hangs over the frame's edges (this face's warp crop is larger than the photo) is a copy
    with the edges replicated, pixel for pixel what resampling gives."""
    image = read_image(media / "faces" / "liveportrait_s7.jpg")
    mesh, _ = mesh_image(image)
    crop, fc = crop_face(image, mesh, size=None, margin=1.9, align=False)
    assert fc.size > max(image.shape[:2])
    resampled = cv2.warpAffine(image, fc.matrix, (fc.size, fc.size), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)
    assert np.array_equal(crop, resampled)


@pytest.mark.parametrize("corner", [(-30, -20), (40, 25), (150, 170)])
def test_paste_back_with_an_inset_equals_the_full_blend(corner: tuple[int, int]) -> None:
    """Copying the solid middle of an exact cut and blending only its band gives the full blend's pixels, for a
    crop inside the frame and ones hanging over its edges."""
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (200, 240, 3), np.uint8)
    crop = rng.integers(0, 256, (120, 120, 3), np.uint8)
    ramp = np.clip(np.minimum(np.arange(120), np.arange(120)[::-1]) / 9.0, 0, 1).astype(np.float32)
    mask = np.minimum(ramp[:, None], ramp[None, :])
    fc = FaceCrop(matrix=np.array([[1.0, 0.0, -corner[0]], [0.0, 1.0, -corner[1]]]), size=120)
    full = paste_back(frame, crop, fc, mask)
    assert np.array_equal(paste_back(frame, crop, fc, mask, inset=9), full)
    assert not np.array_equal(full, frame)


def test_eyelid_closure_brings_lids_together() -> None:
    mesh = canonical_mesh()
    closed = mesh + eyelid_closure(mesh)
    assert np.allclose(closed[ix.EYE_UPPER, 1], closed[ix.EYE_LOWER, 1])
    assert np.allclose(closed[ix.OUTER_EYE_CORNERS], mesh[ix.OUTER_EYE_CORNERS])
    untouched = np.setdiff1d(np.arange(478), np.concatenate([ix.EYE_UPPER, ix.EYE_CREASE, ix.RIGHT_IRIS, ix.LEFT_IRIS]))
    assert np.allclose(closed[untouched], mesh[untouched])


def test_mouth_features_of_known_shapes() -> None:
    mesh = canonical_mesh().copy()
    base = mouth_features(mesh)
    opened = mesh.copy()
    opened[ix.LIPS_LOWER_INNER[1:-1], 1] += 0.2
    assert mouth_features(opened)[0] - base[0] == pytest.approx(0.2)
    wider = mesh.copy()
    wider[ix.MOUTH_CORNERS[1], 0] += 0.1
    assert mouth_features(wider)[2] - base[2] == pytest.approx(0.1, abs=0.01)


def test_lower_face_gap_reads_the_mouth_components_only() -> None:
    """The lip gap of coefficients on a rest shape: the rest shape's own gap at zero, unmoved by upper-face
    coefficients, and moved by the lower-face ones exactly as their meshes measure."""
    from talkinghead.face.expression import GAP
    from talkinghead.face.model import default_face_model

    fm = default_face_model()
    neutral = fm.mean.astype(np.float32)
    lower = fm.lower_face[:16]
    coefficients = np.zeros((3, 16), np.float32)
    coefficients[1, ~lower] = 2 * fm.expression_std[:16][~lower]
    coefficients[2, lower] = 2 * fm.expression_std[:16][lower]
    gap = fm.lower_face_gap(neutral, coefficients)
    rest = mouth_features(neutral[None])[0, GAP]
    assert gap[0] == pytest.approx(rest, abs=1e-6) and gap[1] == pytest.approx(rest, abs=1e-6)
    moved = mouth_features(fm.expression_meshes(neutral, coefficients[2:]))[0, GAP]
    assert gap[2] == pytest.approx(moved, abs=1e-6) and abs(gap[2] - rest) > 1e-3


def test_uncross_lips_brings_crossed_lips_back_to_touching() -> None:
    from talkinghead.face.model import default_face_model

    opening = default_face_model().opening()
    rest = canonical_mesh().astype(np.float64)
    up, lo = ix.INNER_LIP_COLUMNS[:, 0], ix.INNER_LIP_COLUMNS[:, 1]
    rest = rest - ((rest[lo, 1] - rest[up, 1]) / (opening[lo, 1] - opening[up, 1])).min() * opening
    rest_gaps = rest[lo, 1] - rest[up, 1]
    assert rest_gaps.min() == pytest.approx(0.0, abs=1e-9)  # lips touching at one pair, apart elsewhere
    shut = np.zeros_like(rest)
    shut[ix.LIPS_LOWER_INNER[1:-1], 1] -= 0.05  # the lower lip pushed 0.05 past the upper one
    shapes = np.stack([rest, rest + 0.5 * opening, rest + shut, rest - 0.3 * opening])
    out = uncross_lips(shapes, rest, opening)
    assert np.array_equal(out[:2], shapes[:2])  # lips that did not cross stay as they were
    gaps = out[:, lo, 1] - out[:, up, 1]
    assert gaps[2:].min(1) == pytest.approx([0.0, 0.0], abs=1e-9)  # crossed ones meet again, no further apart
    assert np.allclose(out[3], rest)  # a pure closing along the opening ends at the face's own shape
    assert np.all(out[2, ix.CHIN, 1] > rest[ix.CHIN, 1])  # the jaw moved down with the lips, not the lips alone
    # a face whose own lips overlap a little keeps that overlap; only crossing beyond it is undone
    overlapping = rest.copy()
    overlapping[lo[4], 1] -= 0.01
    assert np.array_equal(uncross_lips(overlapping[None], overlapping, opening)[0], overlapping)


@pytest.mark.media
def test_a_second_face_missed_by_facemesh_is_found(media: Path) -> None:
    """A cartoon face beside a small painted one: FaceMesh's own detector sees only the first; the full-range
    detector finds the second, which is meshed in its crop and lies in the right half."""
    from talkinghead.face.mesh import mesh_box, mesh_image
    from talkinghead.io import read_image, resize_longer

    left = read_image(media / "faces" / "liveportrait_s7.jpg")
    right = cv2.resize(read_image(media / "faces" / "liveportrait_s3.jpg"), (left.shape[1], left.shape[0]))
    image = resize_longer(np.concatenate([left, right], 1), 512)
    first, _ = mesh_image(image, face_index=0)
    second, found = mesh_image(image, face_index=1)
    assert found == 2 and mesh_box(first)[2] < 256 < mesh_box(second)[0]
    assert (mesh_box(second)[2:] - mesh_box(second)[:2]).min() > 20  # a whole face, not a fragment
