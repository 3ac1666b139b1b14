"""Dataset preprocessing (LAION-Face, Lagenda) and the batch image tools align.py and convert.py."""
