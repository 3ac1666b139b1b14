"""The conformance kit as part of the test suite: one test per manifest and per vector."""
from __future__ import annotations

import os

import pytest

from tests.conformance.families import IMPLEMENTED, noise_limited_reason
from tests.conformance.runner import default_kit, discover, run_one

KIT = default_kit()


def _cases() -> list:
    if not KIT.is_dir():
        reason = f"conformance kit {KIT} not found (set GHOSTV2_CONFORMANCE_KIT)"
        if os.environ.get("CI") == "true":
            return [pytest.param(None, None, None, id="kit-missing")]
        return [pytest.param(None, None, None, id="kit-missing", marks=pytest.mark.skip(reason=reason))]
    return [pytest.param(family, kind, path, id=f"{family}/{path.stem}") for family, kind, path in discover(KIT)]


@pytest.mark.parametrize(("family", "kind", "path"), _cases())
def test_conformance(family, kind, path) -> None:
    if family is None:
        pytest.fail(f"conformance kit {KIT} is missing; CI must run with ../shared beside the checkout")
    outcome = run_one(family, kind, path)
    if outcome.status == "SKIP":
        pytest.skip(outcome.detail)
    if outcome.status == "MISSING":
        if family in IMPLEMENTED:
            pytest.fail(f"{family} is implemented but {path.name} has no check: {outcome.detail}")
        pytest.xfail(f"family {family} not implemented yet")
    report = "\n".join([outcome.line(), *outcome.failures])
    reason = noise_limited_reason(family, path.stem, outcome.failures) if outcome.status == "FAIL" else None
    if reason:
        pytest.xfail(f"{reason}\n{report}")
    assert outcome.status == "PASS", report
