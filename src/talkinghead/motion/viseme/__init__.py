"""The default motion model: phonemes -> viseme mouth shapes, blinks and head motion (no training)."""
