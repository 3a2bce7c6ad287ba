"""The style-based generator's crops pasted back, as a :class:`talkinghead.spec.Renderer`: the methods that draw
the whole face crop with the generator (their performance carries the crops) are pasted into the photo through a
soft mask a little larger than its face oval (the moved face's, where the performance says how the face moved)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from talkinghead.spec import CommandRef, Performance, RendererSpec, Request, Scene

MASK_SCALE = 1.15
"""The pasted face: the reference face oval enlarged by this about its centre (the head moves)."""


class PastedCrops:
    """Generated face crops at DATA_FPS, time-matched to the output frame rate and pasted into the photo. With the
    meshes each crop was drawn for (mesh-flow StyleHEAT), the photo around the face is warped to them as the default
    engine warps it (the head ring and the crop around it move with the head) and the mask follows the moved face;
    else the photo stays and the mask is the photo's face oval."""

    def frames(self, request: Request, scene: Scene, performance: Performance) -> Iterator[np.ndarray]:
        import cv2

        from talkinghead.constants import CROP_SIZE, DATA_FPS
        from talkinghead.face.crop import face_crop_for, face_mask, paste_back
        from talkinghead.io.video import frame_indices
        from talkinghead.render.warp.renderer import Topology, WarpRenderer

        if performance.crops is None:
            raise ValueError("the performance has no generated crops to paste")
        frame, mesh = scene.clip.frames[0], scene.meshes[0]
        fc = face_crop_for(mesh, size=CROP_SIZE)

        def mask_of(face_mesh: np.ndarray) -> np.ndarray:
            oval = fc.to_crop(face_mesh)[:, :2]
            centre = oval.mean(0)
            return face_mask(centre + MASK_SCALE * (oval - centre), (CROP_SIZE, CROP_SIZE), feather=CROP_SIZE / 32)

        moved = performance.crop_meshes
        warper = None if moved is None else WarpRenderer(frame, mesh, Topology.of(frame, mesh, mouth="painted"))
        still = mask_of(mesh)
        for k in frame_indices(scene.n_frames, scene.features.fps, len(performance.crops), DATA_FPS):
            face = cv2.resize(performance.crops[k], (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_CUBIC)
            if warper is None or moved is None:
                yield paste_back(frame, face, fc, still)
            else:  # the mouth inside the warped photo is never seen: the generated face covers it
                yield paste_back(warper.compose(frame, warper.warp(moved[k])[0]), face, fc, mask_of(moved[k]))


SPEC = RendererSpec(name="generator", summary="the style-based generator's face crops pasted into the photo",
                    create=PastedCrops,
                    commands=(CommandRef("train-stylegan", "train the style-based generator, its encoder and identity "
                                                           "student", "talkinghead.train.stylegan:COMMAND"),
                              CommandRef("crop-corpus", "a small copy of a dataset with only what train-stylegan "
                                                        "reads", "talkinghead.train.stylegan:CORPUS_COMMAND")))
