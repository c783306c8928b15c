"""One streaming pass from a landed CSV to clean and rejected Parquet, with counts that must balance."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from feedline.contract import Feed
from feedline.errors import BadFileError
from feedline.transform.clean import ColumnRule, polars_type
from feedline.transform.read import EXTRA, Layout, layout, locate_bad_utf8, readable
from feedline.transform.result import InvariantError, TransformResult

PARTIAL = ".partial"


@dataclass(frozen=True)
class _Counts:
    rows_in: int
    last_line: int
    valid: int


def transform_file(feed: Feed, source: Path, clean_path: Path, rejected_path: Path) -> TransformResult:
    """Clean, type and dedupe one CSV per its feed contract into Parquet; bad rows go to `rejected_path`.

    Memory stays bounded whatever the file size (polars streaming); only the dedupe keeps state, one entry
    per distinct primary key. Raises `BadFileError` when the file as a whole cannot be read as declared,
    and `InvariantError` if rows in != rows out + rejected + duplicates. On any error neither output exists.
    """
    started = time.perf_counter()
    source, clean_path, rejected_path = Path(source), Path(clean_path), Path(rejected_path)
    clean_tmp = clean_path.with_name(clean_path.name + PARTIAL)
    rejected_tmp = rejected_path.with_name(rejected_path.name + PARTIAL)
    outputs = (clean_tmp, rejected_tmp, clean_path, rejected_path)
    try:
        bytes_in = source.stat().st_size
        for path in outputs[:2]:
            path.parent.mkdir(parents=True, exist_ok=True)
        with readable(feed, source, clean_tmp.parent) as text:
            counts = _stream(feed, layout(feed, text, source), clean_tmp, rejected_tmp, source)
        rows_out, rows_rejected = _parquet_rows(clean_tmp), _parquet_rows(rejected_tmp)
        result = TransformResult(
            rows_in=counts.rows_in,
            rows_out=rows_out,
            rows_rejected=rows_rejected,
            duplicates_dropped=counts.valid - rows_out,
            bytes_in=bytes_in,
            seconds=round(time.perf_counter() - started, 3),
        )
        _check(feed, result, counts, source)
        clean_tmp.replace(clean_path)
        rejected_tmp.replace(rejected_path)
        return result
    except BaseException:
        for path in outputs:
            path.unlink(missing_ok=True)
        raise


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


def _parquet_rows(path: Path) -> int:
    return int(pq.read_metadata(path).num_rows)


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
    rules = [ColumnRule.of(column, feed) for column in feed.columns]
    raws = [pl.col(lay.field(p)) for p in lay.positions]
    names = [column.name for column in feed.columns]
    plan = lay.scan(feed)
    plan = plan.with_columns(
        rule.trimmed(raw).alias(f"_t{i}") for i, (rule, raw) in enumerate(zip(rules, raws, strict=True))
    )
    plan = plan.with_columns(
        rule.normalised(pl.col(f"_t{i}")).alias(f"_s{i}") for i, rule in enumerate(rules)
    )
    for stage in _align([rule.stages(f"_s{i}", rule.column.name) for i, rule in enumerate(rules)]):
        plan = plan.with_columns(stage)
    blank = pl.all_horizontal(raw.is_null() for raw in raws)
    ok = [pl.col(EXTRA).is_null(), ~blank]
    for i, rule in enumerate(rules):
        present = pl.col(rule.column.name).is_not_null()
        ok.append(present | pl.col(f"_s{i}").is_null() if rule.column.nullable else present)
    base = plan.select("_line", EXTRA, *raws, *names, pl.all_horizontal(ok).alias("_ok"))

    valid = base.filter(pl.col("_ok")).select(
        pl.col(name).cast(polars_type(column.type)) for name, column in zip(names, feed.columns, strict=True)
    )
    if feed.primary_key:
        key = pl.col(feed.primary_key[0]) if len(feed.primary_key) == 1 else pl.struct(feed.primary_key)
        valid = valid.filter(key.is_first_distinct())
    reasons = [rule.reason(raw) for rule, raw in zip(rules, raws, strict=True)]
    reason = (
        pl.when(pl.col(EXTRA).is_not_null())
        .then(pl.lit(f"row has more than {lay.fields} fields"))
        .when(blank)
        .then(pl.lit("row is empty"))
        .otherwise(pl.concat_str(reasons, separator="; ", ignore_nulls=True))
    )
    rejected = base.filter(~pl.col("_ok")).select(
        pl.col("_line").cast(pl.Int64),
        reason.alias("_reason"),
        *(raw.alias(name) for raw, name in zip(raws, names, strict=True)),
    )
    stats = base.select(
        pl.len().alias("rows"), pl.col("_line").max().alias("last"), pl.col("_ok").sum().alias("valid")
    )
    plans = [
        valid.sink_parquet(clean_tmp, compression="zstd", lazy=True),
        rejected.sink_parquet(rejected_tmp, compression="zstd", lazy=True),
        stats,
    ]
    try:
        *_, counts = pl.collect_all(plans, engine="streaming")
    except pl.exceptions.ComputeError as exc:
        message = str(exc).strip().splitlines()[0]
        if "utf-8" in message.lower() or "utf8" in message.lower():
            raise BadFileError(
                f"{origin}: cannot be decoded as UTF-8 ({locate_bad_utf8(lay.path)}); set csv.encoding in "
                "the feed to the file's encoding (e.g. latin-1) or re-export it as UTF-8"
            ) from None
        raise BadFileError(
            f"{origin}: cannot be read as CSV ({message}); fix the file or the feed's csv options"
        ) from exc
    row = counts.row(0, named=True)
    return _Counts(rows_in=int(row["rows"]), last_line=int(row["last"] or 0), valid=int(row["valid"] or 0))
