"""The default renderer: mesh-driven piecewise-affine warping of the reference; the mouth's inside is drawn by a
small learned painter (or, with ``mouth="painted"``, by a weight-free painted interior)."""
