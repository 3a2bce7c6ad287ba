"""IP_LAP stage 2: landmark sketches + reference faces + audio -> the face crop with its lower half generated."""
