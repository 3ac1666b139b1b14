"""evaluate.py and the training validation: face-swap quality metrics (identity, pose, expression, eyes, video)."""
