"""The one checkpoint format: a model's config dataclass (as a dict), its weights and plain metadata.

Loading needs no YAML and unpickles nothing (``weights_only=True``, ``strict=True``).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

M = TypeVar("M", bound=nn.Module)


def save_model(model: nn.Module, path: str | Path, *, half: bool = False, **extra: object) -> None:
    """Write ``{"config": asdict(model.config), "state_dict": ..., **extra}`` to ``path``; ``half`` stores the
    floating-point weights as float16 (half the file; :func:`load_model` copies them into float32 weights)."""
    state = model.state_dict()
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    torch.save({"config": asdict(model.config), "state_dict": state, **extra}, path)


def load_model(cls: type[M], config_cls: type, path: str | Path, *, device: str | torch.device = "cpu") -> M:
    """Build ``cls(config_cls(**config))`` from a checkpoint written by :func:`save_model`, in eval mode."""
    ckpt = torch.load(path, map_location=device, weights_only=True)
    model = cls(config_cls(**ckpt["config"]))
    model.load_state_dict(ckpt["state_dict"], strict=True)
    return model.to(device).eval()


def checkpoint_meta(path: str | Path) -> dict[str, Any]:
    """Everything in a checkpoint except the weights."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    return {k: v for k, v in ckpt.items() if k != "state_dict"}
