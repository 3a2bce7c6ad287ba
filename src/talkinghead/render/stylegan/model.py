"""The compact style-based generator (StyleGAN2 layout) and the pSp-style encoder into its W+ space.

Generator: z (B, w) -> mapping -> w; W+ = (B, L, w) with L = 2 log2(size) - 2 style vectors; a learned 4x4
constant, modulated/demodulated convolutions (weights scaled per sample by the affine style of their w), per-pixel
noise, and skip toRGB outputs summed across resolutions. Images are (B, 3, S, S) in [-1, 1]. Layers use the
equalised learning rate of StyleGAN (weights stored at unit variance, scaled at run time). On the feature path
(``GeneratorConfig.input_resolution`` > 4) the constant and the layers below that resolution give way to a
reference image's feature map, warped by a flow decoded from the motion codes' offsets.

Encoder: a residual backbone with a feature pyramid (coarse / medium / fine maps, pSp's GradualStyleEncoder), one
map2style head per W+ vector, added to the generator's average w; for a feature-path generator also a feature map
at a quarter of the image size (HFGI's spatial features), where synthesis starts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from talkinghead.nn.checkpoint import CheckpointModel
from talkinghead.nn.layers import compose_flows, warp
from talkinghead.render.stylegan.config import DiscriminatorConfig, EncoderConfig, GeneratorConfig

ACTIVATION_GAIN = math.sqrt(2.0)
Reference = tuple[list[torch.Tensor], torch.Tensor]
"""A feature-path generator's reference image: (its maps from :meth:`Encoder.encode`, coarsest first, each
(B or 1, C, R, R); its W+ codes (B or 1, L, w_dim))."""
ASSETS = Path(__file__).parent / "assets"


class EqualLinear(nn.Module):
    """Linear layer with the equalised learning rate (weight ~ N(0, 1) / lr_mul, scaled by lr_mul / sqrt(in))."""

    def __init__(self, cin: int, cout: int, *, lr_mul: float = 1.0, bias_init: float = 0.0,
                 activate: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin) / lr_mul)
        self.bias = nn.Parameter(torch.full((cout,), bias_init / lr_mul))
        self.scale, self.lr_mul, self.activate = lr_mul / math.sqrt(cin), lr_mul, activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)
        return F.leaky_relu(out, 0.2) * ACTIVATION_GAIN if self.activate else out


class ModulatedConv2d(nn.Module):
    """x (B, Cin, H, W) + w (B, w_dim) -> (B, Cout, H', W'): the kernel scaled per input channel by the affine style
    s = A(w) (initialised to 1), then (``demodulate``) renormalised per output channel; ``upsample`` doubles the
    resolution (bilinear) first."""

    def __init__(self, cin: int, cout: int, kernel: int, w_dim: int, *, demodulate: bool = True,
                 upsample: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel))
        self.affine = EqualLinear(w_dim, cin, bias_init=1.0)
        self.scale = 1 / math.sqrt(cin * kernel**2)
        self.demodulate, self.upsample, self.padding = demodulate, upsample, kernel // 2

    def kernels(self, style: torch.Tensor) -> torch.Tensor:
        """(B, Cout, Cin, k, k) per-sample kernels for styles (B, Cin)."""
        weight = self.scale * self.weight[None] * style[:, None, :, None, None]
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.pow(2).sum((2, 3, 4), keepdim=True) + 1e-8)
        return weight

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        b, cin, _, _ = x.shape
        if self.upsample:
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        weight = self.kernels(self.affine(w))
        out = F.conv2d(x.reshape(1, b * cin, *x.shape[2:]), weight.reshape(-1, cin, *weight.shape[3:]),
                       padding=self.padding, groups=b)
        return out.view(b, -1, *out.shape[2:])


class StyledConv(nn.Module):
    """Modulated 3x3 convolution + per-pixel noise (learned strength, 0 at start) + bias + leaky ReLU."""

    def __init__(self, cin: int, cout: int, w_dim: int, *, upsample: bool = False) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(cin, cout, 3, w_dim, upsample=upsample)
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(1, cout, 1, 1))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: bool) -> torch.Tensor:
        """``noise``: add fresh per-pixel noise (one map per sample, shared by the channels)."""
        out = self.conv(x, w)
        if noise:
            out = out + self.noise_strength * torch.randn_like(out[:, :1])
        return F.leaky_relu(out + self.bias, 0.2) * ACTIVATION_GAIN


class ToRGB(nn.Module):
    """Modulated 1x1 convolution to RGB (no demodulation) + the upsampled RGB of the previous resolution."""

    def __init__(self, cin: int, w_dim: int) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(cin, 3, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: torch.Tensor, w: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        out = self.conv(x, w) + self.bias
        if skip is not None:
            out = out + F.interpolate(skip, scale_factor=2.0, mode="bilinear", align_corners=False)
        return out


class MotionFlow(nn.Module):
    """The feature path's flow: a reference's feature map (B, C, r, r) and the offsets (B, M, w_dim) of the motion
    codes (driving minus reference) -> a flow (B, 2, r, r) in pixels of r that moves the map to the driving pose
    and mouth (LIA's idea: motion as a direction in latent space, decoded to a dense flow). A U-Net two levels
    deep over the map; at its bottom one modulated 3x3 convolution per motion code, styled by that code's offset
    (a zero offset gives unit styles); a flow head initialised at zero."""

    def __init__(self, cin: int, width: int, w_dim: int, codes: int) -> None:
        super().__init__()
        self.stem = nn.Conv2d(cin, width, 3, 1, 1)
        self.down = nn.ModuleList(nn.Conv2d(width, width, 4, 2, 1) for _ in range(2))
        self.styled = nn.ModuleList(StyledConv(width, width, w_dim) for _ in range(codes))
        self.up = nn.ModuleList(nn.Conv2d(width, width, 3, 1, 1) for _ in range(2))
        self.head = nn.Conv2d(width, 2, 3, 1, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, features: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.stem(features), 0.2)
        skips = []
        for down in self.down:
            skips.append(x)
            x = F.leaky_relu(down(x), 0.2)
        for j, styled in enumerate(self.styled):
            x = styled(x, offsets[:, j], False)
        for up in self.up:
            x = F.leaky_relu(up(F.interpolate(x, scale_factor=2.0, mode="nearest")), 0.2) + skips.pop()
        return self.head(x)


class Generator(CheckpointModel):
    """W+ (B, L, w_dim) -> image (B, 3, S, S) in about [-1, 1].

    Constant path (``input_resolution`` 4, StyleGAN2): :meth:`mapping` gives w from z; ``w_avg`` (w_dim,) is the
    running mean of mapped w (updated in training by :meth:`track_w`), the centre of the truncation trick and
    the encoder's starting point. Feature path: synthesis starts from a reference's feature map and codes (the
    encoder's, :meth:`Encoder.encode`), moved by :class:`MotionFlow` to the pose and mouth of the codes drawn."""

    config_class = GeneratorConfig
    default_checkpoint = ASSETS / "feature_generator_v4.pt"
    """The shipped feature-path generator (128 px; its data card ``feature_v4.json`` beside it)."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.config = c = config
        c0 = c.channels_at(c.input_resolution)
        if c.feature_path:
            self.motion = MotionFlow(c0, c.flow_channels, c.w_dim, c.motion_latents)
        else:
            self.mapping_net = nn.Sequential(*(EqualLinear(c.w_dim, c.w_dim, lr_mul=c.lr_mapping, activate=True)
                                               for _ in range(c.mapping_layers)))
            self.const = nn.Parameter(torch.randn(1, c0, 4, 4))
            self.conv1 = StyledConv(c0, c0, c.w_dim)
        self.to_rgb1 = ToRGB(c0, c.w_dim)
        self.ups, self.convs, self.to_rgbs = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        self.skips = nn.ModuleList()
        cin = c0
        for i in range(int(math.log2(c.input_resolution)) + 1, c.log_size + 1):
            cout = c.channels_at(2**i)
            self.ups.append(StyledConv(cin, cout, c.w_dim, upsample=True))
            self.convs.append(StyledConv(cout, cout, c.w_dim))
            self.to_rgbs.append(ToRGB(cout, c.w_dim))
            if c.feature_path and c.skip_channels:
                self.skips.append(nn.Conv2d(c.skip_channels, cout, 1))
            cin = cout
        self.register_buffer("w_avg", torch.zeros(c.w_dim))

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, w_dim) -> w (B, w_dim) (z normalised to unit RMS first, as StyleGAN's PixelNorm); constant path."""
        if self.config.feature_path:
            raise ValueError("a feature-path generator has no mapping network (its codes come from the encoder)")
        return self.mapping_net(z * torch.rsqrt(z.pow(2).mean(1, keepdim=True) + 1e-8))

    @torch.no_grad()
    def track_w(self, w: torch.Tensor, decay: float = 0.995) -> None:
        """Move ``w_avg`` towards the batch mean of w (B, w_dim)."""
        self.w_avg.lerp_(w.mean(0), 1 - decay)

    def motion_flow(self, w_plus: torch.Tensor, reference: Reference) -> torch.Tensor:
        """Feature path: the flow (B, 2, r, r) that moves the reference (its maps, coarsest (B or 1, C, r, r)
        first, and codes (B or 1, L, w_dim)) to codes W+ (B, L, w_dim)."""
        maps, codes = reference
        m = self.config.motion_latents
        return self.motion(maps[0].expand(len(w_plus), -1, -1, -1), w_plus[:, :m] - codes[:, :m])

    def forward(self, w_plus: torch.Tensor, *, noise: str = "random", features: int | None = None,
                flow: torch.Tensor | None = None, calibrate: Callable[[torch.Tensor], torch.Tensor] | None = None,
                reference: Reference | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(image (B, 3, S, S), the feature map after the convolutions at resolution ``features`` (or None; warped
        when ``flow`` is at that resolution).

        ``noise``: "random" (fresh per-pixel noise, training) or "none" (deterministic). ``flow`` (B, 2, r, r), a
        pixel flow at one of the generator's resolutions r >= 8 (StyleHEAT: 64), backward-warps the feature map
        and the summed RGB at that resolution after its convolutions (:func:`talkinghead.nn.layers.warp`); the
        rest of the generator runs on the warped maps, so a zero flow gives the unwarped image. ``calibrate`` maps
        the warped feature map to a corrected one of the same shape (StyleHEAT's calibration) before the rest.

        Feature path: ``reference`` = (maps, codes) of the reference image (:meth:`Encoder.encode`) is required;
        its input map is warped by :meth:`motion_flow` of the codes drawn, then by ``flow`` when that is at the input
        resolution (StyleHEAT's flows: the codes then move the reference's face, e.g. an edit, and ``flow`` moves
        the result), calibrated, and synthesis continues from it; its skip maps, warped by the same flows, join
        after each upsampling convolution."""
        c = self.config
        if w_plus.ndim == 2:
            w_plus = w_plus[:, None].expand(-1, c.n_latents, -1)
        if w_plus.shape[1] != c.n_latents:
            raise ValueError(f"W+ must hold {c.n_latents} style vectors, not {w_plus.shape[1]}")
        if noise not in ("random", "none"):
            raise ValueError(f"noise must be 'random' or 'none', not {noise!r}")
        random = noise == "random"
        start = max(8, c.input_resolution)
        if flow is not None and flow.shape[-1] not in [2**i for i in range(int(math.log2(start)), c.log_size + 1)]:
            raise ValueError(f"flow must be at a resolution of {start}..{c.size} px, not {flow.shape[-1]}")
        k0 = int(math.log2(c.input_resolution))
        if c.feature_path:
            if reference is None:
                raise ValueError("a feature-path generator needs the reference's feature map and codes")
            at_input = flow is not None and flow.shape[-1] == c.input_resolution
            moved = self.motion_flow(w_plus, reference)
            if at_input:
                moved = compose_flows(moved, flow)
            maps = [m.expand(len(w_plus), -1, -1, -1) for m in reference[0]]
            x = warp(maps[0], moved)
            if at_input and calibrate is not None:
                x = calibrate(x)
        else:
            x = self.conv1(self.const.expand(len(w_plus), -1, -1, -1), w_plus[:, 0], random)
        kept = x if features == c.input_resolution else None
        rgb = self.to_rgb1(x, w_plus[:, 2 * k0 - 3], None)
        for i, (up, conv, to_rgb) in enumerate(zip(self.ups, self.convs, self.to_rgbs)):
            k = k0 + 1 + i
            x = up(x, w_plus[:, 2 * k - 5], random)
            if len(self.skips):
                x = x + self.skips[i](warp(maps[i + 1], moved))
            x = conv(x, w_plus[:, 2 * k - 4], random)
            rgb = to_rgb(x, w_plus[:, 2 * k - 3], rgb)
            if flow is not None and flow.shape[-1] == x.shape[-1]:
                x, rgb = warp(x, flow), warp(rgb, flow)
                if calibrate is not None:
                    x = calibrate(x)
            if features == x.shape[-1]:
                kept = x
        return rgb, kept


class _Residual(nn.Module):
    """Pre-activation residual block (instance norm, LeakyReLU) with an optional stride-2 shortcut."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.InstanceNorm2d(cin, affine=True), nn.Conv2d(cin, cout, 3, 1, 1),
                                  nn.LeakyReLU(0.2), nn.Conv2d(cout, cout, 3, stride, 1))
        self.short = nn.Conv2d(cin, cout, 1, stride) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.short(x)


class _MapToStyle(nn.Module):
    """pSp's map2style: stride-2 convolutions (``width`` channels) down to 1x1, then a linear layer -> (B, w_dim)."""

    def __init__(self, cin: int, w_dim: int, resolution: int, width: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = cin
        for _ in range(int(math.log2(resolution))):
            layers += [nn.Conv2d(c, width, 3, 2, 1), nn.LeakyReLU(0.2)]
            c = width
        self.convs = nn.Sequential(*layers)
        self.linear = EqualLinear(c, w_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.convs(x).flatten(1))


class Encoder(CheckpointModel):
    """image (B, 3, S, S) in [-1, 1] -> W+ (B, L, w_dim) = ``w_avg`` + per-vector offsets from the feature pyramid.

    Feature maps at S/4 (fine), S/8 (medium) and S/16 (coarse); the medium and fine maps add the upsampled coarser
    map (FPN). As in pSp (3 coarse, 4 medium, 11 fine of 18) the first L/6 vectors read the coarse map, up to
    7L/18 the medium one, the rest the fine one."""

    config_class = EncoderConfig
    default_checkpoint = ASSETS / "feature_encoder_v3.pt"
    """The shipped encoder of the shipped feature-path generator."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = c = config
        widths = [min(c.channels * 2**i, c.channels * 8) for i in range(5)]
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, 1, 1), nn.LeakyReLU(0.2))
        self.stages = nn.ModuleList(_Residual(widths[i], widths[i + 1], 2) for i in range(4))
        top = widths[4]
        self.lateral_medium = nn.Conv2d(widths[3], top, 1)
        self.lateral_fine = nn.Conv2d(widths[2], top, 1)
        self.coarse_end, self.medium_end = max(1, c.n_latents // 6), max(2, 7 * c.n_latents // 18)
        sizes = [c.size // 16] * self.coarse_end + [c.size // 8] * (self.medium_end - self.coarse_end) + \
            [c.size // 4] * (c.n_latents - self.medium_end)
        self.heads = nn.ModuleList(_MapToStyle(top, c.w_dim, s, c.head_channels) for s in sizes)
        self.feature_head = nn.Conv2d(top, c.feature_channels, 3, 1, 1) if c.feature_channels else None
        self.skip_heads = nn.ModuleList(nn.Conv2d(widths[i], c.skip_channels, 3, 1, 1) for i in (1, 0)) \
            if c.feature_channels and c.skip_channels else nn.ModuleList()
        self.register_buffer("w_avg", torch.zeros(c.w_dim))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.encode(image)[0]

    def encode(self, image: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor] | None]:
        """(W+ (B, L, w_dim), the maps of a feature-path generator: (B, feature_channels, S/4, S/4), then with
        ``skip_channels`` the skip maps (B, skip_channels, S/2, S/2) and (B, skip_channels, S, S); None when
        ``feature_channels`` is 0)."""
        x = stem = self.stem(image)
        maps = []
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        coarse = maps[3]
        medium = F.interpolate(coarse, scale_factor=2.0, mode="bilinear", align_corners=False) + \
            self.lateral_medium(maps[2])
        fine = F.interpolate(medium, scale_factor=2.0, mode="bilinear", align_corners=False) + \
            self.lateral_fine(maps[1])
        source = [coarse] * self.coarse_end + [medium] * (self.medium_end - self.coarse_end) + \
            [fine] * (self.config.n_latents - self.medium_end)
        codes = torch.stack([head(m) for head, m in zip(self.heads, source)], 1) + self.w_avg
        if self.feature_head is None:
            return codes, None
        skips = [head(m) for head, m in zip(self.skip_heads, (maps[0], stem))]
        return codes, [self.feature_head(fine), *skips]


class _DownBlock(nn.Module):
    """StyleGAN2's residual discriminator block: two 3x3 convs (LeakyReLU), 2x average-pool, and a pooled 1x1
    skip, summed and scaled by 1/sqrt(2)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(cin, cin, 3, 1, 1), nn.Conv2d(cin, cout, 3, 1, 1)
        self.skip = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.leaky_relu(self.conv1(x), 0.2)
        y = F.avg_pool2d(F.leaky_relu(self.conv2(y), 0.2), 2)
        return (y + self.skip(F.avg_pool2d(x, 2))) / math.sqrt(2.0)


def minibatch_stddev(x: torch.Tensor, group: int) -> torch.Tensor:
    """x (B, C, H, W) with one more channel: the mean over features of the standard deviation within each group
    of ``group`` samples (the whole batch when it does not divide), so the critic can see a lack of variety."""
    b = x.shape[0]
    g = group if b % group == 0 else b
    std = x.view(g, b // g, *x.shape[1:]).var(0, unbiased=False).add(1e-8).sqrt().mean((1, 2, 3))
    return torch.cat([x, std.repeat(g)[:, None, None, None].expand(b, 1, *x.shape[2:])], 1)


class Discriminator(CheckpointModel):
    """image (B, 3, S, S) in [-1, 1] -> (B,) logits (StyleGAN2's residual discriminator, compact)."""

    config_class = DiscriminatorConfig

    def __init__(self, config: DiscriminatorConfig) -> None:
        super().__init__()
        self.config = c = config
        log_size = int(math.log2(c.size))
        self.stem = nn.Conv2d(3, c.channels_at(c.size), 1)
        self.blocks = nn.Sequential(*(_DownBlock(c.channels_at(2**i), c.channels_at(2**(i - 1)))
                                      for i in range(log_size, 2, -1)))
        top = c.channels_at(4)
        self.final = nn.Conv2d(top + 1, top, 3, 1, 1)
        self.head = nn.Sequential(nn.Linear(top * 16, top), nn.LeakyReLU(0.2), nn.Linear(top, 1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.blocks(F.leaky_relu(self.stem(image), 0.2))
        x = F.leaky_relu(self.final(minibatch_stddev(x, self.config.mbstd_group)), 0.2)
        return self.head(x.flatten(1))[:, 0]


def d_logistic_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """StyleGAN2's discriminator loss on (B,) logits: softplus(-real) + softplus(fake), averaged."""
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def g_nonsaturating_loss(fake: torch.Tensor) -> torch.Tensor:
    """The generator's non-saturating logistic loss on (B,) logits of its images: softplus(-fake)."""
    return F.softplus(-fake).mean()


def r1_penalty(real_logits: torch.Tensor, real_images: torch.Tensor) -> torch.Tensor:
    """R1 regulariser: the mean squared norm of the logits' gradient with respect to the real images (which must
    require grad); StyleGAN2 weighs it by gamma / 2 and applies it lazily (every 16 steps, scaled by 16)."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real_images, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def shipped_models() -> str:
    """How a checkpoint's card names the shipped feature-path generator and encoder it was trained with."""
    return f"shipped {Generator.default_checkpoint.name} + {Encoder.default_checkpoint.name}"
