"""Architecture of StyleHEAT's motion generators and calibration network (stored inside its checkpoints)."""

from __future__ import annotations

from dataclasses import dataclass, field

FLOWS = ("network", "mesh")
"""Where StyleHEAT's flows come from (:attr:`StyleHeatConfig.flows`)."""
ROTATION_FEATURES = 9
"""A frame's head rotation enters the video descriptor as its 3x3 matrix, flattened."""


@dataclass
class StyleHeatConfig:
    """StyleHEAT (Yin et al., ECCV 2022) on our compact generator: flow fields at ``warp_resolution`` (StyleHEAT:
    the 64 x 64 feature map) predicted from the generator's image of the photo's code (resized to ``flow_input``,
    StyleHEAT: 256) by an AdaIN hourglass, driven by a descriptor of the driving frame's coefficients (a window of
    ``2 radius + 1`` frames, StyleHEAT: 27) or of its 0.2 s mel window; a calibration U-Net over the warped
    feature map. ``warp_resolution``, ``flow_input``, ``feature_channels``, ``n_latents`` and ``w_dim`` follow
    the generator it is trained on (:func:`talkinghead.train.styleheat.train_styleheat` sets them)."""

    flow_input: int = 256
    warp_resolution: int = 64
    feature_channels: int = 64
    """Channels of the generator's feature map at ``warp_resolution``."""
    n_latents: int = 12
    w_dim: int = 256
    n_expression: int = 64
    radius: int = 13
    """Frames on each side of the driving frame in the video descriptor's window."""
    speech: str = "mel"
    """The audio mapper's input (:data:`talkinghead.audio.speech.SPEECH_INPUTS`): mel windows (the paper), or a
    5-frame window of phone one-hots or Whisper tiny.en encoder features into a small MLP
    (:class:`talkinghead.nn.encoders.WindowEncoder`; our addition)."""
    mel_frames: int = 16
    mel_bins: int = 80
    descriptor: int = 256
    mapping_layers: int = 3
    base_channels: int = 32
    max_channels: int = 256
    down_layers: int = 5
    """Stride-2 levels of the hourglass encoder (from ``image_size``); its decoder climbs back to the flow."""
    calibration_channels: int = 64
    calibration_levels: int = 2
    flows: str = "network"
    """Where the flows come from: ``network``, StyleHEAT's motion generators (the hourglasses above); ``mesh``, ours,
    the photo's face mesh deformed by the driving video's pose and upper face and by the lower-face expression
    coefficients the audio mapper predicts (:mod:`talkinghead.motion.styleheat.flows`): the audio mapper is then a
    speech -> expression regressor and the hourglasses are not built."""
    mouth_from: float = 0.5
    """The audio flow moves only rows from this fraction of the crop's height down (the lower face; StyleHEAT
    zeroes the upper half of its audio flow)."""
    edit_names: list[str] = field(default_factory=list)
    """Names of the stored edit directions (``StyleHeat.edit_directions`` rows)."""

    @property
    def n_coefficients(self) -> int:
        """Per-frame features of the video descriptor: expression coefficients + rotation matrix."""
        return self.n_expression + ROTATION_FEATURES

    @property
    def window(self) -> int:
        return 2 * self.radius + 1

    def __post_init__(self) -> None:
        if self.flows not in FLOWS:
            raise ValueError(f"flows must be one of {', '.join(FLOWS)}, not {self.flows!r}")
        bottom = self.flow_input >> self.down_layers
        if not bottom <= self.warp_resolution <= self.flow_input:
            raise ValueError(f"warp resolution {self.warp_resolution} must lie between the hourglass bottom "
                             f"({bottom}) and its input size ({self.flow_input})")
