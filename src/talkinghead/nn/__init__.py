"""Shared network layers, losses and the one checkpoint format."""
