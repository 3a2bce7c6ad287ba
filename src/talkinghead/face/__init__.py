"""Face analysis: detection, 478-point mesh, rigid pose, crop/align and paste-back."""
