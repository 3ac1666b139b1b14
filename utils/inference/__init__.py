"""The swap pipeline of inference.py and demo.py, and the embedding comparison of embedding_distance.py."""
