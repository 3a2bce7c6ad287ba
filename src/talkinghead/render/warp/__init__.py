"""The default renderer: mesh-driven piecewise-affine warping of the reference (no weights)."""
