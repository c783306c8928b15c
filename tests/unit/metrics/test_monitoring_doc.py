"""docs/monitoring.md documents every metric feedline records, with its unit."""

from __future__ import annotations

import re

from feedline.metrics import CATALOG
from support import REPO


def test_every_metric_is_documented_with_its_unit() -> None:
    text = (REPO / "docs" / "monitoring.md").read_text()
    text = text.split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]  # other sections document other things
    documented = dict(re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \| (\w+) \|", text, flags=re.MULTILINE))
    assert documented == {name: str(d.unit) for name, d in CATALOG.items()}
