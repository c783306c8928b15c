"""The feed contract: valid feeds parse, invalid ones fail naming the file, the field and the fix."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from feedline.contract import ColumnType, LoadMode, load_feed, load_feeds, parse_feed
from feedline.errors import ContractError

REPO = Path(__file__).resolve().parents[2]

BASE: dict[str, Any] = {
    "name": "orders",
    "source": {"uri": "data/landing/orders", "pattern": "*.csv"},
    "columns": [
        {"name": "id", "type": "bigint", "nullable": False},
        {"name": "amount", "type": "decimal(12,2)", "strip_chars": "$,"},
        {"name": "at", "type": "timestamp", "formats": ["%d/%m/%Y %H:%M"]},
    ],
    "primary_key": ["id"],
    "target": {"table": "orders", "mode": "upsert"},
}


def feed_with(**changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(BASE)
    raw.update(changes)
    return raw


def error_of(raw: Any) -> str:
    with pytest.raises(ContractError) as info:
        parse_feed(raw, "feeds/orders.yaml")
    return str(info.value)


def test_example_feed_is_valid() -> None:
    feed = load_feed(REPO / "feeds" / "orders.yaml")
    assert feed.name == "orders"
    assert feed.target.mode is LoadMode.upsert
    assert feed.primary_key == ("order_id",)
    assert str(feed.column("amount").type) == "decimal(12,2)"
    assert feed.dag_id == "feed_orders"


def test_defaults_are_filled() -> None:
    feed = parse_feed(BASE, "x")
    assert feed.csv.delimiter == ","
    assert feed.csv.encoding == "utf-8"
    assert feed.retries.retries == 3
    assert feed.retries.exponential_backoff is True
    assert feed.retries.max_delay_seconds == 1800
    assert feed.column("amount").nullable is True


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bigint", ColumnType("bigint")),
        ("Decimal(10, 3)", ColumnType("decimal", 10, 3)),
        ("integer", ColumnType("int")),
        ("boolean", ColumnType("bool")),
        ("datetime", ColumnType("timestamp")),
    ],
)
def test_type_parsing(text: str, expected: ColumnType) -> None:
    assert ColumnType.parse(text) == expected


def test_misspelled_type_names_file_field_and_suggestion() -> None:
    raw = feed_with(columns=[*BASE["columns"][:1], {"name": "amount", "type": "decmial"}])
    message = error_of(raw)
    assert message.startswith("feeds/orders.yaml: columns.amount.type: 'decmial' is not a type")
    assert "did you mean 'decimal'?" in message


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        (
            {"columns": [{"name": "id", "type": "decimal(50,2)", "nullable": False}]},
            "precision 50 is out of range",
        ),
        (
            {"columns": [{"name": "id", "type": "decimal(4,6)", "nullable": False}]},
            "scale 6 exceeds precision 4",
        ),
        ({"columns": [{"name": "id", "type": "decimal", "nullable": False}]}, "write e.g. 'decimal(12,2)'"),
        ({"primary_key": ["idd"]}, "primary_key: 'idd' is not a column; did you mean 'id'?"),
        ({"primary_key": ["amount"]}, "must be declared 'nullable: false'"),
        (
            {"primary_key": [], "target": {"table": "orders", "mode": "upsert"}},
            "'upsert' needs a primary_key",
        ),
        (
            {"primary_key": [], "target": {"table": "orders", "mode": "append", "index_key": True}},
            "target.index_key indexes the primary_key; declare one or remove index_key",
        ),
        ({"primary_key": [], "target": {"table": "o"}, "dedupe": "last"}, "dedupe 'last' keeps one row per"),
        ({"dedupe": "newest"}, "dedupe"),
        ({"target": {"table": "orders; DROP TABLE x", "mode": "append"}}, "is not a valid table name"),
        ({"name": "Orders-2"}, "is not a feed name"),
        ({"source": {"uri": "../../etc", "pattern": "*"}}, "must not contain '..'"),
        ({"source": {"uri": "data", "pattern": "../*.csv"}}, "must not contain '..'"),
        ({"csv": {"delimiter": ";;"}}, "csv.delimiter: ';;' must be exactly one character"),
        ({"csv": {"encoding": "klingon"}}, "not a known text encoding"),
        ({"target": {"table": "orders", "mode": "merge"}}, "target.mode"),
        ({"retries": {"retries": -1}}, "retries.retries"),
    ],
)
def test_invalid_fields_are_named(changes: dict[str, Any], fragment: str) -> None:
    assert fragment in error_of(feed_with(**changes))


def test_unknown_and_missing_fields() -> None:
    raw = feed_with(target={"tabel": "orders", "mode": "append"}, retires=2)
    message = error_of(raw)
    assert "feeds/orders.yaml: target.tabel: unknown field; did you mean 'table'?" in message
    assert "feeds/orders.yaml: target.table: required field is missing; add it" in message
    assert "feeds/orders.yaml: retires: unknown field; did you mean 'retries'?" in message


def test_duplicate_columns_and_formats_on_wrong_type() -> None:
    assert "id declared twice" in error_of(
        feed_with(columns=[*BASE["columns"], {"name": "id", "type": "int"}])
    )
    bad = {"name": "amount", "type": "int", "formats": ["%Y"]}
    assert "'formats' applies to date and timestamp columns" in error_of(
        feed_with(columns=[*BASE["columns"][:1], bad])
    )


def test_not_a_mapping() -> None:
    assert "must be a YAML mapping" in error_of(["a", "list"])


def test_load_feeds_isolates_bad_files(tmp_path: Path) -> None:
    (tmp_path / "orders.yaml").write_text(yaml.safe_dump(BASE))
    broken = feed_with(
        name="invoices",
        columns=[{"name": "id", "type": "bigint", "nullable": False}, {"name": "x", "type": "decmial"}],
    )
    (tmp_path / "invoices.yaml").write_text(yaml.safe_dump(broken))
    (tmp_path / "syntax.yaml").write_text("name: [unclosed\n")
    (tmp_path / "misnamed.yaml").write_text(yaml.safe_dump(feed_with(name="other", target={"table": "o2"})))
    (tmp_path / "same_table.yaml").write_text(yaml.safe_dump(feed_with(name="same_table")))
    result = load_feeds(tmp_path)
    assert [f.name for f in result.feeds] == ["orders"]
    errors = {Path(p).name: str(e) for p, e in result.errors.items()}
    assert set(errors) == {"invoices.yaml", "syntax.yaml", "misnamed.yaml", "same_table.yaml"}
    assert "invoices.yaml: columns.x.type: 'decmial' is not a type" in errors["invoices.yaml"]
    assert "is not valid YAML" in errors["syntax.yaml"] and "line 2" in errors["syntax.yaml"]
    assert "differs from the file name" in errors["misnamed.yaml"]
    assert "already loaded by feed 'orders'" in errors["same_table.yaml"]


def test_a_rule_that_cannot_run_fails_when_the_feed_is_loaded(tmp_path: Path) -> None:
    """Not at the first file's transform: `feedline validate` and the DAG factory see it."""
    good = feed_with(rules=[{"name": "positive", "expr": "amount > 0"}])
    (tmp_path / "orders.yaml").write_text(yaml.safe_dump(good))
    assert load_feed(tmp_path / "orders.yaml").rules[0].name == "positive"
    typo = feed_with(rules=[{"name": "positive", "expr": "at > 5"}])
    (tmp_path / "orders.yaml").write_text(yaml.safe_dump(typo))
    with pytest.raises(ContractError) as info:
        load_feed(tmp_path / "orders.yaml")
    assert str(info.value).startswith(f"{tmp_path / 'orders.yaml'}: feed orders: rules.positive: ")
    assert "5 is not a timestamp; write it as ISO 8601 text" in str(info.value)
    bad_column = feed_with(
        columns=[*BASE["columns"][:1], {"name": "amount", "type": "int", "accepted_values": ["x"]}]
    )
    (tmp_path / "orders.yaml").write_text(yaml.safe_dump(bad_column))
    errors = load_feeds(tmp_path).errors
    assert "columns.amount.accepted_values: 'x' is not a number" in str(errors[str(tmp_path / "orders.yaml")])


def test_a_dumped_feed_validates_again_as_json() -> None:
    """The Lambda event carries the feed as JSON: the dump must parse back to the same contract."""
    import json

    feed = load_feed(REPO / "feeds" / "orders.yaml")
    dumped = json.loads(json.dumps(feed.model_dump(mode="json", by_alias=True)))
    assert [c["type"] for c in dumped["columns"]][::4] == ["bigint", "decimal(12,2)", "bool"]
    assert parse_feed(dumped, "event") == feed


def test_notify_defaults_send_nothing_without_routes() -> None:
    notify = parse_feed(BASE, "x").notify
    assert (notify.on_failure, notify.on_success, notify.on_quarantine) == (True, False, True)
    assert notify.has_routes is False
    assert not any(notify.sends(event) for event in ("failure", "success", "quarantine"))


def test_notify_routes_and_events() -> None:
    notify = parse_feed(
        feed_with(notify={"email": " ops@example.com ", "slack_webhook_conn_id": "feedline_slack"}), "x"
    ).notify
    assert notify.email == ("ops@example.com",)  # one address may be written without a list
    assert notify.smtp_conn_id == "smtp_default"
    assert [notify.sends(e) for e in ("failure", "success", "quarantine")] == [True, False, True]


@pytest.mark.parametrize(
    ("notify", "fragment"),
    [
        (
            {"email": ["ops@example.com", "ops.example.com"]},
            "notify.email: 'ops.example.com' is not an email address; write it as e.g. ops@example.com",
        ),
        ({"email": "a@b.com, c@d.com"}, "notify.email: 'a@b.com, c@d.com' is not an email address"),
        ({"email": ["ops@example.com"], "from_email": "feedline@"}, "notify.from_email: 'feedline@' is not"),
        ({"from_email": "feedline@example.com"}, "notify: from_email is set but email lists no recipient"),
        ({"smtp_conn_id": "my smtp"}, "notify.smtp_conn_id: 'my smtp' is not an Airflow connection id"),
        ({"on_failure": "sometimes"}, "notify.on_failure: Input should be a valid boolean"),
        ({"on_sucess": True}, "notify.on_sucess: unknown field; did you mean 'on_success'?"),
    ],
)
def test_invalid_notify_fields_are_named(notify: dict[str, Any], fragment: str) -> None:
    assert fragment in error_of(feed_with(notify=notify))


def test_a_webhook_url_in_the_feed_is_refused_without_echoing_it() -> None:
    url = "https://hooks.slack.com/services/T0001/B0001/s3cr3tt0k3n"
    message = error_of(feed_with(notify={"slack_webhook_conn_id": url}))
    assert "notify.slack_webhook_conn_id: looks like a URL or token" in message
    assert "put it in an Airflow connection" in message
    assert "s3cr3tt0k3n" not in message
