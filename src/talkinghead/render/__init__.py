"""Renderers: reference image(s) + FaceMotion -> frames."""
