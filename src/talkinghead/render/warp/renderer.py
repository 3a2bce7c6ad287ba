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
from talkinghead.face.expression import eyelid_closure
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
RASTER_BITS = 8
"""Fractional bits of the triangle corners drawn to find each grid point's triangle."""
WALK_STEPS = 6
"""Most steps a grid point walks from the triangle drawn over it to the one it is in (one or two in practice)."""
INVERSION_STEPS = 3
FEATHER_FRACTION = 0.04
"""Paste-back mask ramps from 0 to 1 over this fraction of the crop side at its border."""


def target_meshes(reference: np.ndarray, motion: FaceMotion) -> np.ndarray:
    """Deform reference mesh(es) by a motion.

    For each frame: pose-free reference + expression offsets + blink * eyelid closure, then the
    reference pose with the motion's head rotation (about the rigid-point centroid) and translation.

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
        neighbors: (K, 3) the triangle across the edge opposite each corner (-1: none).
        mouth: draws the mouth interior.
    """

    simplices: np.ndarray
    neighbors: np.ndarray
    mouth: Mouth

    @classmethod
    def of(cls, image: np.ndarray, mesh: np.ndarray, *, mouth: str = MOUTHS[0],
           mouth_reference: tuple[np.ndarray, np.ndarray] | None = None, painter: str | None = None) -> Topology:
        """The topology of a reference frame ((H, W, 3) uint8 RGB) and its (478, 3) pixel mesh, with the ``mouth``
        (:data:`MOUTHS`) of ``mouth_reference`` (a frame and its mesh; default: this one); ``painter``: a learned
        painter checkpoint instead of the shipped one."""
        fc = face_crop_for(mesh, size=None, margin=WARP_MARGIN, align=False)
        src = fc.to_crop(mesh.astype(np.float64))
        tri = Delaunay(_warp_points(src, fc.size)[0])
        ref_image, ref_mesh = mouth_reference if mouth_reference is not None else (image, mesh)
        return cls(simplices=tri.simplices.astype(np.int32), neighbors=tri.neighbors.astype(np.int32),
                   mouth=make_mouth(mouth, ref_image, ref_mesh, checkpoint=painter))


def _warp_points(src: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(the warp points: the mesh, the head ring and the crop's border, (P, 2); the head ring (R, 2)) of a
    (478, 2) crop-pixel mesh in a crop of ``size``."""
    centre = src[ix.FACE_OVAL].mean(0)
    ring = centre + HEAD_RING_SCALE * (src[ix.FACE_OVAL] - centre)
    return np.concatenate([src, ring, _border_points(size)]), ring


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
        points, self.ring = _warp_points(self.src, size)
        self.still = np.zeros((len(points) - len(self.src) - len(self.ring), 2))
        self.grid_size = int(np.ceil(size / MAP_STEP))
        pos = (np.arange(self.grid_size) + 0.5) * size / self.grid_size - 0.5
        gx, gy = np.meshgrid(pos, pos)
        self.grid = np.stack([gx, gy], -1).astype(np.float32)
        self.weights = _barycentric_matrix(points, topology, size, self.grid)
        self.mask = _feather_mask(size)
        self.mouth = topology.mouth

    def render(self, mesh: np.ndarray) -> np.ndarray:
        """The reference crop warped so its mesh lands on ``mesh`` ((478, 3) pixels), the mouth drawn: (S, S, 3)
        uint8."""
        out, tgt = self.warp(mesh)
        self.mouth.paint(out, tgt)
        return out

    def warp(self, mesh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`render`'s first stage: (the warped crop (S, S, 3) uint8 before the mouth is drawn, the target mesh
        in its pixels (478, 3) float64)."""
        tgt = self.fc.to_crop(mesh.astype(np.float64))
        s, rot, t = umeyama(self.src[ix.FACE_OVAL], tgt[ix.FACE_OVAL])
        ring_tgt = s * self.ring @ rot.T + t
        disp = np.concatenate([tgt - self.src, ring_tgt - self.ring, self.still])
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


def _barycentric_matrix(points: np.ndarray, topology: Topology, size: int, grid: np.ndarray) -> csr_matrix:
    """Sparse (G * G, len(points)) matrix of barycentric weights of the points of a (G, G, 2) square ``grid`` (crop
    pixels, evenly spaced over a ``size`` crop) in the triangles of ``topology`` with corners at ``points``.

    Each grid point gets the three weights of the triangle it falls in: the triangles' indices are drawn into a
    grid-sized image (which gives a point near an edge either triangle), then a point outside the triangle it got
    walks across the edge it is beyond until it is inside (a point still outside after :data:`WALK_STEPS` steps
    gets its last triangle's weights clamped to it). Points outside every triangle get no weights (zero
    displacement). Built directly in CSR form.
    """
    simplices = topology.simplices
    corners = points[simplices]  # (K, 3, 2)
    edges = np.stack([corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]], axis=2)  # (K, 2, 2)
    det = edges[:, 0, 0] * edges[:, 1, 1] - edges[:, 0, 1] * edges[:, 1, 0]
    det = np.where(np.abs(det) > 1e-9, det, 1e-9)  # a triangle folded flat covers nothing
    grid_size = len(grid)
    owner = np.full((grid_size, grid_size), -1, np.int32)
    scale = grid_size / size
    fixed = np.round(((corners + 0.5) * scale - 0.5) * (1 << RASTER_BITS)).astype(np.int32)
    for k in range(len(simplices)):
        cv2.fillConvexPoly(owner, fixed[k], k, lineType=cv2.LINE_8, shift=RASTER_BITS)
    flat = owner.reshape(-1)
    inside = flat >= 0
    k = flat[inside]
    queries = grid.reshape(-1, 2)[inside].astype(np.float64)

    def barycentric(q: np.ndarray, tri: np.ndarray) -> np.ndarray:
        d, e, dk = q - corners[tri, 0], edges[tri], det[tri]
        b1 = (e[:, 1, 1] * d[:, 0] - e[:, 0, 1] * d[:, 1]) / dk
        b2 = (e[:, 0, 0] * d[:, 1] - e[:, 1, 0] * d[:, 0]) / dk
        return np.stack([1.0 - b1 - b2, b1, b2], 1)

    weights = barycentric(queries, k)
    moved = np.arange(len(k))  # the points whose triangle changed in the last step
    for _ in range(WALK_STEPS):
        corner = weights[moved].argmin(1)
        outside = weights[moved, corner] < -1e-6
        moved, corner = moved[outside], corner[outside]
        across = topology.neighbors[k[moved], corner]
        moved, across = moved[across >= 0], across[across >= 0]
        if not len(moved):
            break
        k[moved] = across
        weights[moved] = barycentric(queries[moved], across)
    # Where triangles fold over (lips pressed together in a dubbed video's frame) a point can walk round in circles:
    # its weights, extrapolated from the last triangle (up to +-50), threw it far off and drew spikes at the inner lips
    # (one output frame in ten of a dub of talking/styletalk_KristiNoem changed by over 30 grey levels). Clamped to
    # that triangle instead.
    lost = np.nonzero(weights.min(1) < -1e-6)[0]
    clamped = np.maximum(weights[lost], 0.0)
    weights[lost] = clamped / clamped.sum(1, keepdims=True)
    data = weights.reshape(-1)
    indices = simplices[k].reshape(-1)
    indptr = np.concatenate([[0], np.cumsum(inside.astype(np.int64) * 3)])
    return csr_matrix((data, indices, indptr), shape=(grid_size * grid_size, len(points)))
