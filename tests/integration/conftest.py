"""One migrated Airflow environment shared by every integration test (importing Airflow costs ~7 s)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from feedline.stack import Stack, free_port
from support import make_project

@pytest.fixture(scope="session")
def airflow_project(test_base: Path) -> Iterator[Stack]:
    """A migrated Airflow metadata DB and config whose dags folder is a throwaway project's."""
    project = make_project(test_base / "project")
    stack = Stack(project=project, home=Path(os.environ["AIRFLOW_HOME"]), port=free_port(), parallelism=2)
    stack.configure()
    stack.migrate()
    os.environ["FEEDLINE_HOME"] = str(project)
    yield stack
    stack.stop()
