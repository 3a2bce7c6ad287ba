"""StyleTalker (Min et al., 2022) on the compact style-based generator: the latent motion of a talking head.

A video is a sequence of W+ codes w_1..T of the generator; StyleTalker writes each as the reference photo's
code w_ref moved by the audio and by a motion latent z_t:

- audio encoder: a ResNet with squeeze-and-excitation over each frame's 0.2 s mel window -> a_t;
- per manipulated layer l (the first half of W+), a StyleTalker block:
  posterior encoder q(z^l_t | w^l_<=t - w^l_ref, a_<=t): FC -> LSTM -> (mu, log sigma);
  smoothing module: 1-D Gaussian smoothing over time, a convolution and LeakyReLU on [z^l, a];
  two-way manipulation: w^l_t = w^l_ref * (1 + gamma^l_t) + beta^l_t, scale and shift from the smoothed features
  (our reading of the paper's Eq. 11, which we could not consult offline: the audio and motion features move
  the reference code both multiplicatively and additively; at initialisation gamma = beta = 0, so w_t = w_ref);
- prior: an LSTM summary of the reference code sets the initial state of an autoregressive LSTM over the
  previous frame's latent and a_t, which gives a Gaussian on the base side of a volume-preserving normalizing
  flow (:class:`talkinghead.nn.flows.SequenceFlow`, conditioned on the audio), so
  log p(z) = log N(flow(z); mu, sigma) exactly (log-det 0).

Audio-driven generation samples z from the prior; motion-controllable generation takes z from the posterior of
another video (its head motion and blinks on our face, lips from the new audio).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

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


class StyleTalkerBlock(nn.Module):
    """One manipulated W+ layer: posterior encoder, smoothing module and two-way manipulation."""

    def __init__(self, config: StyleTalkerConfig) -> None:
        super().__init__()
        c = config
        self.sigma = c.smoothing_sigma
        self.posterior_in = nn.Sequential(nn.Linear(c.w_dim + c.audio_dim, c.hidden), nn.LeakyReLU(0.2))
        self.posterior_rnn = nn.LSTM(c.hidden, c.hidden, batch_first=True)
        self.posterior_out = nn.Linear(c.hidden, 2 * c.z_dim)
        self.smooth_conv = nn.Conv1d(c.z_dim + c.audio_dim, c.hidden, 3, 1, 1)
        self.manipulate = nn.Linear(c.hidden, 2 * c.w_dim)
        nn.init.zeros_(self.manipulate.weight)
        nn.init.zeros_(self.manipulate.bias)

    def posterior(self, offset: torch.Tensor, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, log sigma) (B, T, z_dim) of the frames' offsets w_t - w_ref (B, T, w_dim) given audio (B, T, A)."""
        h, _ = self.posterior_rnn(self.posterior_in(torch.cat([offset, audio], -1)))
        mu, log_sigma = self.posterior_out(h).chunk(2, -1)
        return mu, log_sigma.clamp(-7.0, 2.0)

    def forward(self, z: torch.Tensor, audio: torch.Tensor, w_ref: torch.Tensor) -> torch.Tensor:
        """Codes (B, T, w_dim) of this layer from motion latents (B, T, z_dim), audio (B, T, A), w_ref (B, w_dim)."""
        h = gaussian_smooth(torch.cat([z, audio], -1), self.sigma)
        h = F.leaky_relu(self.smooth_conv(h.transpose(1, 2)).transpose(1, 2), 0.2)
        gamma, beta = self.manipulate(h).chunk(2, -1)
        return w_ref[:, None] * (1 + gamma) + beta


class FlowPrior(nn.Module):
    """p(z_1..T | audio, w_ref): autoregressive LSTM Gaussian on the base side of a volume-preserving flow."""

    def __init__(self, config: StyleTalkerConfig) -> None:
        super().__init__()
        c = config
        d = c.motion_dim
        self.reference_rnn = nn.LSTM(c.w_dim, c.prior_hidden, batch_first=True)
        self.rnn = nn.LSTM(d + c.audio_dim, c.prior_hidden, batch_first=True)
        self.out = nn.Linear(c.prior_hidden, 2 * d)
        self.flow = SequenceFlow(d, c.audio_dim, c.flow_hidden, c.flow_steps)
        self.dim = d

    def _state(self, w_ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Initial AR state from an LSTM over the reference's manipulated style vectors (B, M, w_dim)."""
        _, state = self.reference_rnn(w_ref)
        return state

    def _gaussian(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_sigma = self.out(h).chunk(2, -1)
        return mu, log_sigma.clamp(-7.0, 2.0)

    def log_prob(self, z: torch.Tensor, audio: torch.Tensor, w_ref: torch.Tensor) -> torch.Tensor:
        """log p(z) per frame (B, T) for latents (B, T, D); w_ref (B, M, w_dim)."""
        u = self.flow.inverse(z, audio)
        previous = torch.cat([torch.zeros_like(u[:, :1]), u[:, :-1]], 1)
        h, _ = self.rnn(torch.cat([previous, audio], -1), self._state(w_ref))
        mu, log_sigma = self._gaussian(h)
        return (-0.5 * ((u - mu) / log_sigma.exp()) ** 2 - log_sigma - 0.5 * LOG_2PI).sum(-1)

    @torch.no_grad()
    def sample(self, audio: torch.Tensor, w_ref: torch.Tensor, *, temperature: float = 1.0,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Latents (B, T, D) drawn frame by frame on the base side, then mapped through the flow."""
        b, t = audio.shape[:2]
        state = self._state(w_ref)
        u_prev = audio.new_zeros(b, 1, self.dim)
        us = []
        for i in range(t):
            h, state = self.rnn(torch.cat([u_prev, audio[:, i:i + 1]], -1), state)
            mu, log_sigma = self._gaussian(h)
            noise = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
            u_prev = mu + temperature * log_sigma.exp() * noise
            us.append(u_prev)
        return self.flow(torch.cat(us, 1), audio)


class StyleTalker(CheckpointModel):
    """W+ sequences of a talking head from a reference code, audio and motion latents (see the module doc)."""

    config_class = StyleTalkerConfig

    def __init__(self, config: StyleTalkerConfig) -> None:
        super().__init__()
        self.config = config
        self.audio_encoder = AudioEncoder(config) if config.speech == "mel" else \
            PerFrame(speech_encoder(config.speech, config.audio_dim))
        self.blocks = nn.ModuleList(StyleTalkerBlock(config) for _ in range(config.manipulated))
        self.prior = FlowPrior(config)

    def encode_audio(self, speech: torch.Tensor) -> torch.Tensor:
        """Per-frame speech inputs (B, T, ...) (mel windows, or ``config.speech``'s) -> (B, T, audio_dim)."""
        return self.audio_encoder(speech)

    def posterior(self, w: torch.Tensor, w_ref: torch.Tensor, audio: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, log sigma) (B, T, M * z_dim) of a video's codes w (B, T, L, w_dim) against its reference w_ref
        (B, L, w_dim), given its audio features (B, T, A)."""
        parts = [block.posterior(w[:, :, i] - w_ref[:, None, i], audio) for i, block in enumerate(self.blocks)]
        return torch.cat([p[0] for p in parts], -1), torch.cat([p[1] for p in parts], -1)

    def decode(self, z: torch.Tensor, audio: torch.Tensor, w_ref: torch.Tensor) -> torch.Tensor:
        """W+ codes (B, T, L, w_dim) from latents (B, T, M * z_dim), audio (B, T, A) and w_ref (B, L, w_dim)."""
        zs = z.split(self.config.z_dim, -1)
        moved = [block(zs[i], audio, w_ref[:, i]) for i, block in enumerate(self.blocks)]
        rest = w_ref[:, None, self.config.manipulated:].expand(-1, z.shape[1], -1, -1)
        return torch.cat([torch.stack(moved, 2), rest], 2)

    def forward(self, w: torch.Tensor, w_ref: torch.Tensor, speech: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Training pass over a video's codes w (B, T, L, w_dim), its reference's w_ref (B, L, w_dim) and speech
        inputs (B, T, ...) (mel windows (B, T, mel_frames, n_mels), or ``config.speech``'s): (reconstructed codes
        (B, T, L, w_dim), KL per latent dimension, estimated with the posterior sample: mean of log q(z) - log p(z))."""
        audio = self.encode_audio(speech)
        mu, log_sigma = self.posterior(w, w_ref, audio)
        eps = torch.randn_like(mu)
        z = mu + log_sigma.exp() * eps
        log_q = (-0.5 * eps**2 - log_sigma - 0.5 * LOG_2PI).sum(-1)
        log_p = self.prior.log_prob(z, audio, w_ref[:, :self.config.manipulated])
        kl = (log_q - log_p).mean() / self.config.motion_dim
        return self.decode(z, audio, w_ref), kl

    @torch.no_grad()
    def generate(self, w_ref: torch.Tensor, speech: torch.Tensor, *, temperature: float = 1.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Audio-driven: codes (B, T, L, w_dim) with motion latents sampled from the prior."""
        audio = self.encode_audio(speech)
        z = self.prior.sample(audio, w_ref[:, :self.config.manipulated], temperature=temperature,
                              generator=generator)
        return self.decode(z, audio, w_ref)

    @torch.no_grad()
    def motion_latents(self, w: torch.Tensor, w_ref: torch.Tensor, speech: torch.Tensor) -> torch.Tensor:
        """Motion-controllable: the posterior means (B, T, M * z_dim) of a motion video's codes and audio."""
        return self.posterior(w, w_ref, self.encode_audio(speech))[0]

    @torch.no_grad()
    def drive(self, z: torch.Tensor, w_ref: torch.Tensor, speech: torch.Tensor) -> torch.Tensor:
        """Codes (B, T, L, w_dim) of given motion latents (B, T, M * z_dim) with new audio on w_ref."""
        return self.decode(z, self.encode_audio(speech), w_ref)
