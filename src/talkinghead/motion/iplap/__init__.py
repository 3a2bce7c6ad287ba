"""IP_LAP stage 1: audio -> lip and jaw landmarks, conditioned on pose-prior and reference landmarks."""
