"""Test-wide setup: every test process gets a private AIRFLOW_HOME before anything imports Airflow.

The config file is written here, at configure time, not by the first fixture that needs Airflow: any
earlier test that imports Airflow in-process (an S3 hook, a provider module) loads the configuration
once, and a file written after that would never be read by this process.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from airflow_home import BASE as _BASE
from airflow_home import STACK
from support import make_project


def pytest_configure(config: pytest.Config) -> None:
    os.environ["AIRFLOW_HOME"] = str(STACK.home)
    os.environ["AIRFLOW_CONFIG"] = str(STACK.home / "airflow.cfg")
    for name in [k for k in os.environ if k.startswith(("AIRFLOW__", "FEEDLINE_"))]:
        if name != "FEEDLINE_RELIABILITY_RECORD":  # the tests' own record (tests/support.py)
            os.environ.pop(name)
    make_project(STACK.project)
    STACK.configure()


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_BASE, ignore_errors=True)


@pytest.fixture(scope="session")
def test_base() -> Path:
    return _BASE
