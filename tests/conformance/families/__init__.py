"""Per-family conformance checkers (``MANIFESTS`` / ``VECTORS`` tables, see tests/conformance/runner.py).

``IMPLEMENTED`` lists the families whose issue has landed: the test suite treats a MISSING vector of
such a family as a failure; for the others it is an expected failure until their issue lands.
"""

IMPLEMENTED: frozenset[str] = frozenset()
