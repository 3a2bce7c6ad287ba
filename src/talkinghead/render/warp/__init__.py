"""The default renderer: mesh-driven piecewise-affine warping of the reference (no weights)."""

from talkinghead.render.warp.renderer import WarpRenderer, target_meshes

__all__ = ["WarpRenderer", "target_meshes"]
