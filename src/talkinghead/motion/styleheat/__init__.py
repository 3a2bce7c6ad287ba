"""StyleHEAT: talking faces by warping the features of a trained style-based generator (video or audio driven),
calibration and attribute edits."""
