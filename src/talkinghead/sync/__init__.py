"""Lip-sync expert: SyncNet (contrastive, as StyleTalker §3.1, or binary, as Wav2Lip) and sync metrics."""
