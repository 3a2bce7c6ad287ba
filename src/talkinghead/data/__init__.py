"""Training data: preprocessing of real corpora, the synthetic corpus, datasets and data cards."""
