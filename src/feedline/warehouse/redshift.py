"""Amazon Redshift over the PostgreSQL wire protocol: staging filled by COPY … FORMAT AS PARQUET from S3."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from feedline.errors import TerminalError, TransientError
from feedline.warehouse.base import Tx
from feedline.warehouse.dialect import ColumnDef, Dialect, TableRef
from feedline.warehouse.postgres import PostgresDialect, PostgresWarehouse

IAM_ROLE = re.compile(r"arn:aws[-a-z]*:iam::[0-9]{12}:role/[A-Za-z0-9_+=,.@/-]+")
S3_URI = re.compile(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[^'\\\x00-\x1f\x7f]+")
REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]")
ROLE_ENV, REGION_ENV = "FEEDLINE_REDSHIFT_IAM_ROLE", "FEEDLINE_REDSHIFT_REGION"
RANK = "_feedline_rank"
# Redshift reports these as internal errors (XX000); a retry can succeed.
_TRANSIENT_TEXT = ("serializable isolation violation", "s3serviceexception:slow down", "please retry",
                   "connection reset", "timed out", "throttl")  # fmt: skip


def literal(value: str) -> str:
    """A string literal for the few places Redshift takes no bind parameter (COPY's source and role)."""
    if "\\" in value or any(ord(ch) < 32 for ch in value):
        raise TerminalError(f"{value!r} cannot be a Redshift literal (backslash or control character)")
    return "'" + value.replace("'", "''") + "'"


def check_iam_role(arn: str) -> str:
    """An IAM role ARN, or `default` (the namespace's default role)."""
    if arn != "default" and not IAM_ROLE.fullmatch(arn):
        raise TerminalError(
            f"{arn!r} is not an IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>) or 'default'; "
            f"set the role Redshift assumes to read the processed bucket in ?iam_role= or {ROLE_ENV}"
        )
    return arn


def check_s3_uri(uri: str) -> str:
    if not S3_URI.fullmatch(uri):
        raise TerminalError(
            f"{uri!r} is not an s3://bucket/key URI without quotes or control characters; Redshift loads "
            "from S3 only: point FEEDLINE_LAKE at an s3:// location"
        )
    return uri


class RedshiftDialect(PostgresDialect):
    """Redshift's SQL: bounded VARCHAR, no row locks (LOCK the table), no ON CONFLICT, no indexes, no
    unlogged tables, and no row order after COPY from Parquet."""

    name: ClassVar[str] = "redshift"
    types = {**Dialect.types, "string": "VARCHAR(65535)"}
    for_update: ClassVar[str] = ""
    locks_tables: ClassVar[bool] = True
    on_conflict: ClassVar[bool] = False
    ledger_index: ClassVar[bool] = False
    key_index: ClassVar[bool] = False  # no indexes: sort and distribution keys are the table owner's choice
    unlogged_staging: ClassVar[bool] = False
    staging_row_order: ClassVar[bool] = False
    guards_delete_join: ClassVar[bool] = False  # no enable_hashjoin: Redshift plans its own joins
    add_column_if_not_exists: ClassVar[bool] = False
    alters_only_varchar_length: ClassVar[bool] = True
    alters_types_in_transaction: ClassVar[bool] = False

    def lock_table(self, ref: TableRef) -> str:
        """Redshift's only lock: exclusive on the table until the transaction ends (blocks writers, and
        avoids serializable-isolation aborts between concurrent ledger writers)."""
        return f"LOCK {self.table(ref)}"

    def copy_from_s3(self, staging: TableRef, uri: str, iam_role: str, region: str | None = None) -> str:
        """COPY one clean Parquet object into staging; Parquet columns map to the table's by position."""
        role = "default" if check_iam_role(iam_role) == "default" else literal(iam_role)
        sql = (
            f"COPY {self.table(staging)} FROM {literal(check_s3_uri(uri))} IAM_ROLE {role} FORMAT AS PARQUET"
        )
        if region is not None:
            if not REGION.fullmatch(region):
                raise TerminalError(f"{region!r} is not an AWS region name (e.g. eu-west-1)")
            sql += f" REGION {literal(region)}"
        return sql

    def dedupe(self, staging: TableRef, key: Sequence[str], columns: Sequence[str]) -> list[str]:
        """Keep one row per key. COPY from Parquet keeps no row order and Redshift has no ctid, so "the
        last row of the file" cannot be known here; the transform already keeps one row per key, so this
        is a safety net that keeps, of the rows sharing a key, the greatest by column values (ties are
        exact duplicates): deterministic across retries. Only keys seen twice are touched."""
        tbl = self.table(staging)
        dupes = self.quote("dup_" + staging.name.removeprefix("stg_"), "table name")
        cols, keys = self.columns(columns), self.columns(key)
        order = ", ".join(f"s.{self.quote(c)} DESC" for c in columns)
        twice = " AND ".join(f"s.{self.quote(k)} = d.{self.quote(k)}" for k in key)
        same = " AND ".join(f"{tbl}.{self.quote(k)} = {dupes}.{self.quote(k)}" for k in key)
        return [
            f"CREATE TEMP TABLE {dupes} AS SELECT {cols} FROM (SELECT {self.columns(columns, 's.')}, "
            f"ROW_NUMBER() OVER (PARTITION BY {self.columns(key, 's.')} ORDER BY {order}) AS {RANK} "
            f"FROM {tbl} AS s JOIN (SELECT {keys} FROM {tbl} GROUP BY {keys} HAVING count(*) > 1) AS d "
            f"ON {twice}) AS ranked WHERE {RANK} = 1",
            f"DELETE FROM {tbl} USING {dupes} WHERE {same}",
            f"INSERT INTO {tbl} ({cols}) SELECT {cols} FROM {dupes}",
            f"DROP TABLE {dupes}",
        ]


class RedshiftWarehouse(PostgresWarehouse):
    """A Redshift cluster or Serverless workgroup reached with psycopg (Redshift speaks the PostgreSQL
    protocol). `iam_role` is the role Redshift assumes to read the clean Parquet objects; `region` is
    needed only when the bucket is in another region than the cluster."""

    dialect: PostgresDialect = RedshiftDialect()
    kind: ClassVar[str] = "Redshift"
    bulk_publish: ClassVar[bool] = False  # COPY from S3 cannot add the lineage columns: always stage

    def __init__(
        self,
        dsn: str,
        *,
        iam_role: str,
        region: str | None = None,
        read_only: bool = False,
        connect_timeout: float = 10,
        application_name: str = "feedline",
    ) -> None:
        super().__init__(
            dsn, read_only=read_only, connect_timeout=connect_timeout, application_name=application_name
        )
        self.iam_role = check_iam_role(iam_role)
        if region is not None and not REGION.fullmatch(region):
            raise TerminalError(f"{region!r} is not an AWS region name (e.g. eu-west-1)")
        self.region = region

    @classmethod
    def from_url(cls, url: str, *, read_only: bool = False) -> RedshiftWarehouse:
        """redshift://user:password@host:5439/db?iam_role=arn…&region=…; the role (and region) may come
        from FEEDLINE_REDSHIFT_IAM_ROLE (FEEDLINE_REDSHIFT_REGION) instead."""
        query = dict(parse_qsl(urlsplit(url).query))
        role = query.get("iam_role") or os.environ.get(ROLE_ENV)
        if not role:
            raise TerminalError(
                f"warehouse {_redact(url)}: no IAM role for COPY; add ?iam_role=arn:aws:iam::…:role/… to the "
                f"URL or set {ROLE_ENV}"
            )
        region = query.get("region") or os.environ.get(REGION_ENV) or None
        return cls(url, iam_role=role, region=region, read_only=read_only)

    def _conninfo(self) -> str:
        """The libpq URL: scheme postgresql://, without feedline's own query parameters."""
        if "://" not in self.dsn:
            return self.dsn
        parts = urlsplit(self.dsn)
        query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("iam_role", "region")]
        return urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(query), parts.fragment))

    def _connect_kwargs(self) -> dict[str, Any]:
        import psycopg

        # Client-side binding and no prepared statements: what Redshift supports best over libpq.
        return {"cursor_factory": psycopg.ClientCursor, "prepare_threshold": None}

    def _fill_staging(
        self,
        tx: Tx,
        columns: Sequence[ColumnDef],
        staging: TableRef,
        parquet: Path,
        clean_uri: str,
        *,
        row_order: bool = True,
    ) -> None:
        """COPY the clean object from S3, after checking the local copy: COPY maps Parquet columns by
        position, and loads every object whose key starts with the URI, so the rows are counted too."""
        import pyarrow.parquet as pq

        names = [c.name for c in columns]
        found = pq.read_schema(parquet).names
        if found != names:
            raise TerminalError(
                f"{parquet.name}: columns {found} differ from the contract's {names}; Redshift's COPY maps "
                "Parquet columns by position: write exactly the contract's columns, in its order"
            )
        self._copy_into_staging(tx, columns, staging, parquet, clean_uri)
        expected = pq.ParquetFile(parquet).metadata.num_rows
        copied = int(tx.scalar(self.dialect.count(staging)))
        if copied != expected:
            raise TerminalError(
                f"COPY from {clean_uri} staged {copied} rows, the file has {expected}: another object "
                "shares its key prefix; remove it from the processed area, then replay the file"
            )

    def _copy_into_staging(
        self, tx: Tx, columns: Sequence[ColumnDef], staging: TableRef, parquet: Path, clean_uri: str
    ) -> None:
        assert isinstance(self.dialect, RedshiftDialect)
        tx.execute(self.dialect.copy_from_s3(staging, clean_uri, self.iam_role, self.region))

    def translate_error(self, exc: BaseException) -> BaseException:
        translated = super().translate_error(exc)
        if isinstance(translated, TerminalError) and any(t in str(exc).lower() for t in _TRANSIENT_TEXT):
            return TransientError(
                str(translated).replace("; fix the file or the table", "; retrying may succeed")
            )
        return translated


def _redact(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    return urlunsplit((parts.scheme, host + (f":{parts.port}" if parts.port else ""), parts.path, "", ""))
