"""The style-based generator's crops pasted back, as a :class:`talkinghead.spec.Renderer`: the methods that draw
the whole face crop with the generator (their performance carries the crops) are pasted into the photo through a
soft mask a little larger than its face oval (the moved face's, where the performance says how the face moved)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from talkinghead.spec import CommandRef, Performance, RendererSpec, Request, Scene

MASK_SCALE = 1.15
"""The pasted face: the reference face oval enlarged by this about its centre (the head moves)."""


class FacePaste:
    """Pastes generated face crops (``CROP_SIZE``, aligned on the photo's face) into a photo ((H, W, 3) uint8 RGB,
    its (478, 3) pixel ``mesh``) through a soft mask :data:`MASK_SCALE` times the face oval. Given the mesh a crop
    was drawn for (:meth:`moved`), the photo around the face is warped to it as the default engine warps it (the
    head ring and the crop around it move with the head), the mask follows the moved face, and the inside of the
    lips is drawn by the ``mouth`` (:data:`talkinghead.spec.MOUTHS`; the generator draws a parted mouth's inside
    barely or not at all); else (:meth:`still`) the photo stays and the mask is its own face oval."""

    def __init__(self, photo: np.ndarray, mesh: np.ndarray, *, mouth: str | None = None) -> None:
        from talkinghead.constants import CROP_SIZE
        from talkinghead.face.crop import face_crop_for
        from talkinghead.render.warp.renderer import Topology, WarpRenderer

        self.photo, self.mesh = photo, mesh
        self.fc = face_crop_for(mesh, size=CROP_SIZE)
        self.warper = None if mouth is None else WarpRenderer(photo, mesh, Topology.of(photo, mesh, mouth=mouth))
        self.still_mask = self._mask(mesh)

    def _mask(self, face_mesh: np.ndarray) -> np.ndarray:
        from talkinghead.constants import CROP_SIZE
        from talkinghead.face.crop import face_mask

        oval = self.fc.to_crop(face_mesh)[:, :2]
        centre = oval.mean(0)
        return face_mask(centre + MASK_SCALE * (oval - centre), (CROP_SIZE, CROP_SIZE), feather=CROP_SIZE / 32)

    def still(self, face: np.ndarray) -> np.ndarray:
        """The photo with a crop (CROP_SIZE, CROP_SIZE, 3) pasted where its face is."""
        from talkinghead.face.crop import paste_back

        return paste_back(self.photo, face, self.fc, self.still_mask)

    def moved(self, face: np.ndarray, face_mesh: np.ndarray) -> np.ndarray:
        """The photo warped to ``face_mesh`` ((478, 3) pixels) with a crop drawn for that mesh pasted where the face
        moved, and its mouth drawn (the object must have been made with a ``mouth``)."""
        from talkinghead.face.crop import paste_back

        if self.warper is None:
            raise ValueError("a moved face needs a FacePaste made with a mouth")
        out = paste_back(self.warper.compose(self.photo, self.warper.warp(face_mesh)[0]), face, self.fc,
                         self._mask(face_mesh))
        self.warper.mouth.paint(out, face_mesh, self.mesh)
        return out


class PastedCrops:
    """Generated face crops at DATA_FPS, time-matched to the output frame rate and pasted into the photo
    (:class:`FacePaste`; where the performance carries the meshes the crops were drawn for, mesh-flow StyleHEAT, the
    photo around the face moves with them and the learned painter draws the inside of the lips)."""

    def frames(self, request: Request, scene: Scene, performance: Performance) -> Iterator[np.ndarray]:
        import cv2

        from talkinghead.constants import CROP_SIZE, DATA_FPS
        from talkinghead.io.video import frame_indices
        from talkinghead.spec import MOUTHS

        if performance.crops is None:
            raise ValueError("the performance has no generated crops to paste")
        moved = performance.crop_meshes
        paste = FacePaste(scene.clip.frames[0], scene.meshes[0], mouth=None if moved is None else MOUTHS[0])
        for k in frame_indices(scene.n_frames, scene.features.fps, len(performance.crops), DATA_FPS):
            face = cv2.resize(performance.crops[k], (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_CUBIC)
            yield paste.still(face) if moved is None else paste.moved(face, moved[k])


SPEC = RendererSpec(name="generator", summary="the style-based generator's face crops pasted into the photo",
                    create=PastedCrops,
                    commands=(CommandRef("train-stylegan", "train the style-based generator, its encoder and identity "
                                                           "student", "talkinghead.train.stylegan:COMMAND"),
                              CommandRef("crop-corpus", "a small copy of a dataset with only what train-stylegan "
                                                        "reads", "talkinghead.train.stylegan:CORPUS_COMMAND")))
