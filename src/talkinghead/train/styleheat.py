"""Training StyleHEAT with PyTorch Lightning on a trained generator and encoder (``train-stylegan``; by default the
shipped feature-path ones).

Items are windows of ``frames`` consecutive face crops (plus ``radius`` frames of coefficients on each side) and
one other frame of the same clip as the source. The frozen encoder inverts the source into W+ (and, on the feature
path, its feature maps: StyleHEAT's HFGI inversion also yields a feature map); the motion generators warp the
generator's feature map (on the feature path the source's own map at the generator's input resolution, StyleHEAT's
choice of warping the inversion's map) so that it draws each target frame. Two stages, as StyleHEAT's supplement
schedules them:

1. ``warp``: the video-driven motion generator learns to reproduce the target frames (L1 + the random-VGG
   perceptual stand-in for VGG, weight ``warp``), and the audio-driven one the lower face on top of the
   (detached) video flow: L1 + perceptual inside the soft mouth mask (``mouth``) and the lip-sync loss of our
   image SyncNet on the generated mouths (``sync``).
2. ``calibrate``: the calibration network is trained (both motion generators fine-tuned at a tenth of the
   learning rate) on the final image: L1 + perceptual with the soft mouth mask (1 inside :data:`MOUTH_REGION`,
   outside a weight falling 0.2 -> 0.05 -> 0.005 over the stage, StyleHEAT's schedule), the non-masked-region
   regulariser (outside the mask the final image stays the warped one), sync, the calibration domain loss (the
   calibrated feature map against the generator's own map of the target frame's code, on the feature path the
   encoder's map of the target frame: our reading, it keeps the calibrated features in the domain the generator
   reads) and an adversarial loss (the StyleGAN discriminator, non-saturating, fine-tuned alongside; the feature
   path has none, so a PatchGAN learns from scratch there, LSGAN).

The loss weights are ours (StyleHEAT's multiply VGG-19 losses we do not have). Configurations: ``tiny`` (CPU
tests), ``cpu`` (the 64 px generator), ``small`` (128 px), ``paper`` (StyleHEAT's sizes). After training, edit
directions are stored in the checkpoint (:func:`fill_edit_directions`): GANSpace components and, from the training
frames' meshes, the directions of "smile" (mouth-corner width) and "mouth_open" (inner-lip gap), each the
ridge-regression normal of the attribute on the encoder's codes (both centred per clip); with mesh flows each edit also
moves the face mesh by expression coefficients fitted on the same frames.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F

from talkinghead.audio.speech import SPEECH_INPUTS
from talkinghead.data.clip import clip_dir, list_clips, load_clip
from talkinghead.errors import TalkingHeadError
from talkinghead.face.crop import MOUTH_REGION
from talkinghead.face.indices import INNER_LIP_PAIRS, MOUTH_CORNERS, OUTER_EYE_CORNERS
from talkinghead.face.model import default_face_model
from talkinghead.motion.styleheat.config import FLOWS, StyleHeatConfig
from talkinghead.motion.styleheat.model import StyleHeat, coefficient_features
from talkinghead.nn.discriminator import MultiScaleDiscriminator, lsgan_loss
from talkinghead.nn.layers import compose_flows, warp
from talkinghead.nn.perceptual import PerceptualLoss
from talkinghead.render.stylegan.edit import principal_components, principal_directions
from talkinghead.render.stylegan.model import (
    Discriminator,
    Encoder,
    Generator,
    d_logistic_loss,
    g_nonsaturating_loss,
    shipped_models,
)
from talkinghead.spec import Command
from talkinghead.sync.inputs import mouth_crops
from talkinghead.sync.model import SyncNet, sequence_sync_loss
from talkinghead.train.common import fit, generator_training_inputs, parse_devices, print_metrics, training_options
from talkinghead.train.datasets import WindowDataset, clip_speech_inputs
from talkinghead.train.stylegan import psnr

STYLEHEAT_CONFIGS = {
    "tiny": StyleHeatConfig(radius=2, descriptor=16, mapping_layers=1, base_channels=8, max_channels=16,
                            down_layers=3, calibration_channels=8, calibration_levels=1),
    "cpu": StyleHeatConfig(radius=6, descriptor=64, mapping_layers=2, base_channels=16, max_channels=64,
                           down_layers=4, calibration_channels=32),
    "small": StyleHeatConfig(radius=13, descriptor=128, base_channels=32, max_channels=128),
    "paper": StyleHeatConfig(),
}
PCA_EDITS = 4
"""Unlabelled edits "pc0".."pc3": GANSpace components (they move the first half of the W+ vectors); with mesh flows
the principal components of the expression coefficients."""
LABELLED_EDITS = ("smile", "mouth_open")
"""Edits measured on the meshes (our data has no age labels, so no age direction)."""
EDIT_NAMES = [*LABELLED_EDITS, *(f"pc{i}" for i in range(PCA_EDITS))]
MASK_SCHEDULE = ((0.05, 0.2), (0.2, 0.05), (1.0, 0.005))
"""(share of the calibration stage, weight outside the mouth until then): StyleHEAT's 0.2 / 0.05 / 0.005."""


@dataclass
class StyleHeatLossWeights:
    warp: float = 1.0
    mouth: float = 1.0
    regular: float = 0.5
    sync: float = 0.1
    domain: float = 1.0
    adversarial: float = 0.05


def soft_mouth_mask(size: int, outside: float, *, feather: float = 0.04) -> torch.Tensor:
    """(1, 1, size, size): 1 inside :data:`MOUTH_REGION`, ``outside`` beyond it, linear in between over
    ``feather`` of the crop."""
    x0, y0, x1, y1 = MOUTH_REGION
    t = (torch.arange(size, dtype=torch.float32) + 0.5) / size

    def ramp(lo: float, hi: float) -> torch.Tensor:
        return ((t - lo + feather) / feather).clamp(0, 1) * ((hi + feather - t) / feather).clamp(0, 1)

    inside = ramp(y0, y1)[:, None] * ramp(x0, x1)[None]
    return (outside + (1 - outside) * inside)[None, None]


class StyleHeatModule(L.LightningModule):
    """One stage (``warp`` or ``calibrate``) of StyleHEAT's training; generator, encoder and SyncNet frozen, the
    discriminator trained alongside in the ``calibrate`` stage: the StyleGAN discriminator of a constant-path
    folder (non-saturating logistic loss), or on the feature path, which has none, a PatchGAN from scratch (LSGAN,
    as the feature path's own training)."""

    def __init__(self, model: StyleHeat, generator: Generator, encoder: Encoder,
                 discriminator: Discriminator | MultiScaleDiscriminator, syncnet: SyncNet | None, *, stage: str,
                 max_steps: int, lr: float = 1e-4,
                 weights: StyleHeatLossWeights | None = None) -> None:
        super().__init__()
        if stage not in ("warp", "calibrate"):
            raise ValueError(f"stage must be 'warp' or 'calibrate', not {stage!r}")
        if syncnet is not None and syncnet.config.visual != "image":
            raise ValueError("StyleHEAT's sync loss needs a SyncNet with the image visual stream")
        self.automatic_optimization = False
        self.model, self.stage, self.max_steps = model, stage, max_steps
        self.generator = generator.eval().requires_grad_(False)
        self.encoder = encoder.eval().requires_grad_(False)
        self.discriminator = discriminator
        self.syncnet = syncnet.eval().requires_grad_(False) if syncnet is not None else None
        self.perceptual = PerceptualLoss()
        self.lr, self.weights = lr, weights or StyleHeatLossWeights()
        self.steps = 0

    def _prepare(self, batch: dict) -> dict:
        """Targets (B, T, 3, S, S) in [-1, 1], per target frame (B * T rows): the source's code and its generator
        image, coefficient windows, mel windows (the sync loss's) and speech inputs (the audio mapper's), the
        generator's feature map of the target's own code (on the feature path: the encoder's map of the target,
        the map the generator starts from) and the source's reference (feature path; else None)."""
        c, g = self.model.config, self.generator
        s, r = g.config.size, c.radius
        frames = batch["frames"]
        b, n = frames.shape[:2]
        t = n - 2 * r
        images = torch.cat([frames[:, r:r + t].flatten(0, 1), batch["references"][:, 0]])
        if images.shape[-1] != s:
            images = F.interpolate(images, size=(s, s), mode="area")
        images = images * 2 - 1
        targets, source = images[:b * t], images[b * t:]
        coefficients = coefficient_features(batch["expression"], batch["rotation"])  # (B, N, F)
        windows = coefficients.unfold(1, 2 * r + 1, 1).transpose(2, 3)  # (B, T, W, F)
        self.encoder.eval()
        with torch.no_grad():
            codes, maps = self.encoder.encode(torch.cat([source, targets]))
            w = codes[:b].repeat_interleave(t, 0)
            if maps is None:
                reference = None
                source_image, _ = g(codes[:b], noise="none")
                _, target_feature = g(codes[b:], noise="none", features=c.warp_resolution)
            else:
                reference = ([m[:b].repeat_interleave(t, 0) for m in maps], w)
                source_image, _ = g(codes[:b], noise="none", reference=([m[:b] for m in maps], codes[:b]))
                target_feature = maps[0][b:]
        return {"targets": targets.view(b, t, 3, s, s), "w": w, "source": source_image.repeat_interleave(t, 0),
                "coefficients": windows.flatten(0, 1), "mels": batch["mel_iplap"][:, r:r + t],
                "speech": batch["speech"][:, r:r + t].flatten(0, 1),
                "target_feature": target_feature, "reference": reference}

    def _image_loss(self, fake: torch.Tensor, real: torch.Tensor, weight: torch.Tensor | None = None
                    ) -> torch.Tensor:
        """L1 + perceptual of images (N, 3, S, S) in [-1, 1], both weighted by the mask ``weight`` if given."""
        if weight is not None:
            fake, real = fake * weight, real * weight
        return F.l1_loss(fake, real) + self.perceptual((fake + 1) / 2, (real + 1) / 2)

    def _sync(self, fake: torch.Tensor, mels: torch.Tensor) -> torch.Tensor:
        self.syncnet.eval()  # type: ignore[union-attr]
        size = (self.syncnet.config.height, self.syncnet.config.width)  # type: ignore[union-attr]
        return sequence_sync_loss(self.syncnet, mouth_crops(fake, size), mels)  # type: ignore[arg-type]

    def outside_weight(self) -> float:
        """The soft mask's weight outside the mouth at this point of the calibration stage."""
        share = self.steps / max(self.max_steps, 1)
        return next(weight for until, weight in MASK_SCHEDULE if share < until or until == 1.0)

    def _adversarial(self, fake: torch.Tensor) -> torch.Tensor:
        """The generator's adversarial loss of images (N, 3, S, S)."""
        if isinstance(self.discriminator, Discriminator):
            return g_nonsaturating_loss(self.discriminator(fake))
        return lsgan_loss(self.discriminator(fake), True)

    def _discriminator_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        if isinstance(self.discriminator, Discriminator):
            return d_logistic_loss(self.discriminator(real), self.discriminator(fake))
        return 0.5 * (lsgan_loss(self.discriminator(real), True) + lsgan_loss(self.discriminator(fake), False))

    def _losses(self, p: dict) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Loss terms of the stage and the final images (B, T, 3, S, S)."""
        m, g, ref = self.model, self.generator, p["reference"]
        real = p["targets"].flatten(0, 1)
        b, t = p["targets"].shape[:2]
        video_flow, descriptor = m.video_motion(p["source"], p["coefficients"])
        speech = p["speech"]
        parts: dict[str, torch.Tensor] = {}
        if self.stage == "warp":
            video_image, _ = m.render(g, p["w"], video_flow, descriptor, calibrate=False, reference=ref)
            parts["warp"] = self._image_loss(video_image, real)
            fixed = video_flow.detach()
            audio_flow = m.audio_motion(warp(p["source"], fixed), speech)
            fake, _ = m.render(g, p["w"], compose_flows(fixed, audio_flow), descriptor, calibrate=False,
                               reference=ref)
            parts["mouth"] = self._image_loss(fake, real, soft_mouth_mask(real.shape[-1], 0.0).to(real))
        else:
            flow = compose_flows(video_flow, m.audio_motion(warp(p["source"], video_flow), speech))
            with torch.no_grad():
                warped, _ = m.render(g, p["w"], flow, descriptor, calibrate=False, reference=ref)
            fake, feature = m.render(g, p["w"], flow, descriptor, reference=ref)
            mask = soft_mouth_mask(real.shape[-1], self.outside_weight()).to(real)
            parts["mouth"] = self._image_loss(fake, real, mask)
            parts["regular"] = self._image_loss(fake, warped, 1 - mask)
            parts["domain"] = F.l1_loss(feature, p["target_feature"])
            parts["adversarial"] = self._adversarial(fake)
        fake = fake.view(b, t, *fake.shape[1:])
        if self.syncnet is not None:
            parts["sync"] = self._sync(fake, p["mels"])
        return parts, fake

    def training_step(self, batch: dict, _: int) -> None:
        optimizers = self.optimizers()
        opt_g = optimizers[0] if isinstance(optimizers, list) else optimizers
        p = self._prepare(batch)
        self.discriminator.requires_grad_(False)
        parts, fake = self._losses(p)
        loss = sum(getattr(self.weights, k) * v for k, v in parts.items())
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        opt_g.step()
        logs = {"train_loss": loss.detach(), **{f"train_{k}": v.detach() for k, v in parts.items()}}
        if self.stage == "calibrate":
            opt_d = optimizers[1]  # type: ignore[index]
            self.discriminator.requires_grad_(True)
            d_loss = self._discriminator_loss(p["targets"].flatten(0, 1), fake.detach().flatten(0, 1))
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(d_loss)
            opt_d.step()
            logs["train_disc"] = d_loss.detach()
        self.steps += 1
        self.log_dict(logs, prog_bar=True, batch_size=len(fake))

    def validation_step(self, batch: dict, _: int) -> None:
        p = self._prepare(batch)
        flow, descriptor = self.model.motion(p["source"], p["coefficients"], p["speech"])
        fake, _ = self.model.render(self.generator, p["w"], flow, descriptor, calibrate=self.stage == "calibrate",
                                    reference=p["reference"])
        real = p["targets"].flatten(0, 1)
        self.log_dict({"val_l1": F.l1_loss(fake, real), "val_psnr": psnr(fake, real),
                       "val_source_psnr": psnr(p["source"], real)}, prog_bar=True, batch_size=len(real))

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        m = self.model
        warpers = [*m.video_mapper.parameters(), *m.video_flow.parameters(), *m.audio_mapper.parameters(),
                   *m.audio_flow.parameters()]
        if self.stage == "warp":
            return [torch.optim.Adam(warpers, lr=self.lr, betas=(0.5, 0.999))]
        return [torch.optim.Adam([{"params": list(m.calibrator.parameters())},
                                  {"params": warpers, "lr": self.lr / 10}], lr=self.lr, betas=(0.5, 0.999)),
                torch.optim.Adam(self.discriminator.parameters(), lr=self.lr, betas=(0.0, 0.99))]


class ExpressionModule(L.LightningModule):
    """The mesh path's one stage, ``expression``: the audio mapper and its linear head learn the lower-face
    expression coefficients of real frames from their speech inputs (mean squared error over those coefficients,
    each speaker's offsets from their own rest shape as preprocessing encodes them). The validation also logs
    ``val_still``, the error of a mouth held at rest (all zeros)."""

    def __init__(self, model: StyleHeat, *, lr: float) -> None:
        super().__init__()
        self.model, self.lr, self.steps = model, lr, 0
        lower = torch.from_numpy(default_face_model().lower_face[:model.config.n_expression])
        self.register_buffer("lower", lower, persistent=False)

    def _errors(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(the prediction's, the rest mouth's) mean squared error of a batch's lower-face coefficients."""
        real = batch["expression"].flatten(0, 1)[:, self.lower]
        predicted = self.model.expression(batch["speech"].flatten(0, 1))[:, self.lower]
        return F.mse_loss(predicted, real), real.pow(2).mean()

    def training_step(self, batch: dict, _: int) -> torch.Tensor:
        loss, _ = self._errors(batch)
        self.steps += 1
        self.log("train_expression", loss, prog_bar=True, batch_size=len(batch["speech"]))
        return loss

    def validation_step(self, batch: dict, _: int) -> None:
        loss, still = self._errors(batch)
        self.log_dict({"val_expression": loss, "val_still": still}, prog_bar=True, batch_size=len(batch["speech"]))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.model.parameters(), lr=self.lr)


@torch.no_grad()
def fit_mouth_gain(model: StyleHeat, datasets: list[Path]) -> float:
    """Store in ``model.mouth_gain`` (and return) the factor that gives the lip gap of the predicted lower-face
    coefficients the spread of the real one over the datasets' training clips (each clip's gaps centred; the ratio
    of the pooled standard deviations). The lip gap is nearly linear in the coefficients, so the factor scales its
    spread and hardly moves its correlation with the real gap."""
    face_model = default_face_model()
    spread = np.zeros(2)
    for root in datasets:
        for clip in (load_clip(clip_dir(root, c)) for c in list_clips(root, "train")):
            inputs = torch.from_numpy(clip_speech_inputs(model.config.speech, clip)).float()
            predicted = model.eval().expression(inputs).numpy()
            for i, coefficients in enumerate((clip.expression[:, :model.config.n_expression], predicted)):
                gap = face_model.lower_face_gap(clip.neutral, coefficients)
                spread[i] += ((gap - gap.mean()) ** 2).sum()
    if spread[1] <= 0:
        raise ValueError("the mouth gain needs training clips whose predicted mouth moves")
    model.mouth_gain.fill_(float(np.sqrt(spread[0] / spread[1])))
    return float(model.mouth_gain)


def mesh_attributes(canonical: np.ndarray) -> dict[str, np.ndarray]:
    """Per-frame attributes of pose-free meshes (T, 478, 3), in eye-corner distances: "smile" the mouth-corner
    width, "mouth_open" the mean inner-lip gap."""
    eyes = np.linalg.norm(canonical[:, OUTER_EYE_CORNERS[0]] - canonical[:, OUTER_EYE_CORNERS[1]], axis=-1)
    width = np.linalg.norm(canonical[:, MOUTH_CORNERS[0]] - canonical[:, MOUTH_CORNERS[1]], axis=-1)
    gap = np.linalg.norm(canonical[:, INNER_LIP_PAIRS[:, 0]] - canonical[:, INNER_LIP_PAIRS[:, 1]], axis=-1).mean(1)
    return {"smile": width / eyes, "mouth_open": gap / eyes}


def labelled_direction(codes: torch.Tensor, values: torch.Tensor, *, ridge: float = 1.0
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """(unit direction (w_dim,), the codes' standard deviation along it) of the attribute ``values`` (N,) over codes
    (N, w_dim): the normal of the ridge regression of the standardised attribute on the centred codes (the
    continuous counterpart of InterFaceGAN's separating hyperplane)."""
    x = codes - codes.mean(0)
    y = (values - values.mean()) / values.std().clamp_min(1e-8)
    beta = torch.linalg.solve(x.T @ x + ridge * torch.eye(x.shape[1]), x.T @ y)
    direction = beta / beta.norm().clamp_min(1e-12)
    return direction, (x @ direction).std()


def attribute_offset(coefficients: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """(K,) the expression coefficients (N, K) that go with a rise of the attribute ``values`` (N,) by one standard
    deviation: the regression of the coefficients on the attribute, Cov(c, a) / std(a) (the mean change of the face
    when the attribute changes, so an edit moves the rest of the face as real faces move it)."""
    c, a = coefficients - coefficients.mean(0), values - values.mean()
    return c.T @ a / max(len(a) - 1, 1) / a.std().clamp_min(1e-12)


@torch.no_grad()
def fill_edit_directions(model: StyleHeat, generator: Generator, encoder: Encoder, datasets: list[Path], *,
                         frames: int = 2000, seed: int = 0) -> dict[str, float]:
    """Store the edit directions of :data:`EDIT_NAMES` in ``model`` (its config must name them): the labelled ones
    from up to ``frames`` training frames (encoder codes averaged over the edited W+ vectors, attributes of their
    meshes, both centred per clip, so that a direction follows a face's own changes and not the differences
    between speakers), the GANSpace ones from the generator's mapping. Constant path: labelled edits move all of
    W+, GANSpace ones its first half. Feature path: every edit moves the motion latents (the codes' flow then
    moves the reference's face; the other vectors only texture it), and GANSpace, with no mapping to sample, takes
    the principal components of those same centred codes. Mesh flows: every edit also moves the face mesh
    (``edit_expressions``): a labelled one by the expression coefficients that go with one standard deviation of
    its attribute (:func:`attribute_offset`, the frames' coefficients centred per clip too); the unlabelled ones
    are the principal components of those coefficients (one standard deviation each), and their code directions
    are fitted, as the labelled ones, on their scores. Returns each labelled direction's correlation with its
    attribute on those frames."""
    from talkinghead.render.stylegan.infer import encode_crops

    if model.config.edit_names != EDIT_NAMES:
        raise ValueError(f"the model's edits must be {EDIT_NAMES}")
    clips = [load_clip(clip_dir(root, c)) for root in datasets for c in list_clips(root, "train")]
    clips = [c for c in clips if len(c.canonical)]
    if not clips:
        raise ValueError("edit directions need training clips with their meshes")
    rng = np.random.default_rng(seed)
    per_clip = max(1, frames // len(clips))
    g, k = generator.config, model.config.n_expression
    layers = g.motion_latents if g.feature_path else g.n_latents
    codes, expressions, attrs = [], [], {name: [] for name in LABELLED_EDITS}
    for clip in clips:  # each clip centred: the directions follow changes within a face, not between faces
        pick = np.sort(rng.choice(clip.n_frames, min(per_clip, clip.n_frames), replace=False))
        w = encode_crops(encoder, clip.frames(pick))[:, :layers].mean(1)
        codes.append(w - w.mean(0))
        e = clip.expression[pick, :k].astype(np.float32)
        expressions.append(torch.from_numpy(e - e.mean(0)))
        for name, v in mesh_attributes(clip.canonical[pick]).items():
            attrs[name].append(torch.from_numpy(v - v.mean()).float())
    x, e = torch.cat(codes), torch.cat(expressions)
    mesh = model.config.flows == "mesh"
    fit_quality = {}
    for i, name in enumerate(LABELLED_EDITS):
        y = torch.cat(attrs[name])
        direction, std = labelled_direction(x, y)
        model.edit_directions[i], model.edit_stds[i] = direction, std
        model.edit_layers[i] = torch.tensor([0, layers])
        fit_quality[name] = float(torch.corrcoef(torch.stack([x @ direction, y]))[0, 1])
        if mesh:
            model.edit_expressions[i] = attribute_offset(e, y)
    if mesh:
        pca = principal_components(e, PCA_EDITS)
        for j in range(PCA_EDITS):
            i = len(LABELLED_EDITS) + j
            model.edit_directions[i], model.edit_stds[i] = labelled_direction(x, e @ pca.components[j])
            model.edit_expressions[i] = pca.components[j] * pca.stds[j]
            model.edit_layers[i] = torch.tensor([0, layers])
        return fit_quality
    if g.feature_path:
        pca, pca_layers = principal_components(x, PCA_EDITS), layers
    else:
        pca, pca_layers = principal_directions(generator, k=PCA_EDITS, seed=seed), g.n_latents // 2
    for j in range(PCA_EDITS):
        i = len(LABELLED_EDITS) + j
        model.edit_directions[i], model.edit_stds[i] = pca.components[j], pca.stds[j]
        model.edit_layers[i] = torch.tensor([0, pca_layers])
    return fit_quality


def train_styleheat(datasets: list[Path], output: Path, *, stylegan: Path | None, syncnet: Path | None,
                    config: StyleHeatConfig, warp_steps: int, calibrate_steps: int, expression_steps: int = 0,
                    batch: int = 4, frames: int = 12, lr: float = 1e-4, stage_minutes: float | None = None,
                    direction_frames: int = 2000, workers: int = 0, seed: int = 0, accelerator: str = "auto",
                    devices: int | str = "auto", nodes: int = 1, quiet: bool = False) -> dict[str, dict[str, float]]:
    """Train on the datasets' train splits (validated on val) with the generator and encoder of the
    ``train-stylegan`` folder ``stylegan`` (None: the shipped feature-path ones), then store the edit directions;
    the config takes the generator's sizes (on the feature path the flows warp the encoder's map at the generator's
    input resolution). Network flows: both of StyleHEAT's stages, with an image SyncNet (``syncnet``, optional: its
    loss is left out without it); a stage given 0 steps is skipped (``calibrate`` alone continues from ``output``).
    Mesh flows: the ``expression`` stage alone (:class:`ExpressionModule`; windows of ``frames`` frames; that path
    has no calibration network). Saves ``output``."""
    if config.flows == "mesh":  # the stages of the other flows are refused before any loading
        if syncnet is not None:
            raise TalkingHeadError("--flows mesh takes no --syncnet (no image is drawn in its training)")
        if warp_steps or calibrate_steps or not expression_steps:
            raise TalkingHeadError("--flows mesh trains the expression stage alone: give --expression-steps, not "
                                   "--warp-steps or --calibrate-steps")
    elif expression_steps:
        raise TalkingHeadError("--expression-steps belongs to --flows mesh")
    L.seed_everything(seed, workers=True, verbose=False)
    if stylegan is None:
        generator, encoder = Generator.default(), Encoder.default()
    else:
        generator, encoder = Generator.load(stylegan / "generator.pt"), Encoder.load(stylegan / "encoder.pt")
    g = generator.config
    sync = SyncNet.load(syncnet) if syncnet is not None else None
    if sync is not None and frames < sync.config.frames + 5:
        raise ValueError(f"the sync loss needs windows of at least {sync.config.frames + 5} frames, not {frames}")
    r = g.input_resolution if g.feature_path else min(config.warp_resolution, g.size // 2)
    config = replace(config, flow_input=min(config.flow_input, g.size), warp_resolution=r,
                     feature_channels=g.channels_at(r), n_latents=g.n_latents, w_dim=g.w_dim,
                     mel_frames=sync.config.mel_frames if sync else config.mel_frames, edit_names=list(EDIT_NAMES))
    if config.flows == "mesh":
        return _train_mesh_path(datasets, output, generator, encoder, config, steps=expression_steps, batch=batch,
                                frames=frames, lr=lr, seed=seed, direction_frames=direction_frames,
                                run={"workers": workers, "accelerator": accelerator, "devices": devices,
                                     "nodes": nodes, "quiet": quiet, "max_minutes": stage_minutes},
                                stylegan=stylegan)
    discriminator = MultiScaleDiscriminator(channels=config.base_channels, layers=3, scales=1) if g.feature_path \
        else Discriminator.load(stylegan / "discriminator.pt").train()  # type: ignore[operator]
    if warp_steps:
        model = StyleHeat(config)
    else:
        model = StyleHeat.load(output)
        if model.config != config:
            raise ValueError(f"{output} was trained with another configuration or generator")
    kw = {"window": frames + 2 * config.radius, "references": 1, "speech": config.speech}
    train = WindowDataset(datasets, "train", stride=max(frames // 2, 1), seed=seed, **kw)
    val = WindowDataset(datasets, "val", seed=seed + 1, **kw)
    run = {"batch": batch, "workers": workers, "accelerator": accelerator, "devices": devices, "nodes": nodes,
           "quiet": quiet, "max_minutes": stage_minutes}
    metrics: dict[str, dict[str, float]] = {}
    steps: dict[str, int] = {}
    for stage, n in (("warp", warp_steps), ("calibrate", calibrate_steps)):
        if n:
            module = StyleHeatModule(model, generator, encoder, discriminator, sync, stage=stage, max_steps=n, lr=lr)
            metrics[stage] = fit(module, train, val, max_steps=n * (2 if stage == "calibrate" else 1), **run)
            steps[stage] = module.steps
    metrics["edits"] = fill_edit_directions(model, generator, encoder, datasets, frames=direction_frames, seed=seed)
    model.save(output, metrics=metrics, steps=steps, datasets=[str(d) for d in datasets],
               stylegan=str(stylegan) if stylegan else shipped_models(),
               syncnet=str(syncnet) if syncnet else None,
               training={"batch": batch, "frames": frames, "lr": lr, "seed": seed, "config": asdict(config),
                         "weights": asdict(StyleHeatLossWeights())})
    return metrics


def _train_mesh_path(datasets: list[Path], output: Path, generator: Generator, encoder: Encoder,
                     config: StyleHeatConfig, *, steps: int, batch: int, frames: int, lr: float, seed: int,
                     direction_frames: int, run: dict, stylegan: Path | None) -> dict[str, dict[str, float]]:
    """:func:`train_styleheat` with mesh flows: the expression stage, the mouth gain, then the edit directions."""
    model = StyleHeat(config)
    kw = {"window": frames, "frames": False, "speech": config.speech}
    module = ExpressionModule(model, lr=lr)
    metrics = {"expression": fit(module, WindowDataset(datasets, "train", seed=seed, **kw),
                                 WindowDataset(datasets, "val", seed=seed + 1, **kw), max_steps=steps, batch=batch,
                                 **run)}
    metrics["mouth_gain"] = {"gain": fit_mouth_gain(model, datasets)}
    metrics["edits"] = fill_edit_directions(model, generator, encoder, datasets, frames=direction_frames, seed=seed)
    model.save(output, metrics=metrics, steps={"expression": module.steps}, datasets=[str(d) for d in datasets],
               stylegan=str(stylegan) if stylegan else shipped_models(), syncnet=None,
               training={"batch": batch, "frames": frames, "lr": lr, "seed": seed, "config": asdict(config)})
    return metrics


def _arguments(th: argparse.ArgumentParser) -> None:
    training_options(th)
    generator_training_inputs(th, shipped=True)
    th.add_argument("--config", choices=("tiny", "cpu", "small", "paper"), default="small",
                    help="sizes: tiny (tests), cpu (64 px generator), small (128 px), paper (StyleHEAT's; GPUs)")
    th.add_argument("--speech", choices=SPEECH_INPUTS, default="mel",
                    help="the audio mapper's input: mel windows (the paper), phone one-hots or Whisper tiny.en encoder "
                         "features (whisper: the last layer; whisper3: the third block) (default: mel)")
    th.add_argument("--flows", choices=FLOWS, default="mesh",
                    help="mesh: flows drawn from the photo's face mesh, the audio mapper trained on the meshes' "
                         "lower-face coefficients (ours; what a CPU can train); network: StyleHEAT's motion "
                         "generators and calibration, trained on images (GPUs) (default: mesh)")
    th.add_argument("--expression-steps", type=int, default=None,
                    help="mesh flows: steps of the expression stage (default: 600)")
    th.add_argument("--warp-steps", type=int, default=None,
                    help="network flows: steps of the warp stage (0: skip it and continue the model in --output; "
                         "default: 5000)")
    th.add_argument("--calibrate-steps", type=int, default=None,
                    help="network flows: steps of the calibration stage (default: 5000)")
    th.add_argument("--batch", type=int, default=4)
    th.add_argument("--frames", type=int, default=12,
                    help="target frames per item (default: 12; at least 10 for sync)")
    th.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (default: 1e-4)")
    th.add_argument("--stage-minutes", type=float, default=None, help="stop each stage after this many minutes")


def _steps(given: int | None, default: int) -> int:
    """A stage's steps: as given, else the default of the chosen flows (a stage of the other flows, when given,
    is refused by :func:`train_styleheat`)."""
    return default if given is None else given


def _run(args: argparse.Namespace) -> int:
    return print_metrics(train_styleheat(
        args.datasets, args.output, stylegan=args.stylegan, syncnet=args.syncnet,
        config=replace(STYLEHEAT_CONFIGS[args.config], speech=args.speech, flows=args.flows),
        warp_steps=_steps(args.warp_steps, 5000 if args.flows == "network" else 0),
        calibrate_steps=_steps(args.calibrate_steps, 5000 if args.flows == "network" else 0),
        expression_steps=_steps(args.expression_steps, 600 if args.flows == "mesh" else 0), batch=args.batch,
        frames=args.frames,
        lr=args.lr, stage_minutes=args.stage_minutes, workers=args.workers, devices=parse_devices(args.devices),
        nodes=args.nodes, quiet=args.quiet))


COMMAND = Command(
    description="StyleHEAT with PyTorch Lightning: with --flows mesh (the default) its audio mapper learns the "
                "lower-face expression of real frames (the flows are then drawn from the photo's mesh); with --flows "
                "network its video- and audio-driven motion generators and calibration network, in two stages (warp, "
                "then calibrate), on windows of the datasets' train splits, with the "
                "generator and encoder of a train-stylegan folder (default: the shipped feature-path ones) and an "
                "image SyncNet for the sync loss; then the edit directions (smile, mouth_open from the meshes; "
                "pc0..pc3 from GANSpace).",
    arguments=_arguments, run=_run)
