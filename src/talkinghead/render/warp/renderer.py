"""Piecewise-affine warping of a reference image by its deformed face mesh.

The reference's mesh points, a ring of head points around the face (which follow the face's
in-plane motion, so hair and ears move with the head) and fixed points on the border of the
working crop are triangulated once (Delaunay; the frames of a dubbed video keep the first frame's
triangles with their own vertices). Vertex displacements are spread over the crop by
barycentric interpolation (a fixed sparse matrix), the resulting forward field is inverted by
fixed-point iteration, and the reference crop is resampled once. The border points do not move,
so the background stays still and nothing tears; the crop is then pasted back.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.sparse import csr_matrix
from scipy.spatial import Delaunay
from scipy.spatial.transform import Rotation

from talkinghead.face import indices as ix
from talkinghead.face.crop import crop_face, face_crop_for, paste_back
from talkinghead.face.expression import eyelid_closure, uncross_lips
from talkinghead.face.model import default_face_model
from talkinghead.face.motion import FaceMotion
from talkinghead.face.pose import fit_pose, umeyama
from talkinghead.render.warp.mouth import Mouth, make_mouth
from talkinghead.spec import MOUTHS

WARP_MARGIN = 1.9
"""Side of the working crop relative to the face mesh's bounding box."""
HEAD_RING_SCALE = 1.3
"""Head-ring points sit on the face oval scaled by this about the face centre."""
BORDER_POINTS_PER_SIDE = 8
MAP_STEP = 3
"""The displacement field is computed at 1/MAP_STEP of the crop resolution, then upsampled (3 rather than 2:
1.6 ms less a frame of a 559 px crop; the frames differ from step 2's by 56 dB PSNR, 42 dB at worst)."""
INVERSION_STEPS = 3
FEATHER_FRACTION = 0.04
"""Paste-back mask ramps from 0 to 1 over this fraction of the crop side at its border."""


def target_meshes(reference: np.ndarray, motion: FaceMotion) -> np.ndarray:
    """Deform reference mesh(es) by a motion.

    For each frame: pose-free reference + expression offsets + blink * eyelid closure, lips pushed past each other
    brought back to touching (:func:`~talkinghead.face.expression.uncross_lips`, along the face model's opening),
    then the reference pose with the motion's head rotation (about the rigid-point centroid) and translation.

    Args:
        reference: (478, 3) pixel mesh of a photo, or (T, 478, 3) one per frame.
        motion: FaceMotion of T frames.

    Returns:
        (T, 478, 3) float64 pixel meshes.
    """
    refs = reference[None] if reference.ndim == 2 else reference
    n = len(motion)
    poses = [fit_pose(m) for m in refs]
    norm = np.stack([p.to_canonical(m.astype(np.float64)) for p, m in zip(poses, refs)])
    lids = np.stack([eyelid_closure(m) for m in norm])
    shape = norm + motion.basis.decode(motion.expression) + motion.blink[:, None, None] * lids
    shape = uncross_lips(shape, norm, default_face_model().opening())
    rot_ref = np.stack([p.rotation for p in poses])
    scale = np.array([p.scale for p in poses])[:, None, None]
    trans = np.stack([p.translation for p in poses])
    rot = rot_ref @ Rotation.from_euler("xyz", motion.head_rotation.astype(np.float64)).as_matrix()
    shift = np.einsum("rij,tj->ti", rot_ref, motion.head_translation) if len(refs) == 1 else \
        np.einsum("tij,tj->ti", rot_ref, motion.head_translation)
    out = scale * np.einsum("tij,tvj->tvi", rot, shape) + (trans + scale[:, :, 0] * shift)[:, None, :]
    assert out.shape == (n, ix.N_POINTS, 3)
    return out


def _border_points(size: int) -> np.ndarray:
    t = np.linspace(0.0, size - 1.0, BORDER_POINTS_PER_SIDE + 1)[:-1]
    e = float(size - 1)
    return np.concatenate([np.stack([t, np.zeros_like(t)], 1), np.stack([np.full_like(t, e), t], 1),
                           np.stack([e - t, np.full_like(t, e)], 1), np.stack([np.zeros_like(t), e - t], 1)])


def _feather_ramp(size: int) -> float:
    """Pixels over which the paste-back mask of a ``size`` crop rises from 0 to 1."""
    return max(2.0, FEATHER_FRACTION * size)


def _feather_mask(size: int) -> np.ndarray:
    edge = np.minimum(np.arange(size), np.arange(size)[::-1]).astype(np.float32)
    r = np.clip(edge / _feather_ramp(size), 0.0, 1.0)
    return np.minimum(r[:, None], r[None, :])


@dataclass(frozen=True)
class Topology:
    """What the renderers of one video's frames share: the triangles over the warp points (the first frame's
    Delaunay triangulation; later frames move the vertices, not the triangles) and the mouth drawn where the lips
    part (one reference for the learned painter, one set of colours for the painted interior: the mouth does not
    change with each frame's noise).

    Attributes:
        simplices: (K, 3) indices into the warp points (mesh, head ring, crop border) of each triangle.
        mouth: draws the mouth interior.
    """

    simplices: np.ndarray
    mouth: Mouth

    @classmethod
    def of(cls, image: np.ndarray, mesh: np.ndarray, *, mouth: str = MOUTHS[0],
           mouth_reference: tuple[np.ndarray, np.ndarray] | None = None, painter: str | None = None) -> Topology:
        """The topology of a reference frame ((H, W, 3) uint8 RGB) and its (478, 3) pixel mesh, with the ``mouth``
        (:data:`MOUTHS`) of ``mouth_reference`` (a frame and its mesh; default: this one); ``painter``: a learned
        painter checkpoint instead of the shipped one."""
        fc = face_crop_for(mesh, size=None, margin=WARP_MARGIN, align=False)
        src = fc.to_crop(mesh.astype(np.float64))
        tri = Delaunay(warp_points(src, fc.size)[0])
        ref_image, ref_mesh = mouth_reference if mouth_reference is not None else (image, mesh)
        return cls(simplices=tri.simplices.astype(np.int32),
                   mouth=make_mouth(mouth, ref_image, ref_mesh, checkpoint=painter))


def warp_points(src: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(the warp points: the mesh, the head ring and the crop's border, (P, 2); the head ring (R, 2)) of a
    (478, 2) crop-pixel mesh in a crop of ``size``."""
    centre = src[ix.FACE_OVAL].mean(0)
    ring = centre + HEAD_RING_SCALE * (src[ix.FACE_OVAL] - centre)
    return np.concatenate([src, ring, _border_points(size)]), ring


def moved_ring(src: np.ndarray, ring: np.ndarray, tgt: np.ndarray) -> np.ndarray:
    """The head ring (R, 2) of the mesh ``src`` moved with the face to the mesh ``tgt`` (both (478, 2)): the
    similarity that best carries the face oval."""
    s, rot, t = umeyama(src[ix.FACE_OVAL], tgt[ix.FACE_OVAL])
    return s * ring @ rot.T + t


class WarpRenderer:
    """Renders one reference frame under target meshes.

    Args:
        image: (H, W, 3) uint8 RGB reference frame.
        mesh: (478, 3) its pixel mesh.
        topology: shared with the other frames of a video (default: the frame's own).
    """

    def __init__(self, image: np.ndarray, mesh: np.ndarray, topology: Topology | None = None) -> None:
        topology = topology or Topology.of(image, mesh)
        self.crop, self.fc = crop_face(image, mesh, size=None, margin=WARP_MARGIN, align=False)
        size = self.fc.size
        self.src = self.fc.to_crop(mesh.astype(np.float64))
        points, self.ring = warp_points(self.src, size)
        self.still = np.zeros((len(points) - len(self.src) - len(self.ring), 2))
        self.grid_size = int(np.ceil(size / MAP_STEP))
        pos = (np.arange(self.grid_size) + 0.5) * size / self.grid_size - 0.5
        gx, gy = np.meshgrid(pos, pos)
        self.grid = np.stack([gx, gy], -1).astype(np.float32)
        self.weights = barycentric_matrix(points, topology.simplices, size, self.grid)
        self.mask = _feather_mask(size)
        self.mouth = topology.mouth

    def render(self, mesh: np.ndarray) -> np.ndarray:
        """The reference crop warped so its mesh lands on ``mesh`` ((478, 3) pixels), the mouth drawn: (S, S, 3)
        uint8."""
        out, tgt = self.warp(mesh)
        self.mouth.paint(out, tgt, self.src)
        return out

    def warp(self, mesh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`render`'s first stage: (the warped crop (S, S, 3) uint8 before the mouth is drawn, the target mesh
        in its pixels (478, 3) float64)."""
        tgt = self.fc.to_crop(mesh.astype(np.float64))
        disp = np.concatenate([tgt - self.src, moved_ring(self.src[:, :2], self.ring, tgt[:, :2]) - self.ring,
                               self.still])
        field = np.asarray(self.weights @ disp, np.float32).reshape(self.grid_size, self.grid_size, 2)
        size = self.fc.size
        to_index = np.float32(self.grid_size / size)
        offset = np.float32(0.5 * to_index - 0.5)
        g = self.grid - field  # fixed point of g = p - field(g): the inverse of p -> p + field(p)
        for _ in range(INVERSION_STEPS):
            g = self.grid - cv2.remap(field, g * to_index + offset, None, cv2.INTER_LINEAR,
                                      borderMode=cv2.BORDER_REPLICATE)
        full = cv2.resize(g, (size, size), interpolation=cv2.INTER_LINEAR)
        fixed, frac = cv2.convertMaps(full, None, cv2.CV_16SC2)
        return cv2.remap(self.crop, fixed, frac, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE), tgt

    def compose(self, frame: np.ndarray, crop: np.ndarray) -> np.ndarray:
        """Paste a rendered crop back into (a copy of) the full frame."""
        return paste_back(frame, crop, self.fc, self.mask, inset=int(np.ceil(_feather_ramp(self.fc.size))))


def barycentric_matrix(points: np.ndarray, simplices: np.ndarray, size: int, grid: np.ndarray) -> csr_matrix:
    """Sparse (G * G, len(points)) matrix of barycentric weights of the points of a (G, G, 2) square ``grid`` (crop
    pixels, evenly spaced over a ``size`` crop) in the triangles ``simplices`` ((K, 3) indices) with corners at
    ``points``.

    Each grid point gets the three weights of the triangle it falls in: every triangle is tested against the grid
    points of its bounding box, all at once. Where triangles fold over (the lips pressed together in a dubbed
    video's frame) several hold a point, and the last of them in the order of ``simplices`` wins, as if they were
    drawn in that order. Points outside every triangle get no weights (zero displacement). Built directly in CSR
    form.
    """
    corners = points[simplices]  # (K, 3, 2)
    grid_size = len(grid)
    # b1 = ((y2 - y0) dx - (x2 - x0) dy) / det, b2 = ((x1 - x0) dy - (y1 - y0) dx) / det with d = p - corner 0: both
    # affine functions of the point, their coefficients (x, y, 1) per triangle in ``affine``
    e1, e2 = corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    flat = np.abs(det) <= 1e-9  # a triangle folded flat holds nothing
    det = np.where(flat, 1.0, det)
    c1 = np.stack([e2[:, 1], -e2[:, 0]], 1) / det[:, None]
    c2 = np.stack([-e1[:, 1], e1[:, 0]], 1) / det[:, None]
    affine = np.stack([np.concatenate([c1, -(c1 * corners[:, 0]).sum(1, keepdims=True)], 1),
                       np.concatenate([c2, -(c2 * corners[:, 0]).sum(1, keepdims=True)], 1)], 1)  # (K, 2, 3)
    # the grid indices each triangle's box spans (grid point i sits at (i + 0.5) * size / G - 0.5)
    to_index = grid_size / size
    low = np.maximum(np.ceil((corners.min(1) + 0.5) * to_index - 0.5), 0).astype(np.int64)  # (K, 2) x, y
    high = np.minimum(np.floor((corners.max(1) + 0.5) * to_index - 0.5), grid_size - 1).astype(np.int64)
    span = np.maximum(high - low + 1, 0)
    # every row of every triangle's box, then every point of each row (rows first: no division per point)
    rows = np.where(flat, 0, span[:, 1])
    row_tri = np.repeat(np.arange(len(simplices)), rows)
    row_y = low[row_tri, 1] + np.arange(len(row_tri)) - np.repeat(np.cumsum(rows) - rows, rows)
    width = span[row_tri, 0]
    position = grid[0, :, 0].astype(np.float64)  # grid point i's coordinate along either axis
    y = position[row_y]
    row_b1 = np.repeat(affine[row_tri, 0, 1] * y + affine[row_tri, 0, 2], width)  # the row's share of b1, b2
    row_b2 = np.repeat(affine[row_tri, 1, 1] * y + affine[row_tri, 1, 2], width)
    tri = np.repeat(row_tri, width)
    gy = np.repeat(row_y, width)
    gx = low[tri, 0] + np.arange(len(tri)) - np.repeat(np.cumsum(width) - width, width)
    x = position[gx]
    b1 = affine[tri, 0, 0] * x + row_b1
    b2 = affine[tri, 1, 0] * x + row_b2
    held = np.nonzero((b1 >= -1e-9) & (b2 >= -1e-9) & (b1 + b2 <= 1.0 + 1e-9))[0]  # in increasing triangle order
    point = gy[held] * grid_size + gx[held]
    order = np.argsort(point, kind="stable")
    point, held = point[order], held[order]
    last = np.ones(len(point), bool)
    last[:-1] = point[1:] != point[:-1]  # the last triangle holding each point
    point, held = point[last], held[last]
    weights = np.stack([1.0 - b1[held] - b2[held], b1[held], b2[held]], 1)
    indptr = np.zeros(grid_size * grid_size + 1, np.int64)
    indptr[point + 1] = 3
    return csr_matrix((weights.reshape(-1), simplices[tri[held]].reshape(-1), np.cumsum(indptr)),
                      shape=(grid_size * grid_size, len(points)))
