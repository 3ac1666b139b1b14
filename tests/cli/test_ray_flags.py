"""Bad --ray_address inputs of the preprocessing scripts: one line, quickly, and no Ray instance started."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

import preprocess_lagenda
from tests.cli.conftest import lagenda_args, require_ray


@pytest.mark.parametrize("address, reason", [("127.0.0.1:9", "cannot reach the Ray cluster at 127.0.0.1:9"),
                                             ("192.0.2.1:6379", "cannot reach the Ray cluster at 192.0.2.1:6379"),
                                             ("not an address:x", "is not HOST:PORT")])
def test_an_unreachable_address_is_one_line_within_30_s(address: str, reason: str, tmp_path: Path,
                                                        lagenda_folder: Path, capsys) -> None:
    require_ray()
    argv = lagenda_args(lagenda_folder, tmp_path, tmp_path, "--no-retargeting", "--ray_address", address)
    started = time.monotonic()
    assert preprocess_lagenda.main(argv) == 1
    assert time.monotonic() - started < 30
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and reason in err[0], err


def test_without_ray_installed_the_error_names_the_requirements_file(tmp_path: Path, lagenda_folder: Path,
                                                                      monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    argv = lagenda_args(lagenda_folder, tmp_path, tmp_path, "--no-retargeting", "--ray_address", "local")
    assert preprocess_lagenda.main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install -r requirements-ray.txt" in err[0]
