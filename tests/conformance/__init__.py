"""Conformance checks against the kit in ../shared/conformance (see runner.py)."""
