"""StyleHEAT: talking faces by warping a trained style-based generator's features (video / audio driven), calibration and attribute edits."""
