"""The Lambda handler on local folders, and the packaging checks that keep the zip small and complete."""

from __future__ import annotations

import importlib.util
import sys
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import polars as pl
import pytest

from feedline.contract import load_feed
from feedline.errors import BadFileError, ContractError, TerminalError
from feedline.sample import write_orders_csv

REPO = Path(__file__).resolve().parents[2]


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"feedline_lambda_{name}", REPO / "lambda" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


handler = load("handler").handler
package = load("package")
FEED = load_feed(REPO / "feeds" / "orders.yaml")


def event(tmp_path: Path, key: str) -> dict[str, Any]:
    return {
        "feed": FEED.model_dump(mode="json", by_alias=True),
        "file_id": "f1",
        "source_uri": (tmp_path / "landing").as_uri(),
        "key": key,
        "processed_uri": (tmp_path / "processed").as_uri(),
        "quarantine_uri": (tmp_path / "quarantine").as_uri(),
    }


def test_handler_transforms_one_object_and_returns_json_metrics(tmp_path: Path) -> None:
    stats = write_orders_csv(tmp_path / "landing" / "a.csv", rows=200, seed=5)
    for area in ("processed", "quarantine"):
        (tmp_path / area).mkdir()

    result = handler(event(tmp_path, "a.csv"), None)

    assert (result["rows_in"], result["rows_rejected"]) == (stats.rows, stats.bad)
    assert pl.read_parquet(tmp_path / "processed" / "f1.parquet").height == result["rows_out"]
    assert result["rejected_uri"].endswith("quarantine/rows/f1.parquet")


def test_handler_raises_feedline_errors_as_they_are(tmp_path: Path) -> None:
    (tmp_path / "landing").mkdir()
    (tmp_path / "landing" / "bad.csv").write_text("order_id\n1\n")
    with pytest.raises(BadFileError, match=r"bad\.csv"):
        handler(event(tmp_path, "bad.csv"), None)
    with pytest.raises(TerminalError, match="lacks feed, source_uri"):
        handler({"file_id": "x"}, None)
    broken = event(tmp_path, "bad.csv")
    broken["feed"] = {**broken["feed"], "target": {}}
    with pytest.raises(ContractError, match=r"feed 'orders' in the event: target\.table"):
        handler(broken, None)


def test_locked_pins_read_the_lock_file() -> None:
    pins = package.locked_pins()
    assert {"polars", "pydantic", "pydantic-core", "pyyaml", "typing-extensions"} <= set(pins)
    assert package.normalise("Typing_Extensions") == "typing-extensions"


def test_import_check_names_what_the_zip_would_lack(tmp_path: Path) -> None:
    (tmp_path / "feedline").mkdir()
    (tmp_path / "yaml").mkdir()
    (tmp_path / "feedline" / "ok.py").write_text("import json\nimport yaml\nfrom feedline import ok\n")
    package.check_imports(tmp_path)
    (tmp_path / "feedline" / "bad.py").write_text(
        "import pyarrow.parquet\nfrom feedline.warehouse import base\n\ndef lazy():\n    import duckdb\n"
    )
    with pytest.raises(package.PackageError) as caught:
        package.check_imports(tmp_path)
    assert str(caught.value).splitlines() == [
        "feedline/bad.py imports pyarrow.parquet, which the zip does not bundle",
        "feedline/bad.py imports feedline.warehouse; add it to FEEDLINE_PARTS",
    ]


def test_zips_are_reproducible(tmp_path: Path) -> None:
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "src" / "pkg" / "b.py").write_text("b = 1\n")
    (tmp_path / "src" / "a.so").write_bytes(b"\x7fELF")
    (tmp_path / "src" / "a.so").chmod(0o755)
    package.write_zip(tmp_path / "src", tmp_path / "one.zip")
    (tmp_path / "src" / "pkg" / "b.py").touch()
    package.write_zip(tmp_path / "src", tmp_path / "two.zip")
    assert (tmp_path / "one.zip").read_bytes() == (tmp_path / "two.zip").read_bytes()
    with zipfile.ZipFile(tmp_path / "one.zip") as zf:
        modes = {i.filename: i.external_attr >> 16 for i in zf.infolist()}
    assert modes == {"a.so": 0o100755, "pkg/b.py": 0o100644}
