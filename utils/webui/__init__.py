"""The browser UI of webui.py: a local Gradio page over the same swap pipeline as inference.py."""
