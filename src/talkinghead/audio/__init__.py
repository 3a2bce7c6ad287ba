"""Audio analysis: mel spectrograms, phoneme timelines, voice activity, loudness."""
