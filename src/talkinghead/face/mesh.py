"""478-point face mesh with MediaPipe FaceMesh (its model ships inside the wheel)."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from talkinghead.constants import MAX_FACES
from talkinghead.errors import InputError
from talkinghead.face.indices import N_POINTS
from talkinghead.io.video import VideoClip, read_video
from talkinghead.progress import bar

CROP_MESH_SIDE = 384
"""A face found by the detector alone is meshed in a crop resized to this side (pixels)."""


@dataclass
class FaceTrack:
    """One face followed through T frames.

    Attributes:
        meshes: (T, 478, 3) float32 pixel coordinates (x right, y down; z in pixels, smaller = nearer).
        boxes: (T, 4) float32 [x0, y0, x1, y1] bounding boxes of the meshes' x/y.
        image_size: (width, height) of the frames.
    """

    meshes: np.ndarray
    boxes: np.ndarray
    image_size: tuple[int, int]


def mesh_box(mesh: np.ndarray) -> np.ndarray:
    """[x0, y0, x1, y1] of a (478, 3) mesh's x/y."""
    return np.concatenate([mesh[:, :2].min(0), mesh[:, :2].max(0)]).astype(np.float32)


def _box_iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null while MediaPipe's C++ code logs its start-up notes."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class FaceMesher:
    """Runs MediaPipe FaceMesh (refined, 478 points) on RGB images.

    Use as a context manager. ``video=True`` enables MediaPipe's tracking between frames, which is
    faster for consecutive video frames; ``video=False`` treats every image independently.
    """

    def __init__(self, *, video: bool = False, max_faces: int = MAX_FACES, min_confidence: float = 0.5) -> None:
        from mediapipe.python.solutions import face_mesh  # heavy import, done on first use

        # MediaPipe's graph threads log their start-up notes asynchronously, until the first frame is through:
        # stderr stays silenced from here to the end of the first detect (nothing of ours prints in between)
        self._silence: ExitStack | None = ExitStack()
        self._silence.enter_context(_native_stderr_silenced())
        try:
            self._mesh = face_mesh.FaceMesh(
                static_image_mode=not video,
                max_num_faces=max_faces,
                refine_landmarks=True,
                min_detection_confidence=min_confidence,
                min_tracking_confidence=min_confidence,
            )
        except BaseException:
            self._unsilence()
            raise

    def _unsilence(self) -> None:
        if self._silence is not None:
            self._silence.close()
            self._silence = None

    def __enter__(self) -> FaceMesher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release MediaPipe's graph."""
        self._unsilence()
        self._mesh.close()

    def detect(self, image: np.ndarray) -> list[np.ndarray]:
        """All faces in ``image`` ((H, W, 3) uint8 RGB), largest first, each (478, 3) float32 pixels."""
        h, w = image.shape[:2]
        try:
            result = self._mesh.process(np.ascontiguousarray(image))
        finally:
            self._unsilence()  # the first frame is through: the graph has said all it says at start-up
        faces = []
        for lm in result.multi_face_landmarks or []:
            pts = np.array([(p.x * w, p.y * h, p.z * w) for p in lm.landmark], dtype=np.float32)
            if pts.shape[0] == N_POINTS:
                faces.append(pts)
        faces.sort(key=lambda m: -float(np.prod(mesh_box(m)[2:] - mesh_box(m)[:2])))
        return faces


def mesh_image(image: np.ndarray, *, face_index: int = 0, source: str = "image") -> tuple[np.ndarray, int]:
    """Mesh of one face in a still image.

    Args:
        image: (H, W, 3) uint8 RGB.
        face_index: which face, counting from the largest (0).
        source: file name used in error messages.

    Returns:
        ((478, 3) float32 pixel coordinates, number of faces found).
    """
    faces = find_faces(image, source=source, at_least=face_index + 1)
    return _pick(faces, face_index, source), len(faces)


def find_faces(image: np.ndarray, *, source: str = "image", at_least: int = MAX_FACES) -> list[np.ndarray]:
    """Meshes of the faces in a still image, the largest first; a one-line error when there is none.

    Args:
        image: (H, W, 3) uint8 RGB.
        source: file name used in error messages.
        at_least: when FaceMesh's own detector finds fewer faces than this, a full-range face detector looks
            for more (slower; FaceMesh misses small faces and faces beside another).

    Returns:
        (478, 3) float32 pixel meshes, at most :data:`MAX_FACES`.
    """
    with FaceMesher(video=False) as mesher:
        faces = mesher.detect(image)
        if len(faces) < at_least:
            faces = _with_detected(image, faces, mesher)
    if not faces:
        raise InputError(source, "no face found")
    return faces[:MAX_FACES]


def _with_detected(image: np.ndarray, faces: list[np.ndarray], mesher: FaceMesher) -> list[np.ndarray]:
    """``faces`` plus the faces MediaPipe's full-range face detector finds elsewhere, each meshed in a crop of
    twice its box (FaceMesh's own short-range detector misses faces that are small or beside another face)."""
    from mediapipe.python.solutions import face_detection

    h, w = image.shape[:2]
    with _native_stderr_silenced(), face_detection.FaceDetection(model_selection=1,
                                                                  min_detection_confidence=0.5) as detector:
        found = detector.process(np.ascontiguousarray(image)).detections or []
    out = list(faces)
    for det in found:
        box = det.location_data.relative_bounding_box
        cx, cy = (box.xmin + box.width / 2) * w, (box.ymin + box.height / 2) * h
        if any(mesh_box(m)[0] <= cx <= mesh_box(m)[2] and mesh_box(m)[1] <= cy <= mesh_box(m)[3] for m in out):
            continue  # already meshed
        half = max(box.width * w, box.height * h)
        x0, y0 = int(max(cx - half, 0)), int(max(cy - half, 0))
        x1, y1 = int(min(cx + half, w)), int(min(cy + half, h))
        crop = image[y0:y1, x0:x1]
        scale = CROP_MESH_SIDE / max(crop.shape[:2])
        resized = cv2.resize(crop, (round(crop.shape[1] * scale), round(crop.shape[0] * scale)))
        meshed = [m / scale + np.array([x0, y0, 0], np.float32) for m in mesher.detect(resized)]
        if meshed:  # the one nearest the detection
            out.append(min(meshed, key=lambda m: float(np.hypot(*(m[:, :2].mean(0) - (cx, cy))))).astype(np.float32))
    out.sort(key=lambda m: -float(np.prod(mesh_box(m)[2:] - mesh_box(m)[:2])))
    return out


def _pick(faces: list[np.ndarray], face_index: int, source: str) -> np.ndarray:
    if face_index >= len(faces):
        raise InputError(source, f"--face-index {face_index} asked for, but only {len(faces)} face(s) found")
    return faces[face_index]


def track_faces(
    frames: Iterable[np.ndarray],
    *,
    face_index: int = 0,
    source: str = "video",
    progress: Callable[[int], None] | None = None,
) -> FaceTrack:
    """Mesh one face through a sequence of frames.

    The face is chosen on the first frame where faces are found (``face_index`` counts from the
    largest) and then followed by box overlap. Frames where it is lost take the nearest
    detected frame's mesh. When it is alone in that first frame, MediaPipe follows only it (while it
    looks for up to :data:`MAX_FACES` faces it runs its face detector on every frame: a third of its
    time; the meshes are the same), until it is lost: from then on every face is meshed again.

    Args:
        frames: iterable of (H, W, 3) uint8 RGB frames of one size.
        face_index: which face to follow, counting from the largest.
        source: file name used in error messages.
        progress: called with 1 after each frame.

    Returns:
        FaceTrack with one mesh per frame.
    """
    meshes: list[np.ndarray | None] = []
    size = (0, 0)
    previous: np.ndarray | None = None
    with ExitStack() as meshers:
        mesher = meshers.enter_context(FaceMesher(video=True))
        alone = False  # following the face with a one-face mesher
        for frame in frames:
            size = (frame.shape[1], frame.shape[0])
            faces = mesher.detect(frame)
            chosen = None
            if faces and previous is None:
                if len(faces) == 1:  # followed from this frame on (meshed again) by a one-face mesher
                    alone = True
                    mesher = meshers.enter_context(FaceMesher(video=True, max_faces=1))
                    faces = mesher.detect(frame) or faces
                chosen = _pick(faces, face_index, source)
            elif faces and previous is not None:
                overlaps = [_box_iou(mesh_box(f), mesh_box(previous)) for f in faces]
                best = int(np.argmax(overlaps))
                chosen = faces[best] if overlaps[best] > 0.1 else None
            if alone and chosen is None:
                alone = False
                mesher = meshers.enter_context(FaceMesher(video=True))
            meshes.append(chosen)
            if chosen is not None:
                previous = chosen
            if progress is not None:
                progress(1)
    found = [i for i, m in enumerate(meshes) if m is not None]
    if not found:
        raise InputError(source, "no face found in any frame")
    if len(found) < 0.5 * len(meshes):
        raise InputError(source, f"face found in only {len(found)} of {len(meshes)} frames")
    found_arr = np.array(found)
    filled = []
    for i, m in enumerate(meshes):
        filled.append(m if m is not None else meshes[int(found_arr[np.argmin(np.abs(found_arr - i))])])
    stacked = np.stack(filled).astype(np.float32)
    return FaceTrack(meshes=stacked, boxes=np.stack([mesh_box(m) for m in stacked]), image_size=size)


def track_video(path: str | Path, *, label: str, max_side: int, max_frames: int | None = None, face_index: int = 0,
                seconds: float | None = None, quiet: bool = False) -> tuple[VideoClip, FaceTrack]:
    """Read a video (longer side at most ``max_side``, its first ``max_frames``; only the frames shown in its first
    ``seconds`` when given) and mesh one face through it, with a progress bar called ``label``."""
    clip = read_video(path, max_side=max_side, max_frames=max_frames)
    if seconds is not None:
        clip = replace(clip, frames=clip.frames[:max(1, math.ceil(seconds * clip.fps + 1e-6))])
    with bar(len(clip.frames), label, quiet=quiet) as pb:
        track = track_faces(clip.frames, face_index=face_index, source=str(path), progress=pb.update)
    return clip, track
