"""Running StyleHEAT: a photo's face crop, speech (and a driving video) -> face crops from the warped generator.

Works at :data:`~talkinghead.data.clip.DATA_FPS` on aligned face crops; :mod:`talkinghead.api` cuts the crop
from the photo and pastes the generated crops back. The audio drives the lips; a driving video (``motion``)
drives the head pose and the upper face: its lower-face coefficients are set to their rest value (0), so its
mouth does not move ours. Edits move the photo's code along stored directions, gradually over the video (with mesh
flows, its face mesh too).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from talkinghead.constants import DATA_FPS
from talkinghead.errors import TalkingHeadError
from talkinghead.face.crop import FaceCrop
from talkinghead.face.model import FaceModel
from talkinghead.motion.styleheat.flows import mesh_flows
from talkinghead.motion.styleheat.model import StyleHeat, coefficient_features
from talkinghead.render.stylegan.infer import BATCH, reference_code, to_crops
from talkinghead.render.stylegan.model import Encoder, Generator

MAX_EDIT = 3.0
"""Largest edit strength (standard deviations of the codes along a direction)."""


@dataclass
class StyleHeatModels:
    model: StyleHeat
    generator: Generator
    encoder: Encoder

    def __post_init__(self) -> None:
        g, c = self.generator.config, self.model.config
        if (g.w_dim, g.n_latents, g.channels_at(c.warp_resolution)) != (c.w_dim, c.n_latents, c.feature_channels) \
                or self.encoder.config.n_latents != g.n_latents:
            raise TalkingHeadError("the StyleHEAT, generator and encoder checkpoints were not trained together "
                                   "(their shapes differ)")


def load_models(paths: dict[str, str | Path]) -> StyleHeatModels:
    """The models of ``paths`` (keys: the method, the generator and the encoder; the shipped ones when absent)."""
    return StyleHeatModels(StyleHeat.load(paths["styleheat"]) if "styleheat" in paths else StyleHeat.default(),
                           Generator.load(paths["generator"]) if "generator" in paths else Generator.default(),
                           Encoder.load(paths["encoder"]) if "encoder" in paths else Encoder.default())


def check_edits(names: list[str], edits: dict[str, float]) -> None:
    """Every edit names one of a model's directions (``names``) and has a strength within +-:data:`MAX_EDIT`."""
    for name, strength in edits.items():
        if name not in names:
            raise TalkingHeadError(f"unknown edit {name!r} (this StyleHEAT model has: {', '.join(names) or 'none'})")
        if not -MAX_EDIT <= strength <= MAX_EDIT:
            raise TalkingHeadError(f"edit strength must be between -{MAX_EDIT:g} and {MAX_EDIT:g}, not {strength:g}")


def edit_ramp(n: int) -> torch.Tensor:
    """(n,) share of an edit's strength at each of n frames: from 0 at the first to 1 at the last (1 for one frame)."""
    return torch.linspace(0.0, 1.0, n) if n > 1 else torch.ones(1)


def edited_codes(model: StyleHeat, w: torch.Tensor, edits: dict[str, float], n: int) -> torch.Tensor:
    """(n, L, w_dim) codes: ``w`` (L, w_dim) moved along each edit's direction by strength x its std on its W+
    vectors, the strength rising linearly from 0 at the first frame to the full value at the last."""
    codes = w[None].repeat(n, 1, 1)
    ramp = edit_ramp(n)
    for name, strength in edits.items():
        i = model.config.edit_names.index(name)
        lo, hi = model.edit_layers[i].tolist()
        step = model.edit_directions[i] * model.edit_stds[i] * strength
        codes[:, lo:hi] += ramp[:, None, None] * step
    return codes


def edited_expressions(model: StyleHeat, edits: dict[str, float], n: int) -> np.ndarray:
    """(n, n_expression) expression coefficients the ``edits`` add to the face mesh of a model with mesh flows
    (strength x ``edit_expressions``), ramped as :func:`edited_codes` ramps the codes."""
    offset = torch.zeros(model.config.n_expression)
    for name, strength in edits.items():
        offset += strength * model.edit_expressions[model.config.edit_names.index(name)].float()
    return (edit_ramp(n)[:, None] * offset).numpy()


def coefficient_windows(expression: np.ndarray, rotation: np.ndarray, *, radius: int, lower_face: np.ndarray
                        ) -> torch.Tensor:
    """(T, 2 radius + 1, F) video-descriptor windows of a driving sequence (T, K) + (T, 3, 3), edges repeated, with
    the ``lower_face`` coefficients (bool (K,)) at rest."""
    expression = np.where(lower_face[:expression.shape[1]], 0.0, expression)
    features = coefficient_features(torch.from_numpy(expression).float(), torch.from_numpy(rotation).float())
    idx = np.clip(np.arange(len(features))[:, None] + np.arange(-radius, radius + 1)[None], 0, len(features) - 1)
    return features[torch.from_numpy(idx)]


def moved_meshes(mesh: np.ndarray, expression: np.ndarray, rotation: np.ndarray, *, face_model: FaceModel
                 ) -> np.ndarray:
    """(T, 478, 3) float32 pixel meshes: the photo's face mesh ``mesh`` ((478, 3) frame pixels) moved by expression
    coefficients (T, K) (offsets from its own shape) and turned by head rotations (T, 3) (pitch, yaw, roll
    radians), as the default engine moves it."""
    from talkinghead.face.motion import FaceMotion
    from talkinghead.render.warp.renderer import target_meshes

    n, k = expression.shape
    motion = FaceMotion(fps=DATA_FPS, expression=expression.astype(np.float32), basis=face_model.basis(k),
                        head_rotation=rotation.astype(np.float32), head_translation=np.zeros((n, 3), np.float32),
                        blink=np.zeros(n, np.float32))
    return target_meshes(mesh, motion)


def crop_flows(mesh: np.ndarray, crop: FaceCrop, targets: np.ndarray, *, resolution: int) -> torch.Tensor:
    """Flows (T, 2, r, r) that carry the photo's face mesh ``mesh`` ((478, 3) frame pixels; ``crop`` its face crop)
    onto each of the meshes ``targets`` ((T, 478, 3) frame pixels) (:func:`mesh_flows`)."""
    return mesh_flows(crop.to_crop(mesh), np.stack([crop.to_crop(t) for t in targets]), size=crop.size,
                      resolution=resolution)


@torch.no_grad()
def mesh_motion(model: StyleHeat, mesh: np.ndarray, speech: np.ndarray, *, face_model: FaceModel,
                driving: tuple[np.ndarray, np.ndarray] | None = None, mouth_scale: float = 1.0,
                edits: dict[str, float] | None = None) -> np.ndarray:
    """The mesh path's motion: the photo's face mesh ``mesh`` ((478, 3) frame pixels) at each of T frames of speech
    inputs (T, ...) (``config.speech``'s), (T, 478, 3) (:func:`moved_meshes`), with the lower-face expression
    coefficients the model predicts (times its ``mouth_gain`` and ``mouth_scale``, the user's amplitude; offsets from
    a clip's mean shape, as training encodes them, so they move the photo's face with its mouth at rest,
    :func:`~talkinghead.motion.styleclip.photo_rest_mouth`) and, from
    ``driving`` (expression coefficients (T, K), head rotations (T, 3, 3); see
    :func:`talkinghead.motion.styleclip.video_coefficients`), the upper-face coefficients and the head's rotation
    relative to the driving clip's mean; without it the head and the upper face stay as in the photo. Gradual
    ``edits`` add their expression coefficients (:func:`edited_expressions`) on top. :func:`crop_flows` turns them
    into the flows."""
    from talkinghead.motion.styleclip import photo_rest_mouth, relative_rotations

    n = len(speech)
    predicted = (model.eval().expression(torch.from_numpy(speech).float()) * model.mouth_gain * mouth_scale).numpy()
    k = predicted.shape[1]
    upper = np.zeros_like(predicted) if driving is None else driving[0][:n, :k]
    rotation = np.zeros((n, 3)) if driving is None else relative_rotations(driving[1][:n])[0]
    expression = np.where(face_model.lower_face[:k], predicted, upper) + edited_expressions(model, edits or {}, n)
    return moved_meshes(photo_rest_mouth(mesh, face_model=face_model), expression, rotation, face_model=face_model)


@torch.no_grad()
def styleheat_crops(models: StyleHeatModels, crop: np.ndarray, speech: np.ndarray | None, *,
                    motion: torch.Tensor | None = None, flows: torch.Tensor | None = None,
                    edits: dict[str, float] | None = None, invert_steps: int = 0) -> np.ndarray:
    """Face crops (T, S, S, 3) uint8 of T frames at 25 fps of the photo's face crop ``crop`` (S', S', 3) uint8.
    Network flows: speaking the speech inputs (T, ...) (:func:`talkinghead.audio.speech.speech_at` of
    ``config.speech``), head driven by ``motion`` (T, 2 radius + 1, F) windows (:func:`coefficient_windows`) when
    given. Mesh flows: warped by ``flows`` (T, 2, r, r) (:func:`crop_flows`; ``speech`` and ``motion`` unused).
    Both with gradual ``edits`` (name -> strength)."""
    model, generator = models.model.eval(), models.generator
    if (flows is None) != (model.config.flows == "network") or (flows is None and speech is None):
        raise ValueError(f"a StyleHEAT model with {model.config.flows} flows needs "
                         + ("speech inputs" if model.config.flows == "network" else "mesh flows"))
    with torch.enable_grad():
        w, reference = reference_code(generator, models.encoder, crop, steps=invert_steps)
    source, _ = generator(w[None], noise="none", reference=reference)
    n = len(flows) if flows is not None else len(speech)  # type: ignore[arg-type]
    codes = edited_codes(model, w, edits or {}, n)
    out = []
    for s in range(0, n, BATCH):
        if flows is not None:
            flow, descriptor = flows[s:s + BATCH], None
        else:
            flow, descriptor = model.motion(source, None if motion is None else motion[s:s + BATCH],
                                            torch.from_numpy(speech[s:s + BATCH]).float())  # type: ignore[index]
        out.append(to_crops(model.render(generator, codes[s:s + BATCH], flow, descriptor, reference=reference)[0]))
    return np.concatenate(out)
