"""StyleHEAT (Yin et al., ECCV 2022): talking faces by warping the feature maps of a trained style-based generator.

The photo is inverted once into W+ (fixed for the whole video). For every frame:

- the **video-driven motion generator** maps a window of the driving video's coefficients (expression + head
  rotation, 2 radius + 1 frames) to a descriptor (1-D convolutions, averaged over time), and an AdaIN hourglass
  over the generator's image of the photo turns it into a flow field at ``warp_resolution`` (PIRenderer's
  warping network, which StyleHEAT adopts);
- the **audio-driven motion generator** maps the frame's 0.2 s mel window to a descriptor by an MLP that first
  squeezes the time axis, and a second AdaIN hourglass over the video-warped image gives a flow of the lower face;
- the two flows are composed (video, then audio) and warp the generator's feature map at that resolution
  (:meth:`talkinghead.render.stylegan.model.Generator.forward`), after which the rest of the generator runs with
  the fixed code;
- the **calibration network**, a small U-Net over the warped feature map with the video descriptor injected by
  AdaIN, predicts a per-pixel scale and shift of it that repair warping artifacts (disocclusions, the inside of
  the mouth). Its output layers start at zero: an untrained calibration leaves the warped feature unchanged, and
  the flow heads also start at zero, so an untrained model reproduces the generator's image of the code.

With ``config.flows = "mesh"`` (ours; the shipped model) no hourglass is built: the flows are drawn from the photo's
face mesh (:mod:`talkinghead.motion.styleheat.flows`), moved by the driving video's head pose and upper face and by
the lower-face expression coefficients that the audio mapper, with a linear head, predicts from the speech
(:meth:`StyleHeat.expression`), trained on the meshes of real clips. The hourglasses need far more steps than a CPU
gives them (README: StyleHEAT).

Our differences (the paper's modules are larger; these are stated in the README): the calibration predicts an
SFT-style scale and shift of the warped map only (StyleHEAT's also conditions its finer layers), and the audio
warper reads the video-warped *image* warped directly by the video flow (no extra generator pass).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from talkinghead.motion.styleheat.config import StyleHeatConfig
from talkinghead.nn.checkpoint import CheckpointModel
from talkinghead.nn.encoders import speech_encoder
from talkinghead.nn.layers import AdaIN, compose_flows, warp
from talkinghead.render.stylegan.model import Generator, Reference


class CoefficientMapper(nn.Module):
    """Coefficient windows (B, W, n_coefficients) -> descriptor (B, D): a 1-D convolution of width 7, then residual
    dilated convolutions (LeakyReLU), averaged over the window (PIRenderer's mapping network, padded so any window
    length works)."""

    def __init__(self, c: StyleHeatConfig) -> None:
        super().__init__()
        d = c.descriptor
        self.first = nn.Conv1d(c.n_coefficients, d, 7, padding=3)
        self.layers = nn.ModuleList(nn.Sequential(nn.LeakyReLU(0.1), nn.Conv1d(d, d, 3, padding=3, dilation=3))
                                    for _ in range(c.mapping_layers))

    def forward(self, coefficients: torch.Tensor) -> torch.Tensor:
        x = self.first(coefficients.transpose(1, 2))
        for layer in self.layers:
            x = layer(x) + x
        return x.mean(-1)


class AudioMapper(nn.Module):
    """Mel windows (B, mel_frames, mel_bins) -> descriptor (B, D): a linear layer squeezes the time axis to one
    frame, then a residual MLP."""

    def __init__(self, c: StyleHeatConfig) -> None:
        super().__init__()
        d = c.descriptor
        self.squeeze = nn.Linear(c.mel_frames, 1)
        self.first = nn.Linear(c.mel_bins, d)
        self.layers = nn.ModuleList(nn.Sequential(nn.LeakyReLU(0.1), nn.Linear(d, d)) for _ in range(c.mapping_layers))

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        x = self.first(self.squeeze(mels.transpose(1, 2))[..., 0])
        for layer in self.layers:
            x = layer(x) + x
        return x


class FlowHourglass(nn.Module):
    """image (B, 3, S, S) + descriptor (B, D) -> flow (B, 2, r, r) in pixels of r (the image is resized to
    ``flow_input`` first): ``down_layers`` stride-2
    convolutions, then upsampling blocks (nearest x2, 3x3 conv, AdaIN of the descriptor, LeakyReLU, plus the
    encoder's map of that size) up to r, and a 7x7 flow head initialised to zero."""

    def __init__(self, c: StyleHeatConfig) -> None:
        super().__init__()
        widths = [min(c.base_channels * 2**i, c.max_channels) for i in range(c.down_layers + 1)]
        self.stem = nn.Conv2d(3, widths[0], 3, 1, 1)
        self.down = nn.ModuleList(nn.Sequential(nn.Conv2d(widths[i], widths[i + 1], 4, 2, 1), nn.LeakyReLU(0.1))
                                  for i in range(c.down_layers))
        ups = (c.warp_resolution // (c.flow_input >> c.down_layers)).bit_length() - 1
        self.up = nn.ModuleList(nn.Conv2d(widths[c.down_layers - i], widths[c.down_layers - i - 1], 3, 1, 1)
                                for i in range(ups))
        self.norms = nn.ModuleList(AdaIN(widths[c.down_layers - i - 1], c.descriptor) for i in range(ups))
        top = widths[c.down_layers - ups]
        self.head = nn.Conv2d(top, 2, 7, 1, 3)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.size = c.flow_input

    def forward(self, image: torch.Tensor, descriptor: torch.Tensor) -> torch.Tensor:
        if image.shape[-1] != self.size:
            image = F.interpolate(image, size=(self.size, self.size), mode="bilinear", align_corners=False,
                                  antialias=image.shape[-1] > self.size)
        x = F.leaky_relu(self.stem(image), 0.1)
        skips = []
        for down in self.down:
            skips.append(x)
            x = down(x)
        for conv, norm in zip(self.up, self.norms):
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            x = F.leaky_relu(norm(conv(x), descriptor), 0.1) + skips.pop()
        return self.head(x)


class Calibrator(nn.Module):
    """warped feature map (B, C, r, r) + descriptor (B, D) -> the calibrated map F (1 + scale) + shift: a U-Net of
    ``calibration_levels`` stride-2 levels, AdaIN of the descriptor on its decoder, and scale / shift heads
    initialised to zero."""

    def __init__(self, c: StyleHeatConfig) -> None:
        super().__init__()
        w, levels = c.calibration_channels, c.calibration_levels
        self.stem = nn.Conv2d(c.feature_channels, w, 3, 1, 1)
        self.down = nn.ModuleList(nn.Conv2d(w, w, 4, 2, 1) for _ in range(levels))
        self.up = nn.ModuleList(nn.Conv2d(w, w, 3, 1, 1) for _ in range(levels))
        self.norms = nn.ModuleList(AdaIN(w, c.descriptor) for _ in range(levels))
        self.scale, self.shift = nn.Conv2d(w, c.feature_channels, 3, 1, 1), nn.Conv2d(w, c.feature_channels, 3, 1, 1)
        for head in (self.scale, self.shift):
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)

    def forward(self, feature: torch.Tensor, descriptor: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.stem(feature), 0.2)
        skips = []
        for down in self.down:
            skips.append(x)
            x = F.leaky_relu(down(x), 0.2)
        for conv, norm in zip(self.up, self.norms):
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            x = F.leaky_relu(norm(conv(x), descriptor), 0.2) + skips.pop()
        return feature * (1 + self.scale(x)) + self.shift(x)


def coefficient_features(expression: torch.Tensor, rotation: torch.Tensor) -> torch.Tensor:
    """Per-frame video-descriptor inputs (..., n_expression + 9): expression coefficients (..., K) and the head
    rotation matrices (..., 3, 3) flattened."""
    return torch.cat([expression, rotation.flatten(-2)], -1)


class StyleHeat(CheckpointModel):
    """The video- and audio-driven motion generators, the calibration network and the edit directions.

    ``edit_directions`` (A, w_dim) unit vectors with ``edit_stds`` (A,) (the spread of the codes along each) and
    ``edit_layers`` (A, 2) the range of W+ vectors each moves; names in ``config.edit_names``. With mesh flows,
    ``edit_expressions`` (A, n_expression): the expression coefficients one unit of each edit adds to the mesh."""

    config_class = StyleHeatConfig
    default_checkpoint = Path(__file__).parent / "assets" / "styleheat_v3.pt"
    """The shipped model (on the shipped feature-path generator; its data card ``styleheat_v3.json`` beside it)."""

    def __init__(self, config: StyleHeatConfig) -> None:
        super().__init__()
        self.config = c = config
        if c.flows == "network":
            self.video_mapper, self.video_flow = CoefficientMapper(c), FlowHourglass(c)
        self.audio_mapper = AudioMapper(c) if c.speech == "mel" else speech_encoder(c.speech, c.descriptor)
        if c.flows == "network":
            self.audio_flow = FlowHourglass(c)
            self.calibrator = Calibrator(c)
        else:  # no calibration either: it learns on images, which this path never draws in training
            self.audio_expression = nn.Sequential(nn.LeakyReLU(0.1), nn.Linear(c.descriptor, c.n_expression))
            # the factor on the predicted lower-face coefficients that gives the mouth the real one's spread,
            # fitted on the training clips after training (a regressor on squared error opens it too little)
            self.register_buffer("mouth_gain", torch.ones(()))
        a = len(c.edit_names)
        if c.flows == "mesh":  # each edit also moves the face mesh (the flows then reshape the photo's face)
            self.register_buffer("edit_expressions", torch.zeros(a, c.n_expression))
        self.register_buffer("edit_directions", torch.zeros(a, c.w_dim))
        self.register_buffer("edit_stds", torch.ones(a))
        self.register_buffer("edit_layers", torch.tensor([[0, c.n_latents]] * a, dtype=torch.long).view(a, 2))
        rows = torch.arange(c.warp_resolution, dtype=torch.float32)
        self.register_buffer("lower_face", (rows >= c.mouth_from * c.warp_resolution).float()[:, None],
                             persistent=False)

    def expression(self, speech: torch.Tensor) -> torch.Tensor:
        """The mesh path's audio-driven motion: expression coefficients (B, n_expression) (offsets from the
        speaker's rest shape, as preprocessing encodes real clips) of speech inputs (B, ...); only the lower-face
        ones are trained and used (times ``mouth_gain``, in
        :func:`talkinghead.motion.styleheat.infer.mesh_motion`)."""
        return self.audio_expression(self.audio_mapper(speech))

    def video_motion(self, source: torch.Tensor, coefficients: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(flow (B, 2, r, r), descriptor (B, D)) of the source images (B, 3, S, S) in [-1, 1] driven by
        coefficient windows (B, 2 radius + 1, n_coefficients)."""
        descriptor = self.video_mapper(coefficients)
        return self.video_flow(source, descriptor), descriptor

    def audio_motion(self, source: torch.Tensor, speech: torch.Tensor) -> torch.Tensor:
        """Lower-face flow (B, 2, r, r) (zero above ``mouth_from``) of source images (B, 3, S, S) driven by speech
        inputs (B, ...): mel windows (B, mel_frames, mel_bins), or ``config.speech``'s."""
        return self.audio_flow(source, self.audio_mapper(speech)) * self.lower_face

    def motion(self, source: torch.Tensor, coefficients: torch.Tensor | None, speech: torch.Tensor | None
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(flow, video descriptor or None) driven by the video (``coefficients``), the audio (``speech``) or both
        (the audio flow is predicted on the video-warped image and applied after the video flow). ``source`` may be
        one image (1, 3, S, S) for all the drivers: the hourglasses then encode it once."""
        if coefficients is None and speech is None:
            raise ValueError("StyleHEAT needs a driving video, audio or both")
        c, b = self.config, len(coefficients if coefficients is not None else speech)
        flow, descriptor = source.new_zeros(b, 2, c.warp_resolution, c.warp_resolution), None
        if coefficients is not None:
            flow, descriptor = self.video_motion(source, coefficients)
        if speech is not None:
            moved = warp(source.expand(b, -1, -1, -1), flow) if descriptor is not None else source
            flow = compose_flows(flow, self.audio_motion(moved, speech))
        return flow, descriptor

    def calibration(self, descriptor: torch.Tensor | None, batch: int) -> Callable[[torch.Tensor], torch.Tensor]:
        """The calibration of warped feature maps (B, C, r, r) (the descriptor of audio-only driving is zero)."""
        d = descriptor if descriptor is not None else torch.zeros(batch, self.config.descriptor,
                                                                  device=self.edit_stds.device)
        return lambda feature: self.calibrator(feature, d)

    def render(self, generator: Generator, w_plus: torch.Tensor, flow: torch.Tensor,
               descriptor: torch.Tensor | None, *, calibrate: bool = True, reference: Reference | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """(images (B, 3, S, S), the warped (and calibrated) feature map (B, C, r, r)) of codes W+ (B, L, w_dim)
        with the generator's feature map at r warped by ``flow`` (deterministic: no per-pixel noise); on the
        feature path that map is the ``reference``'s input map (r = the input resolution); mesh flows have no
        calibration."""
        fix = self.calibration(descriptor, len(w_plus)) if calibrate and self.config.flows == "network" else None
        return generator(w_plus, noise="none", features=flow.shape[-1], flow=flow, calibrate=fix,
                         reference=reference)
