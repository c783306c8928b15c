"""One streaming pass from a landed CSV to clean and rejected Parquet, with counts that must balance."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from feedline.contract import Dedupe, Feed
from feedline.errors import BadFileError, ContractError
from feedline.transform.clean import ColumnRule, polars_type
from feedline.transform.read import EXTRA, LINE, Layout, layout, not_utf8, readable, unclosed_quote
from feedline.transform.result import InvariantError, TransformResult
from feedline.transform.rules import row_checks

log = logging.getLogger(__name__)

PARTIAL = ".partial"
RESERVED = ("_line", "_reason")
REJECTED_ROW_GROUP = 10_000
"""Rejected rows are a few here and there, and each pins the read buffer it came from until its row group is
written: small row groups keep that from adding ~250 MB on a 1 GB file."""
CLEAN_ZSTD_LEVEL = 1
"""zstd level 1, not polars' default 3: on the orders sample the clean file grows ~5% (6.34 -> 6.66 MB for
50 MB of CSV) and the whole transform runs ~1% fewer instructions (docs/benchmarks.md)."""


@dataclass(frozen=True)
class _Counts:
    rows_in: int
    last_line: int
    valid: int


def transform_file(feed: Feed, source: Path, clean_path: Path, rejected_path: Path) -> TransformResult:
    """Clean, type and dedupe one CSV per its feed contract into Parquet; bad rows go to `rejected_path`.

    Rules worth knowing (the contract's field docs cover the rest):
    - a value with more decimals than its decimal(p,s) scale is rejected, never rounded (trailing zeros pass);
    - within the file the *first* valid row of a primary key wins, or the last with `dedupe: last`, which
      needs state for every row (polars' `is_last_distinct`) where the first needs one entry per key;
    - a row with more fields than the header (beyond trailing empty ones), or with every field empty, is
      rejected with that reason; a row with fewer fields reads the missing ones as empty (polars cannot
      tell them apart);
    - with `header: false` columns are positional, in contract order.

    Memory stays bounded whatever the file size (polars streaming); only the dedupe keeps state, one entry
    per distinct primary key. Raises `BadFileError` when the file as a whole cannot be read as declared,
    and `InvariantError` if rows in != rows out + rejected + duplicates. On any error neither output exists.
    """
    started = time.perf_counter()
    _check_names(feed)
    source, clean_path, rejected_path = Path(source), Path(clean_path), Path(rejected_path)
    clean_tmp = clean_path.with_name(clean_path.name + PARTIAL)
    rejected_tmp = rejected_path.with_name(rejected_path.name + PARTIAL)
    outputs = (clean_tmp, rejected_tmp, clean_path, rejected_path)
    try:
        bytes_in = source.stat().st_size
        for path in outputs[:2]:
            path.parent.mkdir(parents=True, exist_ok=True)
        with readable(feed, source, clean_tmp.parent) as text:
            lay = layout(feed, text, source)
            _report_columns(feed, lay, source)
            counts = _stream(feed, lay, clean_tmp, rejected_tmp, source)
        rows_out, rows_rejected = _parquet_rows(clean_tmp), _parquet_rows(rejected_tmp)
        result = TransformResult(
            rows_in=counts.rows_in,
            rows_out=rows_out,
            rows_rejected=rows_rejected,
            duplicates_dropped=counts.valid - rows_out,
            bytes_in=bytes_in,
            seconds=round(time.perf_counter() - started, 3),
            columns_dropped=lay.dropped,
        )
        _check(feed, result, counts, source)
        clean_tmp.replace(clean_path)
        rejected_tmp.replace(rejected_path)
        return result
    except BaseException:
        for path in outputs:
            path.unlink(missing_ok=True)
        raise


def _check_names(feed: Feed) -> None:
    clashes = [c.name for c in feed.columns if c.name in RESERVED or c.name.startswith("__")]
    if clashes:
        raise ContractError(
            f"feed {feed.name}: column name(s) {', '.join(clashes)} are reserved by the transform "
            "(_line, _reason and names starting with '__'); rename them and set `source` to the header"
        )


def _report_columns(feed: Feed, lay: Layout, source: Path) -> None:
    """Log what the schema policy did with the header columns the contract lacks."""
    if lay.dropped:
        log.info(
            "%s: dropped %d column(s) feed %s does not declare (schema_policy %s): %s",
            source, len(lay.dropped), feed.name, feed.schema_policy, ", ".join(lay.dropped),
        )  # fmt: skip
    added = lay.columns[len(feed.columns) :]
    if added:
        log.info(
            "%s: %d column(s) feed %s does not declare travel on as text (schema_policy evolve): %s",
            source, len(added), feed.name, ", ".join(f"{c.header} -> {c.name}" for c in added),
        )  # fmt: skip


def _check(feed: Feed, result: TransformResult, counts: _Counts, source: Path) -> None:
    problems = []
    if counts.rows_in != counts.last_line:
        problems.append(f"{counts.rows_in} rows scanned but the last row number is {counts.last_line}")
    if counts.valid + result.rows_rejected != result.rows_in:
        problems.append(f"{counts.valid} valid + {result.rows_rejected} rejected != {result.rows_in} rows in")
    if result.duplicates_dropped < 0 or (not feed.primary_key and result.duplicates_dropped):
        problems.append(f"{result.rows_out} rows written from {counts.valid} valid rows")
    if problems or not result.balanced:
        raise InvariantError(f"{source}: row accounting does not balance ({'; '.join(problems)}): {result}")


def _unreadable(feed: Feed, origin: Path, path: Path, message: str) -> str:
    """Why polars could not read the file; a quoted field that never closes is named with its line."""
    quote = feed.csv.quote
    if message.startswith(f"could not parse `{quote}"):
        line = unclosed_quote(feed, path)
        if line is not None:
            start = message.removeprefix("could not parse `")[:40]
            return (
                f"{origin}: has an unterminated quote: the quoted field starting {start!r} on line {line} "
                "never closes, so it would swallow the rest of the file; fix the quoting in the export (a "
                f"quote inside a quoted value is written twice: {quote}{quote})"
            )
    return f"{origin}: cannot be read as CSV ({message}); fix the file or the feed's csv options"


def _parquet_rows(path: Path) -> int:
    """Rows in a written Parquet file, from its footer."""
    return int(pl.scan_parquet(path).select(pl.len()).collect().item())


def _align(per_column: list[list[list[pl.Expr]]]) -> list[list[pl.Expr]]:
    """Merge each column's plan steps so that every column's last step lands in the last common step."""
    depth = max(len(steps) for steps in per_column)
    merged: list[list[pl.Expr]] = [[] for _ in range(depth)]
    for steps in per_column:
        for offset, step in enumerate(steps, start=depth - len(steps)):
            merged[offset].extend(step)
    return merged


def _stream(feed: Feed, lay: Layout, clean_tmp: Path, rejected_tmp: Path, origin: Path) -> _Counts:
    """Build the plan — one scan shared by the clean sink, the rejected sink and the counts — and run it."""
    columns = lay.columns
    rules = [ColumnRule.of(column, feed) for column in columns]
    raws = [pl.col(lay.field(p)) for p in lay.positions]
    names = [column.name for column in columns]
    plan = lay.scan(feed)
    plan = plan.with_columns(
        rule.trimmed(raw).alias(f"__t{i}") for i, (rule, raw) in enumerate(zip(rules, raws, strict=True))
    )
    plan = plan.with_columns(
        rule.normalised(pl.col(f"__t{i}")).alias(f"__s{i}") for i, rule in enumerate(rules)
    )
    for stage in _align([rule.stages(f"__s{i}", rule.column.name) for i, rule in enumerate(rules)]):
        plan = plan.with_columns(stage)
    blank = pl.all_horizontal(raw.is_null() for raw in raws)
    ok = [pl.col(EXTRA).is_null(), ~blank]
    for i, rule in enumerate(rules):
        present = pl.col(rule.column.name).is_not_null()
        ok.append(present | pl.col(f"__s{i}").is_null() if rule.column.nullable else present)
    checks = row_checks(feed, columns)
    ok.extend(~check.broken for check in checks)
    cleaned = [pl.col(f"__s{i}") for i in range(len(rules))]
    base = plan.select(LINE, EXTRA, *raws, *names, *cleaned, pl.all_horizontal(ok).alias("__ok"))

    valid = base.filter(pl.col("__ok")).select(
        pl.col(name).cast(polars_type(column.type)) for name, column in zip(names, columns, strict=True)
    )
    if feed.primary_key:
        key = pl.col(feed.primary_key[0]) if len(feed.primary_key) == 1 else pl.struct(feed.primary_key)
        valid = valid.filter(
            key.is_last_distinct() if feed.dedupe is Dedupe.last else key.is_first_distinct()
        )
    reasons = [
        rule.reason(raw, text, pl.col(rule.column.name))
        for rule, raw, text in zip(rules, raws, cleaned, strict=True)
    ]
    reasons.extend(check.reason for check in checks)
    reason = (
        pl.when(pl.col(EXTRA).is_not_null())
        .then(pl.lit(f"row has more than {lay.fields} fields"))
        .when(blank)
        .then(pl.lit("row is empty"))
        .otherwise(pl.concat_str(reasons, separator="; ", ignore_nulls=True))
    )
    rejected = base.filter(~pl.col("__ok")).select(
        pl.col(LINE).cast(pl.Int64).alias("_line"),
        reason.alias("_reason"),
        *(raw.alias(name) for raw, name in zip(raws, names, strict=True)),
    )
    stats = base.select(
        pl.len().alias("rows"), pl.col(LINE).max().alias("last"), pl.col("__ok").sum().alias("valid")
    )
    plans = [
        valid.sink_parquet(clean_tmp, compression="zstd", compression_level=CLEAN_ZSTD_LEVEL, lazy=True),
        rejected.sink_parquet(rejected_tmp, compression="zstd", row_group_size=REJECTED_ROW_GROUP, lazy=True),
        stats,
    ]
    try:
        *_, counts = pl.collect_all(plans, engine="streaming")
    except pl.exceptions.ComputeError as exc:
        message = str(exc).strip().splitlines()[0]
        if "utf-8" in message.lower() or "utf8" in message.lower():
            raise BadFileError(not_utf8(origin, lay.path)) from None
        raise BadFileError(_unreadable(feed, origin, lay.path, message)) from exc
    row = counts.row(0, named=True)
    return _Counts(rows_in=int(row["rows"]), last_line=int(row["last"] or 0), valid=int(row["valid"] or 0))
