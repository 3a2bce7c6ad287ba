"""StyleTalker: latent motion of the style-based generator from a conditional sequential VAE with a flow prior."""
