"""The fault catalog stays true to the suite: every entry names a fault test that exists, every fault test
has an entry, and each text is one clean line for the generated docs/reliability.md."""

from __future__ import annotations

import ast
from pathlib import Path

from catalog import FAULTS, markdown

from support import REPO

HERE = Path(__file__).parent


def _fault_tests() -> set[str]:
    found = set()
    for module in sorted(HERE.glob("test_fault_*.py")):
        if module.name == Path(__file__).name:
            continue
        tree = ast.parse(module.read_text())
        found |= {
            f"tests/faults/{module.name}::{node.name}"
            for node in tree.body
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
        }
    return found


def test_every_entry_names_an_existing_test_and_every_fault_test_has_one() -> None:
    named = [fault.test for fault in FAULTS]
    assert len(set(named)) == len(named), "one entry per test"
    assert all((REPO / test.split("::")[0]).is_file() for test in named)
    assert set(named) == _fault_tests()


def test_entries_are_single_clean_lines() -> None:
    assert len({fault.name for fault in FAULTS}) == len(FAULTS)
    for fault in FAULTS:
        for text in (fault.name, fault.injected, fault.recovery, fault.outcome):
            assert text and text == text.strip() and "\n" not in text and "|" not in text, (fault.name, text)
    table = markdown()
    assert table.count("\n| ") == len(FAULTS)  # one row per fault after the header
