"""StyleTalker (Min et al., 2022) on the style-based generator: the latent motion of a talking head.

A video is a sequence of W+ codes w_1..T of the generator; StyleTalker writes each as the reference photo's
code w_ref moved by the audio and by a motion latent z_t. Following the paper's text (Sec. 3.3, Eqs. 5-11, and
its appendix A.2-A.3):

- audio encoder: a ResNet with squeeze-and-excitation over each frame's 0.2 s mel window -> a_t; each block
  takes its own audio vectors through a fully connected layer;
- per manipulated style vector l (the first half of W+), a StyleTalker block:
  posterior encoder q(z^l_t | a_<=t, w^l_<=t) (Eq. 6): two fully connected layers (LeakyReLU, Tanh) on w^l_t,
  concatenated with the block's audio vectors, an LSTM and a fully connected layer -> (mu, log sigma);
  smoothing module (Eq. 10): c_t = LeakyReLU(Conv1D(GaussianSmooth1D([a_t, z_t])));
  two-way manipulation (Eq. 11): c'_t = sigmoid(K1(w_ref)) c_t + K2(w_ref);
  w^_t = sigmoid(K3(c'_t)) w_ref + K4(c'_t), K1..K4 linear;
  prior (Eqs. 7-8): a first LSTM over the style vector of the first frame w_0 (the reference's at inference)
  gives p(z_0 | w_0) and the initial state of a second, autoregressive LSTM over [z_{t-1}, a_t]; its Gaussians
  live on the base side of a volume-preserving normalizing flow (actnorm + LSTM affine couplings,
  :class:`talkinghead.nn.flows.SequenceFlow`, conditioned on the audio), so log p(z) = log N(f^-1(z); mu, sigma)
  exactly (log-det 0). The KL (Eq. 9) is the sample estimate log q(z) - log p(z), per block.

Audio-driven generation samples z from the prior; motion-controllable generation takes z from the posterior of
another video (its head motion and blinks on our face, lips from the new audio).

At inference (our additions) the decoded codes' offset from the reference along the mouth direction can take its
changes over time from a linear map of the speech (``config.mouth_window``, :meth:`StyleTalker.speak_mouth`), and
is then multiplied by ``config.mouth_gain`` (:meth:`StyleTalker.exaggerate_mouth`).

Where the text is silent we chose: z of ``z_dim`` per block; the first LSTM reads w_0 as a one-step sequence; the
autoregressive LSTM reads the previous latent on the flow's base side (where its Gaussians are); K3 starts at a
bias of 4 and K4 at zero, so an untrained block gives w^_t = sigmoid(4) w_ref (0.98 w_ref).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from talkinghead.audio.speech import CONTEXT, input_shape
from talkinghead.motion.styletalker.config import StyleTalkerConfig
from talkinghead.nn.checkpoint import CheckpointModel
from talkinghead.nn.encoders import PerFrame, speech_encoder
from talkinghead.nn.flows import SequenceFlow

LOG_2PI = math.log(2 * math.pi)


class _SEResidual(nn.Module):
    """Residual block (two 3x3 convs, batch norm) with squeeze-and-excitation channel gates."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                                  nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.gate = nn.Sequential(nn.Linear(cout, max(cout // 4, 4)), nn.ReLU(), nn.Linear(max(cout // 4, 4), cout),
                                  nn.Sigmoid())
        self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)) \
            if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        y = y * self.gate(y.mean((2, 3)))[:, :, None, None]
        return F.relu(y + self.short(x))


class AudioEncoder(nn.Module):
    """mel windows (B, T, mel_frames, n_mels) -> (B, T, audio_dim)."""

    def __init__(self, config: StyleTalkerConfig) -> None:
        super().__init__()
        c = config.audio_channels
        self.stem = nn.Sequential(nn.Conv2d(1, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU())
        self.blocks = nn.Sequential(_SEResidual(c, c, 1), _SEResidual(c, 2 * c, 2), _SEResidual(2 * c, 4 * c, 2),
                                    _SEResidual(4 * c, 4 * c, 2))
        self.out = nn.Linear(4 * c, config.audio_dim)

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        b, t = mels.shape[:2]
        x = self.blocks(self.stem(mels.reshape(b * t, 1, *mels.shape[2:]) / 4.0))
        return self.out(x.mean((2, 3))).view(b, t, -1)


def gaussian_smooth(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Smooth (B, T, C) over time with a Gaussian of ``sigma`` frames (edges replicated); sigma 0 is identity."""
    if sigma <= 0:
        return x
    radius = max(1, int(math.ceil(3 * sigma)))
    k = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype) / sigma) ** 2)
    k = (k / k.sum()).expand(x.shape[-1], 1, -1)
    padded = F.pad(x.transpose(1, 2), (radius, radius), mode="replicate")
    return F.conv1d(padded, k, groups=x.shape[-1]).transpose(1, 2)


K3_BIAS = 4.0
"""K3's initial bias: sigmoid(4) = 0.98, so an untrained block nearly keeps w_ref."""


class BlockPrior(nn.Module):
    """p(z_0..T | a, w_0) of one block (Eqs. 7-8): see the module docstring."""

    def __init__(self, config: StyleTalkerConfig) -> None:
        super().__init__()
        c = config
        self.first = nn.LSTM(c.w_dim, c.prior_hidden, batch_first=True)
        self.first_out = nn.Linear(c.prior_hidden, 2 * c.z_dim)
        self.rnn = nn.LSTM(c.z_dim + c.audio_features, c.prior_hidden, batch_first=True)
        self.out = nn.Linear(c.prior_hidden, 2 * c.z_dim)
        self.flow = SequenceFlow(c.z_dim, c.audio_features, c.flow_hidden, c.flow_steps)
        self.dim = c.z_dim

    @staticmethod
    def _gaussian(out: nn.Linear, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_sigma = out(h).chunk(2, -1)
        return mu, log_sigma.clamp(-7.0, 2.0)

    def _start(self, w_first: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """(mu_0, log sigma_0) (B, 1, z_dim) of p(z_0 | w_0) and the autoregressive LSTM's initial state."""
        h, state = self.first(w_first[:, None])
        return *self._gaussian(self.first_out, h), state

    def log_prob(self, z: torch.Tensor, audio: torch.Tensor, w_first: torch.Tensor) -> torch.Tensor:
        """log p(z) per frame (B, T) of latents (B, T, z_dim) given the block's audio (B, T, A) and w_0 (B, w_dim)."""
        u = self.flow.inverse(z, audio)
        mu0, ls0, state = self._start(w_first)
        h, _ = self.rnn(torch.cat([u[:, :-1], audio[:, 1:]], -1), state)
        mu, log_sigma = self._gaussian(self.out, h)
        mu, log_sigma = torch.cat([mu0, mu], 1), torch.cat([ls0, log_sigma], 1)
        return (-0.5 * ((u - mu) / log_sigma.exp()) ** 2 - log_sigma - 0.5 * LOG_2PI).sum(-1)

    @torch.no_grad()
    def sample(self, audio: torch.Tensor, w_first: torch.Tensor, *, temperature: float = 1.0,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Latents (B, T, z_dim) drawn frame by frame on the base side, then mapped through the flow."""
        mu, log_sigma, state = self._start(w_first)
        us = []
        for i in range(audio.shape[1]):
            if i:
                h, state = self.rnn(torch.cat([us[-1], audio[:, i:i + 1]], -1), state)
                mu, log_sigma = self._gaussian(self.out, h)
            noise = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
            us.append(mu + temperature * log_sigma.exp() * noise)
        return self.flow(torch.cat(us, 1), audio)


class StyleTalkerBlock(nn.Module):
    """One manipulated style vector: posterior encoder, smoothing module, two-way manipulation (Eq. 11) and
    prior with its flow."""

    def __init__(self, config: StyleTalkerConfig) -> None:
        super().__init__()
        c = config
        self.sigma = c.smoothing_sigma
        self.audio_in = nn.Linear(c.audio_dim, c.audio_features)
        self.w_in = nn.Sequential(nn.Linear(c.w_dim, c.hidden), nn.LeakyReLU(0.2),
                                  nn.Linear(c.hidden, c.w_features), nn.Tanh())
        self.posterior_rnn = nn.LSTM(c.w_features + c.audio_features, c.hidden, batch_first=True)
        self.posterior_out = nn.Linear(c.hidden, 2 * c.z_dim)
        self.smooth_conv = nn.Conv1d(c.z_dim + c.audio_features, c.hidden, 3, 1, 1)
        self.k1, self.k2 = nn.Linear(c.w_dim, c.hidden), nn.Linear(c.w_dim, c.hidden)
        self.k3, self.k4 = nn.Linear(c.hidden, c.w_dim), nn.Linear(c.hidden, c.w_dim)
        for k, bias in ((self.k3, K3_BIAS), (self.k4, 0.0)):
            nn.init.zeros_(k.weight)
            nn.init.constant_(k.bias, bias)
        self.prior = BlockPrior(config)

    def posterior(self, w: torch.Tensor, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, log sigma) (B, T, z_dim) of the frames' style vectors w (B, T, w_dim) given the block's audio
        vectors (B, T, audio_features)."""
        h, _ = self.posterior_rnn(torch.cat([self.w_in(w), audio], -1))
        mu, log_sigma = self.posterior_out(h).chunk(2, -1)
        return mu, log_sigma.clamp(-7.0, 2.0)

    def forward(self, z: torch.Tensor, audio: torch.Tensor, w_ref: torch.Tensor) -> torch.Tensor:
        """Style vectors (B, T, w_dim) of this layer from motion latents (B, T, z_dim), the block's audio vectors
        (B, T, audio_features) and w_ref (B, w_dim): Eqs. 10 and 11."""
        c = gaussian_smooth(torch.cat([audio, z], -1), self.sigma)
        c = F.leaky_relu(self.smooth_conv(c.transpose(1, 2)).transpose(1, 2), 0.2)
        c = torch.sigmoid(self.k1(w_ref))[:, None] * c + self.k2(w_ref)[:, None]
        return torch.sigmoid(self.k3(c)) * w_ref[:, None] + self.k4(c)


class StyleTalker(CheckpointModel):
    """W+ sequences of a talking head from a reference code, audio and motion latents (see the module doc)."""

    config_class = StyleTalkerConfig
    default_checkpoint = Path(__file__).parent / "assets" / "styletalker_v6.pt"
    """The shipped model (on the shipped feature-path generator; its data card ``styletalker_v6.json`` beside it)."""

    def __init__(self, config: StyleTalkerConfig) -> None:
        super().__init__()
        self.config = config
        self.audio_encoder = AudioEncoder(config) if config.speech == "mel" else \
            PerFrame(speech_encoder(config.speech, config.audio_dim))
        self.speech_dropout = nn.Dropout(config.speech_dropout)
        self.blocks = nn.ModuleList(StyleTalkerBlock(config) for _ in range(config.manipulated))
        if config.stores_mouth_direction:
            self.register_buffer("mouth_direction", torch.zeros(config.manipulated * config.w_dim))
        if config.mouth_window:
            self.register_buffer("speech_mouth", torch.zeros(2 * config.mouth_window + 1,
                                                             input_shape(config.speech)[1]))

    def encode_audio(self, speech: torch.Tensor) -> torch.Tensor:
        """Per-frame speech inputs (B, T, ...) (mel windows, or ``config.speech``'s) -> (B, T, audio_dim); in
        training mode through ``config.speech_dropout``."""
        return self.audio_encoder(self.speech_dropout(speech))

    def _split(self, z: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return z.split(self.config.z_dim, -1)

    def posterior(self, w: torch.Tensor, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, log sigma) (B, T, M * z_dim) of a video's codes w (B, T, L, w_dim) given its audio features
        (B, T, audio_dim)."""
        parts = [block.posterior(w[:, :, i], block.audio_in(audio)) for i, block in enumerate(self.blocks)]
        return torch.cat([p[0] for p in parts], -1), torch.cat([p[1] for p in parts], -1)

    def decode(self, z: torch.Tensor, audio: torch.Tensor, w_ref: torch.Tensor) -> torch.Tensor:
        """W+ codes (B, T, L, w_dim) from latents (B, T, M * z_dim), audio (B, T, audio_dim) and w_ref
        (B, L, w_dim)."""
        zs = self._split(z)
        moved = [block(zs[i], block.audio_in(audio), w_ref[:, i]) for i, block in enumerate(self.blocks)]
        rest = w_ref[:, None, self.config.manipulated:].expand(-1, z.shape[1], -1, -1)
        return torch.cat([torch.stack(moved, 2), rest], 2)

    def log_prior(self, z: torch.Tensor, audio: torch.Tensor, w_first: torch.Tensor) -> torch.Tensor:
        """log p(z) per block and frame (M, B, T) of latents (B, T, M * z_dim) given audio (B, T, audio_dim) and
        the first frame's codes w_0 (B, L, w_dim)."""
        zs = self._split(z)
        return torch.stack([block.prior.log_prob(zs[i], block.audio_in(audio), w_first[:, i])
                            for i, block in enumerate(self.blocks)])

    def forward(self, w: torch.Tensor, w_ref: torch.Tensor, speech: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training pass over a video's codes w (B, T, L, w_dim), its reference's w_ref (B, L, w_dim) and speech
        inputs (B, T, ...) (mel windows (B, T, mel_frames, n_mels), or ``config.speech``'s): (reconstructed codes
        (B, T, L, w_dim), the KL of Eq. 9 per block (M,), per latent dimension, estimated with the posterior
        sample: mean of log q(z) - log p(z | a, w_0), w_0 the window's first frame as in Eq. 7; and the prior's
        negative log-likelihood of the detached sample per block (M,), per latent dimension, for a loss that
        trains the prior alone)."""
        return self.reconstruct(w, w_ref, self.encode_audio(speech))[:3]

    def reconstruct(self, w: torch.Tensor, w_ref: torch.Tensor, audio: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`forward` from encoded audio (B, T, audio_dim), with the posterior sample z (B, T, M * z_dim) it
        decoded as a fourth output."""
        mu, log_sigma = self.posterior(w, audio)
        eps = torch.randn_like(mu)
        z = mu + log_sigma.exp() * eps
        log_q = (-0.5 * eps**2 - log_sigma - 0.5 * LOG_2PI).view(*mu.shape[:2], len(self.blocks), -1).sum(-1)
        kl = (log_q.permute(2, 0, 1) - self.log_prior(z, audio, w[:, 0])).mean((1, 2)) / self.config.z_dim
        prior_nll = -self.log_prior(z.detach(), audio, w[:, 0]).mean((1, 2)) / self.config.z_dim
        return self.decode(z, audio, w_ref), kl, prior_nll, z

    @torch.no_grad()
    def sample_latents(self, w_ref: torch.Tensor, audio: torch.Tensor, *, temperature: float = 1.0,
                       generator: torch.Generator | None = None) -> torch.Tensor:
        """Motion latents (B, T, M * z_dim) from every block's prior, started at the reference (w_0 = w_ref)."""
        return torch.cat([block.prior.sample(block.audio_in(audio), w_ref[:, i], temperature=temperature,
                                             generator=generator) for i, block in enumerate(self.blocks)], -1)

    def set_mouth_direction(self, vector: torch.Tensor) -> None:
        """Store the unit direction of a mouth vector (manipulated * w_dim,) for :meth:`exaggerate_mouth` and
        :meth:`speak_mouth`: the mouth probe's weights, or the generator's drawn-opening gradient
        (``config.mouth_axis``)."""
        if not self.config.stores_mouth_direction:
            raise ValueError("a model with mouth_gain 1 and no mouth_window stores no mouth direction")
        norm = vector.norm()
        if vector.shape != self.mouth_direction.shape or not torch.isfinite(norm) or norm == 0:
            raise ValueError(f"a mouth direction must be a nonzero vector of {self.mouth_direction.numel()} numbers")
        self.mouth_direction.copy_(vector / norm)

    def set_speech_mouth(self, kernel: torch.Tensor) -> None:
        """Store the speech's mouth map for :meth:`speak_mouth`: (2 mouth_window + 1, D), per frame of the window
        (earliest first) the weights of a speech frame vector (less the utterance's mean) in the offset along
        ``mouth_direction``."""
        if not self.config.mouth_window:
            raise ValueError("a model with mouth_window 0 stores no speech mouth map")
        if kernel.shape != self.speech_mouth.shape or not torch.isfinite(kernel).all():
            raise ValueError(f"a speech mouth map must be {tuple(self.speech_mouth.shape)} finite numbers")
        self.speech_mouth.copy_(kernel)

    def _along_mouth(self, w: torch.Tensor, w_ref: torch.Tensor,
                     change: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """Codes (B, T, L, w_dim) whose manipulated vectors' offset from w_ref (B, L, w_dim), flattened, has its
        component along ``mouth_direction`` (B, T) replaced by ``change(component)``; the rest unchanged."""
        if not self.config.stores_mouth_direction:
            raise ValueError("this model stores no mouth direction (its mouth_gain is 1 and it has no mouth_window)")
        m = self.config.manipulated
        offset = (w[:, :, :m] - w_ref[:, None, :m]).flatten(2)
        u = self.mouth_direction / self.mouth_direction.norm()  # unit again after float16 storage
        along = offset @ u
        offset = offset + (change(along) - along)[..., None] * u
        return torch.cat([w_ref[:, None, :m] + offset.view(*w.shape[:2], m, -1), w[:, :, m:]], 2)

    def exaggerate_mouth(self, w: torch.Tensor, w_ref: torch.Tensor, gain: float | None = None) -> torch.Tensor:
        """Codes (B, T, L, w_dim) whose manipulated vectors' offset from w_ref (B, L, w_dim), flattened, has its
        component along ``mouth_direction`` multiplied by ``gain`` (default: ``config.mouth_gain``; the rest of the
        offset, and the other vectors, unchanged)."""
        gain = self.config.mouth_gain if gain is None else gain
        if gain == 1.0:
            return w
        return self._along_mouth(w, w_ref, lambda along: gain * along)

    def speech_mouth_motion(self, speech: torch.Tensor) -> torch.Tensor:
        """The speech mouth map's (:meth:`set_speech_mouth`) offsets (B, T) along ``mouth_direction``, centred over
        the utterance, from the speech inputs (B, T, ...) (their centre frames: the frame vectors, less their mean
        over the utterance; the edge frames repeated past the ends). Needs a ``mouth_window``."""
        k = self.config.mouth_window
        if not k:
            raise ValueError("a model with mouth_window 0 has no speech mouth map")
        rows = speech[:, :, CONTEXT].float()
        rows = rows - rows.mean(1, keepdim=True)
        t = rows.shape[1]
        window = (torch.arange(t)[:, None] + torch.arange(-k, k + 1)).clamp(0, t - 1)
        said = torch.einsum("btjd,jd->bt", rows[:, window], self.speech_mouth.float())
        return said - said.mean(1, keepdim=True)

    def move_mouth(self, w: torch.Tensor, w_ref: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:
        """Codes (B, T, L, w_dim) whose offset from w_ref along ``mouth_direction`` keeps its mean over the
        utterance and takes its changes from ``motion`` (B, T), centred."""
        return self._along_mouth(w, w_ref, lambda along: along.mean(1, keepdim=True) + motion)

    def speak_mouth(self, w: torch.Tensor, w_ref: torch.Tensor, speech: torch.Tensor) -> torch.Tensor:
        """Codes (B, T, L, w_dim) whose mouth moves (:meth:`move_mouth`) as the speech mouth map says over the
        speech inputs (:meth:`speech_mouth_motion`). Unchanged without a ``mouth_window``."""
        if not self.config.mouth_window:
            return w
        return self.move_mouth(w, w_ref, self.speech_mouth_motion(speech))

    @torch.no_grad()
    def generate(self, w_ref: torch.Tensor, speech: torch.Tensor, *, temperature: float = 1.0,
                 generator: torch.Generator | None = None, mouth_gain: float | None = None) -> torch.Tensor:
        """Audio-driven: codes (B, T, L, w_dim) with motion latents sampled from the prior (the mouth moved by
        :meth:`speak_mouth`, then exaggerated by :meth:`exaggerate_mouth` with ``mouth_gain``, default
        ``config.mouth_gain``)."""
        audio = self.encode_audio(speech)
        codes = self.decode(self.sample_latents(w_ref, audio, temperature=temperature, generator=generator), audio,
                            w_ref)
        return self.exaggerate_mouth(self.speak_mouth(codes, w_ref, speech), w_ref, mouth_gain)

    @torch.no_grad()
    def motion_latents(self, w: torch.Tensor, speech: torch.Tensor) -> torch.Tensor:
        """Motion-controllable: the posterior means (B, T, M * z_dim) of a motion video's codes and audio."""
        return self.posterior(w, self.encode_audio(speech))[0]

    @torch.no_grad()
    def drive(self, z: torch.Tensor, w_ref: torch.Tensor, speech: torch.Tensor, *, mouth_gain: float | None = None
              ) -> torch.Tensor:
        """Codes (B, T, L, w_dim) of given motion latents (B, T, M * z_dim) with new audio on w_ref (the mouth
        moved by :meth:`speak_mouth`, then exaggerated by :meth:`exaggerate_mouth` with ``mouth_gain``, default
        ``config.mouth_gain``)."""
        codes = self.decode(z, self.encode_audio(speech), w_ref)
        return self.exaggerate_mouth(self.speak_mouth(codes, w_ref, speech), w_ref, mouth_gain)
