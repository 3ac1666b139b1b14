"""Shared helpers: errors, devices, image conversion, checkpoints, alignment, paste-back."""
