"""Test-wide setup: every test process gets a private AIRFLOW_HOME before anything imports Airflow."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

_BASE = Path(tempfile.mkdtemp(prefix="feedline-tests-"))


def pytest_configure(config: pytest.Config) -> None:
    os.environ["AIRFLOW_HOME"] = str(_BASE / "airflow")
    os.environ["AIRFLOW_CONFIG"] = str(_BASE / "airflow" / "airflow.cfg")
    for name in [k for k in os.environ if k.startswith(("AIRFLOW__", "FEEDLINE_"))]:
        if name != "FEEDLINE_RELIABILITY_RECORD":  # the tests' own record (tests/support.py)
            os.environ.pop(name)


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_BASE, ignore_errors=True)


@pytest.fixture(scope="session")
def test_base() -> Path:
    return _BASE
