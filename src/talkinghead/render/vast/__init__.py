"""VAST's person-specific renderer: a U-Net + LSTM cGAN trained on a template video of the target."""
