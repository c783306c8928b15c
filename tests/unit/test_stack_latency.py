"""The local stack's latency settings: the scheduler preloads the task libraries; small files load inline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from feedline.stack import INLINE_MAX_BYTES, TASK_LIBRARIES, Stack


def _stack(tmp_path: Path, **kwargs: object) -> Stack:
    return Stack(project=tmp_path / "project", home=tmp_path / "home", port=8089, **kwargs)  # type: ignore[arg-type]


def _modules_after_settings(settings: Path, component: str) -> set[str]:
    """Which task libraries an `airflow <component>` has imported once the settings file ran and the
    process forked a child (as the scheduler forks its LocalExecutor workers)."""
    code = (
        f"import os, runpy, sys; sys.argv = ['airflow', {component!r}]; runpy.run_path({str(settings)!r}); "
        "pid = os.fork(); pid or os._exit(0); os.waitpid(pid, 0); "
        f"print(','.join(m for m in {TASK_LIBRARIES!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return {m for m in out.strip().split(",") if m}


def test_only_the_scheduler_imports_the_task_libraries(tmp_path: Path) -> None:
    stack = _stack(tmp_path)
    stack.configure()
    settings = stack.home / "config" / "airflow_local_settings.py"

    assert _modules_after_settings(settings, "scheduler") == set(TASK_LIBRARIES)
    assert _modules_after_settings(settings, "triggerer") == set()
    assert _modules_after_settings(settings, "api-server") == set()


def test_small_files_load_inline_unless_told_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FEEDLINE_INLINE_MAX_BYTES", raising=False)
    assert _stack(tmp_path).env()["FEEDLINE_INLINE_MAX_BYTES"] == str(INLINE_MAX_BYTES)
    off = _stack(tmp_path, env_extra={"FEEDLINE_INLINE_MAX_BYTES": "0"})
    assert off.env()["FEEDLINE_INLINE_MAX_BYTES"] == "0"
    monkeypatch.setenv("FEEDLINE_INLINE_MAX_BYTES", "1000")
    assert _stack(tmp_path).env()["FEEDLINE_INLINE_MAX_BYTES"] == "1000"
