"""Training (PyTorch Lightning): one module per model family."""
