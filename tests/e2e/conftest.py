"""Markers of the end-to-end tests beyond pyproject's: `celery` lets the Celery scale-out be deselected."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "celery: starts a CeleryExecutor stack (Redis, PostgreSQL, two workers); -m 'not celery'"
    )
