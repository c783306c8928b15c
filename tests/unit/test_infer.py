"""`feedline infer`: a commented feed YAML from a sample that validates, and loads that sample unchanged."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from feedline.cli import app
from feedline.contract import DEFAULT_NULL_TOKENS, Feed, load_feed
from feedline.errors import BadFileError
from feedline.infer import infer_feed_yaml
from feedline.infer.columns import guess_column, identifiers
from feedline.infer.render import scalar
from feedline.pipeline import FeedPipeline, RunSummary
from feedline.settings import Settings
from feedline.warehouse.base import Warehouse
from support import age

runner = CliRunner()
CATEGORIES = ["tools", "Tools", "garden", "kitchen", "Garden"]
DISCOUNTS = ["5%", "10%", "N/A", "12.5%", "0%"]
CITIES = ["Zürich", "Genève", "Köln"]
STATUSES = ["OPEN", "Open", "open", "CLOSED", "closed", "PENDING"]


def _write(path: Path, rows: list[list[Any]], *, delimiter: str = ",", encoding: str = "utf-8") -> Path:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding=encoding, newline="") as fh:
        csv.writer(fh, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return path


def products_csv(path: Path, rows: int = 120) -> Path:
    """Dates in two formats in one column, '$1,234.50' prices, '12.5%' discounts, a natural key (SKU)."""
    lines: list[list[Any]] = [
        ["SKU", "Product Name", "Price", "Stock", "Released", "Restocked At", "Category", "Discount"]
    ]
    for i in range(rows):
        day, month = i % 28 + 1, i % 12 + 1
        released = f"2023-{month:02d}-{day:02d}" if i % 3 == 0 else f"{day:02d}/{month:02d}/2023"
        restocked = f"{month:02d}-{day:02d}-2024 {i % 24:02d}:{i % 60:02d}"
        price = Decimal(1000 + i * 12345) / 100
        name, category, discount = f"Widget {i}, large", CATEGORIES[i % 5], DISCOUNTS[i % 5]
        lines.append(
            [f"SK-{1000 + i}", name, f"${price:,.2f}", i % 50, released, restocked, category, discount]
        )
    return _write(path, lines)


def sales_csv(path: Path) -> Path:
    """Latin-1, ';'-separated, a composite key (store, day), decimal commas and zero-padded codes."""
    lines: list[list[Any]] = [["Store", "Sale Date", "City", "Quantité", "Prix", "Code postal", "Remarque"]]
    for store in range(1, 5):
        for day in range(1, 16):
            remark = ["", "geprüft", "?"][(store + day) % 3]
            price = f"{store * day},{day % 10}0"
            lines.append(
                [store, f"{day:02d}.03.2024", CITIES[store % 3], store + day, price, f"0{1000 + day}", remark]
            )
    return _write(path, lines, delimiter=";", encoding="latin-1")


def events_csv(path: Path, rows: int = 200) -> Path:
    """gzip: yes/no booleans, ISO and 12-hour timestamps, a status in several cases, an empty column."""
    lines: list[list[Any]] = [["Event ID", "isActive", "Created At", "Status", "Notes", "Score", "Channel"]]
    for i in range(rows):
        day = i % 28 + 1
        created = f"2024-03-{day:02d}T10:15:00" if i % 2 else f"03/{day:02d}/2024 {i % 12 + 1:02d}:30 PM"
        score = "" if i % 10 == 0 else f"{i % 7}.{i % 4}5"
        active = ["yes", "no", "Yes", "NO"][i % 4]
        lines.append([i + 1, active, created, STATUSES[i % 6], "", score, ["web", "app"][i % 2]])
    return _write(path, lines)


def infer(home: Path, sample: Path, feed: str, *extra: str) -> tuple[str, Feed]:
    """Run `feedline infer … --out feeds/<feed>.yaml` and load what it wrote as a feed."""
    out = home / "feeds" / f"{feed}.yaml"
    result = runner.invoke(app, ["infer", str(sample), "--feed", feed, "--out", str(out), *extra])
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert yaml.safe_load(text)["name"] == feed
    return text, load_feed(out)


def run_pipeline(home: Path, feed: Feed, sample: Path, warehouse: Warehouse | None = None) -> RunSummary:
    landing = home / "data" / "landing" / feed.name
    landing.mkdir(parents=True, exist_ok=True)
    age(Path(shutil.copy(sample, landing / sample.name)))
    return FeedPipeline(feed, Settings.from_env({"FEEDLINE_HOME": str(home)}), warehouse).run_once()


def select(pipeline_home: Path, sql: str, warehouse: Warehouse | None = None) -> list[tuple[Any, ...]]:
    import duckdb

    if warehouse is not None:
        with warehouse.transaction() as tx:
            tx.execute(sql)
            return tx.fetchall()
    with duckdb.connect(str(pipeline_home / "data" / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "feeds").mkdir()
    return tmp_path


def test_products_types_formats_cleaning_key_and_checks(home: Path) -> None:
    text, feed = infer(home, products_csv(home / "products.csv"), "products")
    col = feed.column
    assert [c.name for c in feed.columns] == [
        "sku", "product_name", "price", "stock", "released", "restocked_at", "category", "discount",
    ]  # fmt: skip
    assert col("product_name").source == "Product Name"
    assert {c.name: str(c.type) for c in feed.columns} == {
        "sku": "string", "product_name": "string", "price": "decimal(9,2)", "stock": "int",
        "released": "date", "restocked_at": "timestamp", "category": "string", "discount": "decimal(5,1)",
    }  # fmt: skip
    assert col("price").strip_chars == "$," and col("discount").strip_chars == "%"
    assert col("released").formats == ("%d/%m/%Y",)
    assert col("restocked_at").formats == ("%m-%d-%Y %H:%M",)
    assert col("category").case.value == "lower"
    assert col("category").accepted_values == ("garden", "kitchen", "tools")
    assert (col("price").min, col("stock").min, col("discount").min) == (0, 0, 0)
    assert col("sku").max_length == 16 and col("sku").min is None
    assert [c.name for c in feed.columns if not c.nullable] == [
        "sku", "product_name", "price", "stock", "released", "restocked_at", "category",
    ]  # fmt: skip
    assert feed.primary_key == ("sku",) and feed.target.mode.value == "upsert"
    assert feed.csv.delimiter == "," and feed.csv.encoding == "utf-8"
    checks = [c.model_dump(exclude_defaults=True, mode="json") for c in feed.checks]
    assert checks == [
        {"check": "unique", "columns": ["sku"]},
        {"check": "row_count", "min": 1.0},
        {"check": "null_rate", "column": "discount", "max": 0.4, "severity": "warn"},
    ]
    assert text.startswith("# Feed 'products' inferred by `feedline infer` from ")
    assert "products.csv (120 rows read)" in text.splitlines()[0] and "REVIEW BEFORE USE" in text
    assert "# 0 nulls in 120 rows" in text
    assert "# 24 nulls in 120 rows ('N/A' x24)" in text
    assert "# every value parses: 40 as ISO 8601, 80 as %d/%m/%Y" in text
    assert "# 3 distinct values in 120 rows" in text
    assert "numbers written with '$', ','" in text


def test_products_sample_loads_with_no_rejected_row(home: Path) -> None:
    sample = products_csv(home / "products.csv")
    _, feed = infer(home, sample, "products")
    summary = run_pipeline(home, feed, sample)
    assert summary.files == {"products.csv": "loaded"}
    assert (summary.rows_loaded, summary.rows_rejected) == (120, 0)
    total = sum(Decimal(1000 + i * 12345) / 100 for i in range(120))
    assert select(home, "SELECT sum(price), count(discount), max(released) FROM products") == [
        (total, 96, dt.date(2023, 12, 28))
    ]
    assert select(home, "SELECT released, restocked_at, category FROM products WHERE sku = 'SK-1001'") == [
        (dt.date(2023, 2, 2), dt.datetime(2024, 2, 2, 1, 1), "tools")
    ]


def test_latin1_semicolons_composite_key(home: Path) -> None:
    sample = sales_csv(home / "sales.csv")
    text, feed = infer(home, sample, "sales")
    assert (feed.csv.delimiter, feed.csv.encoding) == (";", "iso8859-1")
    assert "encoding: latin-1" in text and "not UTF-8 (byte 0xe9 in the rows read)" in text
    assert feed.primary_key == ("store", "sale_date")
    assert "primary_key: [store, sale_date]" in text
    col = feed.column
    assert col("quantite").source == "Quantité" and str(col("quantite").type) == "int"
    assert str(col("sale_date").type) == "date" and col("sale_date").formats == ("%d.%m.%Y",)
    assert str(col("prix").type) == "string", "a decimal comma is not a number the contract can read"
    assert str(col("code_postal").type) == "string", "zero-padded codes stay text"
    assert col("city").accepted_values == ("Genève", "Köln", "Zürich")
    remark = col("remarque")
    assert remark.nullable and remark.null_tokens == (*DEFAULT_NULL_TOKENS, "?")
    assert remark.accepted_values == ("geprüft",)
    assert "'?' seen as placeholders" in text
    assert [c.model_dump(exclude_defaults=True, mode="json") for c in feed.checks] == [
        {"check": "unique", "columns": ["store", "sale_date"]},
        {"check": "row_count", "min": 1.0},
    ]

    summary = run_pipeline(home, feed, sample)
    assert (summary.rows_loaded, summary.rows_rejected) == (60, 0)
    assert select(home, "SELECT city, count(*), count(remarque) FROM sales GROUP BY city ORDER BY city") == [
        ("Genève", 30, 10), ("Köln", 15, 5), ("Zürich", 15, 5),
    ]  # fmt: skip


def test_events_bools_timestamps_status_and_an_empty_column(home: Path, any_warehouse: Warehouse) -> None:
    sample = events_csv(home / "events.csv.gz")
    text, feed = infer(home, sample, "events")
    col = feed.column
    assert feed.csv.compression.value == "gzip" and feed.source.pattern == "*.csv*"
    assert [(c.name, str(c.type)) for c in feed.columns] == [
        ("event_id", "bigint"), ("is_active", "bool"), ("created_at", "timestamp"), ("status", "string"),
        ("notes", "string"), ("score", "decimal(5,2)"), ("channel", "string"),
    ]  # fmt: skip
    assert col("created_at").formats == ("%m/%d/%Y %I:%M %p",)
    assert col("status").case.value == "upper"
    assert col("status").accepted_values == ("CLOSED", "OPEN", "PENDING")
    notes = col("notes")
    assert notes.nullable and notes.accepted_values is None and notes.max_length is None
    assert "every value is empty or a placeholder: type unknown" in text
    assert feed.primary_key == ("event_id",)
    assert [(c.check.value, c.column, c.max) for c in feed.checks if c.check.value == "null_rate"] == [
        ("null_rate", "score", 0.2)
    ]

    summary = run_pipeline(home, feed, sample, any_warehouse)
    assert (summary.rows_loaded, summary.rows_rejected) == (200, 0)
    rows = select(
        home,
        "SELECT count(*), count(notes), count(score), sum(CASE WHEN is_active THEN 1 ELSE 0 END) FROM events",
        any_warehouse,
    )
    assert [tuple(int(v) for v in row) for row in rows] == [(200, 0, 180, 100)]
    first = select(home, "SELECT created_at, status FROM events WHERE event_id = 1", any_warehouse)
    assert first == [(dt.datetime(2024, 3, 1, 13, 30), "OPEN")]


def test_reads_only_the_rows_asked_for(home: Path) -> None:
    lines: list[list[Any]] = [["code", "amount"], *([f"c{i}", i] for i in range(1000))]
    lines[800][1] = "unknown amount"
    sample = _write(home / "long.csv", lines)
    text, feed = infer(home, sample, "long", "--rows", "500")
    assert "(500 rows read, the start of a longer file)" in text
    assert str(feed.column("amount").type) == "int"
    _, whole = infer(home, sample, "whole")
    assert str(whole.column("amount").type) == "string"


def test_gzip_without_a_gz_suffix_is_read_and_left_to_auto(home: Path) -> None:
    sample = home / "events.csv"
    sample.write_bytes(events_csv(home / "events.csv.gz").read_bytes())
    text, feed = infer(home, sample, "events")
    assert feed.csv.compression.value == "auto" and "gzip without a .gz suffix" in text
    assert str(feed.column("created_at").type) == "timestamp"
    assert (run_pipeline(home, feed, sample).rows_loaded, feed.primary_key) == (200, ("event_id",))


def test_no_key_means_append_and_says_so(home: Path) -> None:
    sample = _write(home / "dup.csv", [["name", "n"], *(["a", 1] for _ in range(5))])
    text, feed = infer(home, sample, "dup")
    assert feed.primary_key == () and feed.target.mode.value == "append"
    assert "primary_key: []" in text and "no set of up to three columns is unique" in text
    assert not [c for c in feed.checks if c.check.value == "unique"]


def test_day_and_month_that_could_be_swapped_are_flagged(home: Path) -> None:
    sample = _write(home / "swap.csv", [["id", "on"], *([i, f"{i:02d}/03/2024"] for i in range(1, 13))])
    text, feed = infer(home, sample, "swap")
    assert feed.column("on").formats == ("%d/%m/%Y",)
    assert "%d/%m/%Y values also read as %m/%d/%Y: check which is meant" in text


def test_a_type_the_transform_would_reject_falls_back_to_text() -> None:
    """Arabic-Indic digits match a digit regex, but no number cast reads them: the column stays text."""
    guess = guess_column("n", "n", pl.Series(["١٢٣", "5"]))
    assert guess.type == "string"
    assert "rejected some values in the transform: kept as text" in guess.settings["type"].note


def test_identifiers_from_headers() -> None:
    headers = ["Order ID", "customerEmail", "Prix (€)", "2nd line", "", "Order-ID", "Straße"]
    assert identifiers(headers) == [
        "order_id", "customer_email", "prix", "col_2nd_line", "column_5", "order_id_2", "strae",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "value",
    ["yes", "No", "null", "~", "1.5", "0", "a: b", "#x", "-", "?", "[x]", "{x}", "'q'", '"q"', "back\\slash",
     "", " lead", "é", "tab\there", "nel\x85", "line\u2028sep", "%d/%m/%Y", "@x", "`x", "*x", "&x", "!x",
     "data/landing/x", "utf-8", "x: y # z"],
)  # fmt: skip
def test_yaml_scalars_read_back_unchanged(value: str) -> None:
    assert yaml.safe_load(f"k: {scalar(value)}  # note\n") == {"k": value}
    assert yaml.safe_load(f"k: {scalar([value, 1, True])}\n") == {"k": [value, 1, True]}


def test_cli_prints_without_out_and_refuses_bad_requests(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "300")
    sample = _write(home / "tiny.csv", [["id", "v"], [1, "a"], [2, "b"]])
    printed = runner.invoke(app, ["infer", str(sample), "--feed", "tiny"])
    assert printed.exit_code == 0, printed.output
    assert yaml.safe_load(printed.output)["columns"][0] == {"name": "id", "type": "bigint", "nullable": False}

    bad_name = runner.invoke(app, ["infer", str(sample), "--feed", "Tiny Feed"])
    assert bad_name.exit_code == 2 and "'Tiny Feed' is not a feed name" in bad_name.output
    out = home / "feeds" / "tiny.yaml"
    out.write_text("keep me")
    exists = runner.invoke(app, ["infer", str(sample), "--feed", "tiny", "--out", str(out)])
    assert exists.exit_code == 2 and "pass --force" in exists.output and out.read_text() == "keep me"
    forced = runner.invoke(app, ["infer", str(sample), "--feed", "tiny", "--out", str(out), "--force"])
    assert forced.exit_code == 0 and load_feed(out).name == "tiny"
    other = runner.invoke(app, ["infer", str(sample), "--feed", "tiny", "--out", str(home / "x.yaml")])
    assert other.exit_code == 2 and "tiny.yaml" in other.output
    missing = runner.invoke(app, ["infer", str(home / "nope.csv"), "--feed", "tiny"])
    assert missing.exit_code == 2 and "nope.csv: no such file" in missing.output


def test_unloadable_samples_are_refused_with_the_reason(tmp_path: Path) -> None:
    twice = _write(tmp_path / "twice.csv", [["id", "ID"], [1, 2]])
    with pytest.raises(BadFileError, match=r"column 'ID' twice \(fields 1 and 2\)"):
        infer_feed_yaml(twice, "twice")
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(BadFileError, match="is empty"):
        infer_feed_yaml(tmp_path / "empty.csv", "empty")
