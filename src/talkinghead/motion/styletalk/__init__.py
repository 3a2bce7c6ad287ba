"""StyleTalk: speaking style from a style clip's expression sequence, style-controllable dynamic decoder."""
