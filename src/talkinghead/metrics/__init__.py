"""Metrics: identity (dlib embeddings), landmark and mouth-motion measures."""
