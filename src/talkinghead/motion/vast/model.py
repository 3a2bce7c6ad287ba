"""VAST (Chen et al., ICCV 2023 workshops): zero-shot speaking-style transfer from a video prompt.

- Speech encoder: frame-level speech features (phone posteriorgram or Whisper encoder features,
  :mod:`talkinghead.audio.posteriorgram`) -> (B, T, D) by a linear layer and 1-D convolutions.
- Style encoder: 1-D convolutions + a GRU over the style clip's expression coefficients together with its
  speech features, averaged over the valid frames -> a fixed-length hidden vector h (B, D).
- Variational style enhancer: a Gaussian posterior q(z0 | X, A) = N(mu(h), sigma(h)), K Householder
  reflections z_K = H_K .. H_1 z0 (volume preserving, :mod:`talkinghead.nn.flows`) and a learnable Gaussian
  prior p(z); its loss is VAST's Eq. 2: KL(q || p) + reconstruction - sum log|det|, the KL estimated from
  the sample as log q0(z0) - log p(z_K).
- Hybrid decoder: the speech-strongly-related (mouth) coefficients come from a non-autoregressive
  transformer over the speech features plus z (sequence to sequence); the weakly related ones from an
  autoregressive LSTM fed the previous frame, the speech features through dropout, and z.

Coefficients are the face model's expression coefficients at 25 fps; inside the network every coefficient is
divided by its standard deviation in the face model's data (``scale``).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from talkinghead.motion.vast.config import VastConfig
from talkinghead.nn.checkpoint import CheckpointModel
from talkinghead.nn.flows import HouseholderFlow
from talkinghead.nn.layers import sinusoid
from talkinghead.nn.transformer import PosEncoder

LOG_2PI = math.log(2 * math.pi)


def gaussian_log_prob(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, exp(logvar)) summed over the last dimension: (B, D) -> (B,)."""
    return -0.5 * (LOG_2PI + logvar + (z - mu) ** 2 / logvar.exp()).sum(-1)


def reconstruction_loss(pred: torch.Tensor, target: torch.Tensor, *, kind: str, asymmetry: float) -> torch.Tensor:
    """Mean squared error, or its asymmetric form: errors that pull a coefficient towards zero (or past it)
    relative to the target, target * (target - pred) > 0, weigh ``asymmetry`` times as much as errors that
    exaggerate it. Averaging regressors shrink expressive motion towards the mean; VAST replaces MSE by an
    asymmetric loss against this over-smoothing (this weighting is our reading of it)."""
    err = (pred - target) ** 2
    if kind == "mse":
        return err.mean()
    shrink = target * (target - pred) > 0
    return torch.where(shrink, asymmetry * err, err).mean()


class SpeechEncoder(nn.Module):
    """speech features (B, T, S) -> (B, T, D)."""

    def __init__(self, c: VastConfig) -> None:
        super().__init__()
        self.dropout = nn.Dropout(c.input_dropout) if c.input_dropout else nn.Identity()
        self.project = nn.Linear(c.speech_dim, c.d_model)
        self.convs = nn.ModuleList(nn.Conv1d(c.d_model, c.d_model, 5, padding=2) for _ in range(2))

    def forward(self, speech: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.project(self.dropout(speech))).transpose(1, 2)
        for conv in self.convs:
            x = x + F.relu(conv(x))
        return x.transpose(1, 2)


class StyleEncoder(nn.Module):
    """style coefficients (B, L, K) (normalised) + speech features (B, L, S) + padding (B, L) bool (True = padding)
    -> h (B, D): convolutions and a GRU, averaged over the valid frames."""

    def __init__(self, c: VastConfig) -> None:
        super().__init__()
        self.max_frames = c.max_style_frames
        self.project = nn.Linear(c.n_expression + c.speech_dim, c.d_model)
        self.convs = nn.ModuleList(nn.Conv1d(c.d_model, c.d_model, 3, padding=1) for _ in range(c.style_conv_layers))
        self.gru = nn.GRU(c.d_model, c.d_model, batch_first=True)

    def forward(self, coeffs: torch.Tensor, speech: torch.Tensor, padding: torch.Tensor | None = None
                ) -> torch.Tensor:
        coeffs, speech = coeffs[:, :self.max_frames], speech[:, :self.max_frames]
        valid = torch.ones(coeffs.shape[:2], device=coeffs.device) if padding is None else \
            (~padding[:, :self.max_frames]).float()
        x = F.relu(self.project(torch.cat([coeffs, speech], -1))) * valid[..., None]
        x = x.transpose(1, 2)
        for conv in self.convs:
            x = F.relu(conv(x)) * valid[:, None]  # padding stays zero, so valid frames never see it twice
        out, _ = self.gru(x.transpose(1, 2))  # padding is at the end: a forward GRU's valid outputs ignore it
        return (out * valid[..., None]).sum(1) / valid.sum(1, keepdim=True).clamp_min(1.0)


class StyleEnhancer(nn.Module):
    """h (B, D) -> style vector z (B, Z) and the variational loss KL(q || p) - sum log|det| (B,).

    Without the enhancer (``config.enhancer`` False) z is a linear map of h and the loss is zero."""

    def __init__(self, c: VastConfig) -> None:
        super().__init__()
        self.enabled = c.enhancer
        if c.enhancer:
            self.mu = nn.Linear(c.d_model, c.style_dim)
            self.logvar = nn.Linear(c.d_model, c.style_dim)
            self.flow = HouseholderFlow(c.style_dim, c.d_model, c.flow_steps)
            self.prior_mu = nn.Parameter(torch.zeros(c.style_dim))
            self.prior_logvar = nn.Parameter(torch.zeros(c.style_dim))
        else:
            self.project = nn.Linear(c.d_model, c.style_dim)

    def forward(self, h: torch.Tensor, *, sample: bool, generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.enabled:
            return self.project(h), h.new_zeros(len(h))
        mu, logvar = self.mu(h), self.logvar(h).clamp(-10.0, 6.0)
        z0 = mu
        if sample:
            noise = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
            z0 = mu + (0.5 * logvar).exp() * noise
        z, logdet = self.flow(z0, h)
        kl = gaussian_log_prob(z0, mu, logvar) - gaussian_log_prob(z, self.prior_mu, self.prior_logvar)
        return z, kl - logdet


class NARDecoder(nn.Module):
    """speech encoding (B, T, D) + z (B, Z) -> strongly related coefficients (B, T, Ns), sequence to sequence."""

    def __init__(self, c: VastConfig, out: int) -> None:
        super().__init__()
        self.style = nn.Linear(c.style_dim, c.d_model)
        self.encoder = PosEncoder(c.d_model, c.heads, c.feedforward, c.dropout, c.nar_layers)
        self.out = nn.Linear(c.d_model, out)

    def forward(self, speech: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        pos = sinusoid(speech.shape[1], speech.shape[2]).to(speech)
        return self.out(self.encoder(speech + self.style(z)[:, None], pos))


class ARDecoder(nn.Module):
    """Weakly related coefficients frame by frame: LSTM over [previous frame (Nw), dropout(speech) (D), z (Z)]."""

    def __init__(self, c: VastConfig, out: int) -> None:
        super().__init__()
        self.out_dim = out
        self.speech_dropout = nn.Dropout(c.speech_dropout)
        self.lstm = nn.LSTM(out + c.d_model + c.style_dim, c.ar_hidden, c.ar_layers, batch_first=True)
        self.out = nn.Linear(c.ar_hidden, out)

    def _inputs(self, previous: torch.Tensor, speech: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return torch.cat([previous, self.speech_dropout(speech), z[:, None].expand(-1, speech.shape[1], -1)], -1)

    def forward(self, speech: torch.Tensor, z: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: ``previous`` (B, T, Nw) holds frame t - 1's coefficients at t -> (B, T, Nw)."""
        return self.out(self.lstm(self._inputs(previous, speech, z))[0])

    def generate(self, speech: torch.Tensor, z: torch.Tensor, *, first: torch.Tensor | None = None,
                 state: tuple[torch.Tensor, torch.Tensor] | None = None
                 ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Autoregressive decoding from ``first`` (B, Nw) (default zeros, the rest shape) -> ((B, T, Nw), state)."""
        prev = speech.new_zeros(len(speech), 1, self.out_dim) if first is None else first[:, None]
        outs = []
        for t in range(speech.shape[1]):
            h, state = self.lstm(self._inputs(prev, speech[:, t:t + 1], z), state)
            prev = self.out(h)
            outs.append(prev)
        return torch.cat(outs, 1), state  # type: ignore[return-value]


class Vast(CheckpointModel):
    """speech features (B, T, S) + style clip (coefficients (B, L, K), speech (B, L, S), padding) -> (B, T, K).

    ``scale`` (K,) is each coefficient's standard deviation (set from the face model before training)."""

    config_class = VastConfig
    default_checkpoint = Path(__file__).parent / "assets" / "vast_v4.pt"
    """The VAST motion model shipped with the package (Whisper's third block, ``whisper3``, 1000 steps with input
    dropout 0.3; its data card: ``vast_v4.json`` beside it; v3, 2000 steps without it, and v2, on the last layer, are
    in the git history with their cards)."""

    def __init__(self, config: VastConfig) -> None:
        super().__init__()
        self.config = c = config
        self.speech_encoder = SpeechEncoder(c)
        self.style_encoder = StyleEncoder(c)
        self.enhancer = StyleEnhancer(c)
        self.nar = NARDecoder(c, len(c.strong))
        self.ar = ARDecoder(c, len(c.weak))
        self.register_buffer("scale", torch.ones(c.n_expression))
        self.register_buffer("strong_index", torch.tensor(c.strong, dtype=torch.long), persistent=False)
        self.register_buffer("weak_index", torch.tensor(c.weak, dtype=torch.long), persistent=False)

    def style(self, coeffs: torch.Tensor, speech: torch.Tensor, padding: torch.Tensor | None = None, *,
              sample: bool = False, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Style clip -> (z (B, Z), variational loss (B,)); ``sample`` draws z from the posterior, else its mean
        (pushed through the flow)."""
        h = self.style_encoder(coeffs / self.scale, speech, padding)
        return self.enhancer(h, sample=sample, generator=generator)

    def _join(self, strong: torch.Tensor, weak: torch.Tensor) -> torch.Tensor:
        out = strong.new_zeros(*strong.shape[:2], self.config.n_expression)
        out[..., self.strong_index] = strong
        out[..., self.weak_index] = weak
        return out * self.scale

    def forward(self, speech: torch.Tensor, z: torch.Tensor, target: torch.Tensor, *, noise: float = 0.0
                ) -> torch.Tensor:
        """Training pass with teacher forcing of the weak group from ``target`` (B, T, K) (previous frames,
        plus Gaussian ``noise`` in std units) -> (B, T, K) coefficients."""
        enc = self.speech_encoder(speech)
        weak = target[..., self.weak_index] / self.scale[self.weak_index]
        previous = torch.cat([torch.zeros_like(weak[:, :1]), weak[:, :-1]], 1)
        if noise:
            previous = previous + noise * torch.randn_like(previous)
        return self._join(self.nar(enc, z), self.ar(enc, z, previous))

    @torch.no_grad()
    def generate(self, speech: torch.Tensor, z: torch.Tensor, *, chunk: int = 256) -> torch.Tensor:
        """Inference: (B, T, S) speech + z (B, Z) -> (B, T, K); the transformer sees ``chunk``-frame pieces,
        the LSTM runs through the whole sequence."""
        strong, weak, state, last = [], [], None, None
        for s in range(0, speech.shape[1], chunk):
            enc = self.speech_encoder(speech[:, s:s + chunk])
            strong.append(self.nar(enc, z))
            w, state = self.ar.generate(enc, z, first=last, state=state)
            weak.append(w)
            last = w[:, -1]
        return self._join(torch.cat(strong, 1), torch.cat(weak, 1))
