"""The one Airflow deployment of a test process, configured by tests/conftest.py before any test runs."""

from __future__ import annotations

import tempfile
from pathlib import Path

from feedline.stack import Stack, free_port

BASE = Path(tempfile.mkdtemp(prefix="feedline-tests-"))
#: Its dags folder is a throwaway project's (made by tests/conftest.py); the metadata DB is migrated
#: by the integration tests' `airflow_project` fixture, the first time one needs it.
STACK = Stack(project=BASE / "project", home=BASE / "airflow", port=free_port(), parallelism=2)
