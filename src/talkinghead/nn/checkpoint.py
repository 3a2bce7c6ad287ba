"""The one checkpoint format: a model's config dataclass (as a dict), its weights and plain metadata.

Loading needs no YAML and unpickles nothing (``weights_only=True``, ``strict=True``).
"""

from __future__ import annotations

import pickle
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

import torch
from torch import nn

from talkinghead.errors import InputError, TalkingHeadError

M = TypeVar("M", bound=nn.Module)


def save_model(model: nn.Module, path: str | Path, *, half: bool = False, **extra: object) -> None:
    """Write ``{"config": asdict(model.config), "state_dict": ..., **extra}`` to ``path``; ``half`` stores the
    floating-point weights as float16 (half the file; :func:`load_model` copies them into float32 weights)."""
    state = model.state_dict()
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    torch.save({"config": asdict(model.config), "state_dict": state, **extra}, path)


def load_model(cls: type[M], config_cls: type, path: str | Path, *, device: str | torch.device = "cpu") -> M:
    """Build ``cls(config_cls(**config))`` from a checkpoint written by :func:`save_model`, in eval mode. The
    throw-away initial weights are drawn from a forked random generator: loading a model (a frozen SyncNet, say) leaves
    the global one as it was, so a seeded training run does not depend on what was loaded before it."""
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
        with torch.random.fork_rng(devices=[]):
            model = cls(config_cls(**ckpt["config"]))
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except (RuntimeError, TypeError, KeyError, ValueError, AttributeError, pickle.UnpicklingError) as exc:
        first = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise InputError(path, f"not a {cls.__name__} checkpoint ({first})") from None
    return model.to(device).eval()


def checkpoint_meta(path: str | Path) -> dict[str, Any]:
    """Everything in a checkpoint except the weights."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    return {k: v for k, v in ckpt.items() if k != "state_dict"}


class CheckpointModel(nn.Module):
    """Base of every model: ``save``, ``load`` and the shipped ``default`` in the one checkpoint format.

    A subclass names its config dataclass (``config_class``, stored in the checkpoint as ``self.config``) and, when
    weights ship inside the package, their file (``default_checkpoint``).
    """

    config_class: ClassVar[type]
    default_checkpoint: ClassVar[Path | None] = None
    _defaults: ClassVar[dict[type, nn.Module]] = {}

    def save(self, path: str | Path, *, half: bool = False, **extra: object) -> None:
        """Write the checkpoint (see :func:`save_model`)."""
        save_model(self, path, half=half, **extra)

    @classmethod
    def load(cls, path: str | Path, *, device: str | torch.device = "cpu") -> Self:
        """The model of a checkpoint, in eval mode (see :func:`load_model`)."""
        return load_model(cls, cls.config_class, path, device=device)

    @classmethod
    def default(cls) -> Self:
        """The shipped model, loaded once (on the CPU)."""
        if cls.default_checkpoint is None:
            raise TalkingHeadError(f"no {cls.__name__} weights ship with the package")
        if cls not in CheckpointModel._defaults:
            CheckpointModel._defaults[cls] = cls.load(cls.default_checkpoint)
        return CheckpointModel._defaults[cls]  # type: ignore[return-value]
