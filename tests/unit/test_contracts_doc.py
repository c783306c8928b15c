"""docs/contracts.md is what scripts/contracts_doc.py generates from the models, and the generator reads any
model: nested models, enums, tuples, unions, literals, aliases and bounds."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from enum import StrEnum
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import pytest
import yaml
from pydantic import BaseModel, Field

from feedline.contract import Feed, parse_feed
from support import REPO

SCRIPT = REPO / "scripts" / "contracts_doc.py"
DOC = REPO / "docs" / "contracts.md"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("contracts_doc", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


doc_script = _load()


def test_the_page_is_what_the_models_generate() -> None:
    generated = doc_script.render()
    assert DOC.read_text(encoding="utf-8") == generated, (
        "docs/contracts.md is stale: run `.venv/bin/python scripts/contracts_doc.py` and commit the result"
    )


def test_check_mode_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    stale = tmp_path / "contracts.md"
    stale.write_text(DOC.read_text(encoding="utf-8").replace("| `trim` |", "| `trimmed` |"))
    monkeypatch.setattr(doc_script, "DOC", stale)
    monkeypatch.setattr(doc_script, "REPO", tmp_path)
    assert doc_script.main(["--check"]) == 1
    assert "| `trimmed` |" in stale.read_text(), "--check writes nothing"
    assert doc_script.main([]) == 0
    assert stale.read_text(encoding="utf-8") == doc_script.render()


def test_every_field_of_every_model_is_documented_under_its_yaml_name() -> None:
    page = DOC.read_text(encoding="utf-8")
    models = list(doc_script.walk(Feed))
    assert [path for _, path in models] == [
        "", "source", "csv", "columns[]", "target", "retries", "schedule", "notify", "rules[]", "checks[]",
        "sla", "monitoring",
    ]  # fmt: skip
    for model, _ in models:
        section = page.split(f'<a id="{model.__name__.lower()}"></a>')[1].split("<a id=")[0]
        for name, info in model.model_fields.items():
            assert f"| `{info.alias or name}` |" in section, f"{model.__name__}.{name} is missing"
    assert "| `schema` | text or null | `null` |" in page and "`schema_`" not in page


def test_the_examples_on_the_page_are_valid_feeds() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) == 2
    feeds = [parse_feed(yaml.safe_load(block), "docs/contracts.md") for block in blocks]
    assert [f.name for f in feeds] == ["orders", "invoices"]
    assert blocks[0] == (REPO / "feeds" / "orders.yaml").read_text(encoding="utf-8")
    assert feeds[1].checks and feeds[1].rules and feeds[1].notify.has_routes


class Colour(StrEnum):
    red = "red"
    blue = "blue"


class Inner(BaseModel):
    """An inner model.

    With a second paragraph.
    """

    depth: int = Field(2, ge=1, le=9, description="How deep.")


class Outer(BaseModel):
    """The outer model."""

    colour: Colour = Field(Colour.red, description="A colour | with a pipe.")
    pair: tuple[int, str] = (1, "a")
    many: tuple[Inner, ...] = Field((), min_length=1)
    maybe: Inner | None = None
    inner: Inner = Field(default_factory=Inner)
    mode: Literal["a", "b"] = "a"
    lookup: dict[str, float] = Field(default_factory=dict, description="Keyed <things>.")
    schema_: str | None = Field(None, alias="schema")
    anything: Any = None
    required: list[Colour | int]


def test_the_generator_reads_any_model() -> None:
    page = doc_script.render(Outer, example="name: x\n")
    assert [path for _, path in doc_script.walk(Outer)] == ["", "many[]"]
    rows = {line.split(" | ")[0].strip("| `"): line for line in page.splitlines() if line.startswith("| `")}
    assert rows["colour"] == '| `colour` | one of `red`, `blue` | `"red"` | A colour \\| with a pipe. |'
    assert rows["pair"] == '| `pair` | list of exactly: integer, text | `[1, "a"]` |  |'
    assert rows["many"].startswith("| `many` | list of mappings: [Inner](#inner) | `[]` | An inner model.")
    assert rows["many"].endswith("(at least 1 item) |")
    assert rows["maybe"] == "| `maybe` | mapping: [Inner](#inner) or null | `null` | An inner model. |"
    assert rows["inner"] == "| `inner` | mapping: [Inner](#inner) | each field's default | An inner model. |"
    assert rows["mode"] == '| `mode` | one of `"a"`, `"b"` | `"a"` |  |'
    assert rows["lookup"] == "| `lookup` | mapping of text to number | `{}` | Keyed &lt;things&gt;. |"
    assert rows["schema"] == "| `schema` | text or null | `null` |  |"
    assert rows["anything"] == "| `anything` | any | `null` |  |"
    assert rows["required"] == "| `required` | list of (one of `red`, `blue` or integer) | *required* |  |"
    assert rows["depth"] == "| `depth` | integer | `2` | How deep. (at least 1; at most 9) |"
    assert "An inner model.\n\nWith a second paragraph." in page
    assert "Check kinds" not in page
