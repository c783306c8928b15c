"""Write docs/contracts.md, the feed YAML reference, from the pydantic models that validate feed files.

`python scripts/contracts_doc.py` rewrites the page; `--check` exits 1 when the page differs from what the
models say (a unit test runs it, so the reference cannot drift from the code). Every field of `Feed` and of
the models nested in it is found by walking `model_fields`: a field added to a model appears here with
its type, default, constraints and `description=` without touching this script.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import types
import typing
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "contracts.md"
EXAMPLE = REPO / "feeds" / "orders.yaml"
SCALARS = {str: "text", int: "integer", float: "number", bool: "true/false", type(None): "null"}
BOUNDS = {
    "ge": "at least",
    "gt": "more than",
    "le": "at most",
    "lt": "less than",
    "min_length": "at least",
    "max_length": "at most",
}

INTRO = """\
# Feed contract reference

A feed is one YAML file in `feeds/` (its file name is its `name`). It is validated when the DAGs are
parsed and by `feedline validate`; an invalid file is reported with its path, the field and the fix, and
never stops the other feeds. `feedline infer sample.csv --feed NAME` drafts one from a sample file.

*Generated from the pydantic models in `src/feedline/contract.py` and `src/feedline/quality/spec.py` by
`python scripts/contracts_doc.py`; do not edit by hand (a test fails when this page is stale).*

## A complete example

`feeds/orders.yaml`, the example feed this repository loads:

```yaml
{example}```

## Rules, checks and notifications

A second feed using the quality and notification sections (it is validated when this page is generated):

```yaml
{quality}```

Every field a feed leaves out takes its default, listed below. Types: *text* is a YAML string, *list of
X* a YAML sequence (`[a, b]` or one `- item` per line); a field marked *required* has no default.
"""

QUALITY_EXAMPLE = """\
name: invoices
source:
  uri: s3://acme-raw/invoices/        # or a folder such as data/landing/invoices
target:
  table: invoices
  mode: upsert
primary_key: [invoice_id]
columns:
  - name: invoice_id
    type: bigint
    nullable: false
  - name: customer_email
    type: string
    case: lower
    pattern: "^[^@ ]+@[^@ ]+$"         # row rule: a row whose value does not match is rejected
    max_length: 254
  - name: amount
    type: decimal(12,2)
    strip_chars: "$,"
    min: 0                             # row rule: negative amounts are rejected
  - name: status
    type: string
    case: lower
    accepted_values: [open, paid, void]
  - name: issued_at
    type: date
    formats: ["%d/%m/%Y"]
  - name: paid_at
    type: date
rules:                                 # several columns of one row; the name is the rejection reason
  - {name: paid_after_issued, expr: "paid_at is None or paid_at >= issued_at"}
checks:                                # on the staged batch, before it is published
  - {check: unique, columns: [invoice_id]}
  - {check: row_count, min: 1}
  - {check: null_rate, column: customer_email, max: 0.05, severity: warn}
  - {check: freshness, column: issued_at, max_age_hours: 72, severity: warn}
schema_policy: freeze                  # a file with columns the contract lacks is quarantined
notify:
  email: [data-team@example.com]
  slack_webhook_conn_id: slack_data    # an Airflow connection holding the webhook URL
"""


def render(root: type[BaseModel] | None = None, example: str | None = None) -> str:
    """The whole page: the example, then one section per model reachable from `root` (default: Feed)."""
    if root is None:
        from feedline.contract import Feed

        root = Feed
    text = INTRO.format(
        example=EXAMPLE.read_text(encoding="utf-8") if example is None else example,
        quality=_validated(QUALITY_EXAMPLE),
    )
    sections = [_section(model, path) for model, path in walk(root)]
    extra = _check_kinds() if root.__name__ == "Feed" else ""
    return text + "".join(sections) + extra


def _validated(text: str) -> str:
    """The example itself, once the contract accepts it (so the page never shows an invalid feed)."""
    import yaml

    from feedline.contract import parse_feed

    parse_feed(yaml.safe_load(text), "the quality example of scripts/contracts_doc.py")
    return text


def walk(root: type[BaseModel], path: str = "") -> Iterator[tuple[type[BaseModel], str]]:
    """Each model once, depth-first in field order, with the YAML path it first appears at."""
    seen: set[type[BaseModel]] = set()

    def visit(model: type[BaseModel], where: str) -> Iterator[tuple[type[BaseModel], str]]:
        if model in seen:
            return
        seen.add(model)
        yield model, where
        for name, info in model.model_fields.items():
            key = info.alias or name
            for nested, many in _models(info.annotation):
                child = f"{where}.{key}" if where else key
                yield from visit(nested, child + ("[]" if many else ""))

    yield from visit(root, path)


def _models(annotation: Any, many: bool = False) -> Iterator[tuple[type[BaseModel], bool]]:
    """Models inside an annotation, and whether they come as a list (tuple[Model, ...], list[Model])."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation, many
        return
    origin = typing.get_origin(annotation)
    listed = many or origin in (tuple, list, set, frozenset)
    for arg in typing.get_args(annotation):
        if arg is not Ellipsis:
            yield from _models(arg, listed)


def anchor(model: type[BaseModel]) -> str:
    return model.__name__.lower()


def _section(model: type[BaseModel], path: str) -> str:
    title = f"`{path}`" if path else "The feed file (top level)"
    lines = [f'\n<a id="{anchor(model)}"></a>\n', f"## {title} — {model.__name__}\n"]
    doc = _docstring(model)
    if doc:
        lines.append(f"\n{doc}\n")
    lines += ["\n| Field | Type | Default | Description |\n", "|---|---|---|---|\n"]
    for name, info in model.model_fields.items():
        lines.append(_row(name, info))
    return "".join(lines)


def _docstring(model: type[BaseModel]) -> str:
    """The model's own docstring (not pydantic's inherited one), with reST '::' made Markdown."""
    doc = model.__dict__.get("__doc__")
    return inspect.cleandoc(doc).replace("::\n", ":\n") if doc else ""


def _row(name: str, info: FieldInfo) -> str:
    key = info.alias or name
    described = info.description or _nested_doc(info.annotation) or ""
    bounds = _constraints(info)
    if bounds:
        described = f"{described} ({bounds})" if described else bounds
    cells = [f"`{key}`", type_text(info.annotation), _default(info), described]
    return "| " + " | ".join(_cell(c) for c in cells) + " |\n"


def _nested_doc(annotation: Any) -> str:
    """A model-typed field without a description is described by the first line of its model's docstring."""
    for model, _ in _models(annotation):
        doc = _docstring(model)
        if doc:
            return doc.splitlines()[0]
    return ""


def type_text(annotation: Any) -> str:
    """How a field's type reads to someone writing YAML."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_text(args[0])
    if origin in (typing.Union, types.UnionType):
        return " or ".join(dict.fromkeys(type_text(a) for a in args))
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{json.dumps(a)}`" for a in args)
    if origin in (tuple, list, set, frozenset):
        items = [a for a in args if a is not Ellipsis]
        if origin is tuple and Ellipsis not in args and items:
            return "list of exactly: " + ", ".join(type_text(a) for a in items)
        inner = type_text(items[0]) if items else "any"
        if inner.startswith("mapping: "):
            return "list of mappings: " + inner.removeprefix("mapping: ")
        return f"list of {inner}" if " " not in inner else f"list of ({inner})"
    if origin is dict:
        key, value = (type_text(a) for a in args) if args else ("text", "any")
        return f"mapping of {key} to {value}"
    if annotation is typing.Any:
        return "any"
    if isinstance(annotation, type):
        if annotation in SCALARS:
            return SCALARS[annotation]
        if issubclass(annotation, Enum):
            return "one of " + ", ".join(f"`{m.value}`" for m in annotation)
        if issubclass(annotation, BaseModel):
            return f"mapping: [{annotation.__name__}](#{anchor(annotation)})"
        return f"text (read as {annotation.__name__})"
    return str(annotation)


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "*required*"
    value = info.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "each field's default"
    return f"`{json.dumps(_plain(value), ensure_ascii=False)}`"


def _plain(value: Any) -> Any:
    """A default as YAML would spell it: enums by value, tuples as lists."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | list | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _constraints(info: FieldInfo) -> str:
    """Bounds declared on the field (ge=, gt=, le=, lt=, min_length=, max_length=)."""
    found = []
    for item in info.metadata:
        for attr, word in BOUNDS.items():
            bound = getattr(item, attr, None)
            if bound is not None:
                unit = (" item" if bound == 1 else " items") if "length" in attr else ""
                found.append(f"{word} {bound}{unit}")
    return "; ".join(found)


def _cell(text: str) -> str:
    """Table-safe: '|' would end the cell, and '<name>' would vanish as an HTML tag."""
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")


def _check_kinds() -> str:
    """Which fields each batch check takes, from the table `Check` validates against."""
    from feedline.quality.spec import CHECK_FIELDS, Check

    fields = Check.model_fields

    lines = [
        '\n<a id="check-kinds"></a>\n',
        "## Check kinds\n",
        "\nBesides `check`, `name` and `severity`, each kind of `checks[]` entry takes these fields:\n",
        "\n| check | requires | may also take |\n",
        "|---|---|---|\n",
    ]
    for kind, (required, optional) in CHECK_FIELDS.items():
        names = [
            ", ".join(sorted(f"`{fields[f].alias or f}`" for f in group)) or "—"
            for group in (required, optional)
        ]
        lines.append(f"| `{kind.value}` | {names[0]} | {names[1]} |\n")
    return "".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if the page is stale; write nothing")
    args = parser.parse_args(argv)
    text = render()
    current = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    if args.check:
        if current != text:
            print(f"{DOC.relative_to(REPO)} is stale: run `python scripts/contracts_doc.py`", file=sys.stderr)
            return 1
        return 0
    if current != text:
        DOC.write_text(text, encoding="utf-8")
        print(f"wrote {DOC.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
