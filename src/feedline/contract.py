"""The feed contract: what a feed's YAML file may say, validated at load time.

A feed file that does not validate raises a `ContractError` whose message names the file, the field
and the fix; `load_feeds` collects those errors per file so that one bad feed never hides the others.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from feedline.errors import ContractError
from feedline.quality.spec import (
    COLUMN_TYPES,
    NUMBER_TYPES,
    Check,
    RowRule,
    SchemaPolicy,
    check_pattern,
)

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
FEED_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
DEFAULT_NULL_TOKENS = ("", "null", "NULL", "None", "N/A", "n/a", "NA", "-")
SCALAR_TYPES = ("string", "int", "bigint", "float", "bool", "date", "timestamp")
DECIMAL = re.compile(r"^decimal\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)$")


def _suggest(value: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def check_identifier(value: str, what: str) -> str:
    """Accept only plain SQL identifiers, so that quoting can never be escaped."""
    if not IDENTIFIER.match(value):
        raise ValueError(
            f"{value!r} is not a valid {what}: use letters, digits and '_' (not starting with a digit, "
            "at most 63 characters)"
        )
    return value


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class ColumnType:
    """A column's logical type; `decimal` carries precision and scale."""

    name: str
    precision: int | None = None
    scale: int | None = None

    def __str__(self) -> str:
        if self.name == "decimal":
            return f"decimal({self.precision},{self.scale})"
        return self.name

    @classmethod
    def parse(cls, text: str) -> ColumnType:
        raw = str(text).strip().lower()
        if raw in SCALAR_TYPES:
            return cls(raw)
        if raw in ("integer", "int32"):
            return cls("int")
        if raw in ("int64", "long"):
            return cls("bigint")
        if raw in ("double", "float64", "real"):
            return cls("float")
        if raw in ("boolean",):
            return cls("bool")
        if raw in ("text", "varchar", "str"):
            return cls("string")
        if raw in ("datetime",):
            return cls("timestamp")
        match = DECIMAL.match(raw)
        if match:
            precision, scale = int(match.group(1)), int(match.group(2))
            if not 1 <= precision <= 38:
                raise ValueError(f"decimal precision {precision} is out of range; use 1 to 38")
            if scale > precision:
                raise ValueError(
                    f"decimal scale {scale} exceeds precision {precision}; use scale <= precision"
                )
            return cls("decimal", precision, scale)
        if raw == "decimal":
            raise ValueError("'decimal' needs a precision and scale; write e.g. 'decimal(12,2)'")
        known = [*SCALAR_TYPES, "decimal"]
        raise ValueError(f"{text!r} is not a type{_suggest(raw, known)} (types: {', '.join(known)}(p,s))")


class Case(StrEnum):
    keep = "keep"
    lower = "lower"  # type: ignore[assignment]
    upper = "upper"  # type: ignore[assignment]


class Column(Strict):
    """One column of the contract: its type, nullability and how raw text is cleaned before typing."""

    name: str = Field(description="Column name in the target table.")
    type: ColumnType = Field(description="string, int, bigint, float, bool, date, timestamp or decimal(p,s).")
    source: str | None = Field(None, description="Header name in the file, if it differs from `name`.")
    nullable: bool = Field(True, description="If false, a row without a value is rejected.")
    trim: bool = Field(True, description="Strip surrounding whitespace.")
    case: Case = Field(Case.keep, description="keep, lower or upper.")
    strip_chars: str = Field("", description="Characters removed anywhere in the value, e.g. '$,'.")
    null_tokens: tuple[str, ...] | None = Field(
        None, description="Values read as null (after trimming); defaults to the feed's csv.null_tokens."
    )
    formats: tuple[str, ...] = Field(
        (),
        description="strftime formats tried in order for date/timestamp columns; ISO 8601 is always tried.",
    )
    true_values: tuple[str, ...] = Field(
        ("true", "t", "yes", "y", "1"), description="bool: values read as true."
    )
    false_values: tuple[str, ...] = Field(
        ("false", "f", "no", "n", "0"), description="bool: values read as false."
    )
    accepted_values: tuple[str | int | float | bool, ...] | None = Field(
        None, description="Rule: the only values allowed (after cleaning and typing); others are rejected."
    )
    min: float | str | None = Field(
        None, description="Rule: the lowest value allowed (a number, or an ISO date/timestamp for times)."
    )
    max: float | str | None = Field(
        None, description="Rule: the highest value allowed (a number, or an ISO date/timestamp for times)."
    )
    pattern: str | None = Field(
        None, description="Rule (string): a regular expression the whole value must match."
    )
    max_length: int | None = Field(None, ge=1, description="Rule (string): the most characters allowed.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_identifier(value, "column name")

    @field_validator("type", mode="before")
    @classmethod
    def _type(cls, value: Any) -> ColumnType:
        return value if isinstance(value, ColumnType) else ColumnType.parse(value)

    @field_serializer("type")
    def _type_text(self, value: ColumnType) -> str:
        """Dump the type as it is written, so a dumped feed validates again (e.g. in a Lambda event)."""
        return str(value)

    @model_validator(mode="after")
    def _formats_only_for_times(self) -> Column:
        if self.formats and self.type.name not in ("date", "timestamp"):
            raise ValueError(f"'formats' applies to date and timestamp columns, not {self.type}; remove it")
        return self

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        return check_pattern(value)

    @model_validator(mode="after")
    def _rules_fit_the_type(self) -> Column:
        kind = self.type.name
        for rule in ("pattern", "max_length"):
            if getattr(self, rule) is not None and kind != "string":
                raise ValueError(f"'{rule}' applies to string columns, not {self.type}; remove it")
        for rule in ("min", "max"):
            bound = getattr(self, rule)
            if bound is None:
                continue
            if kind in ("string", "bool"):
                raise ValueError(f"'{rule}' applies to numbers, dates and timestamps, not {self.type}")
            if kind in ("date", "timestamp"):
                _iso_bound(bound, rule)
            elif isinstance(bound, str):
                raise ValueError(f"'{rule}' of a {self.type} column must be a number, not {bound!r}")
        return self

    @property
    def header(self) -> str:
        return self.source if self.source is not None else self.name

    @property
    def has_rules(self) -> bool:
        """Whether the column declares a rule (accepted_values, min, max, pattern, max_length)."""
        rules = (self.accepted_values, self.min, self.max, self.pattern, self.max_length)
        return any(rule is not None for rule in rules)


def _iso_bound(value: float | str, rule: str) -> None:
    from datetime import datetime

    try:
        datetime.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"'{rule}' of a date/timestamp column must be ISO 8601, e.g. 2024-01-31") from None


class Compression(StrEnum):
    auto = "auto"
    none = "none"
    gzip = "gzip"


class CsvOptions(Strict):
    """How the raw files are read."""

    delimiter: str = Field(",", description="One-character field separator.")
    header: bool = Field(True, description="Whether the first line names the columns.")
    encoding: str = Field("utf-8", description="Text encoding of the file, e.g. utf-8, latin-1, utf-16.")
    quote: str = Field('"', description="One-character quote.")
    compression: Compression = Field(
        Compression.auto, description="auto (by .gz suffix / magic), none or gzip."
    )
    null_tokens: tuple[str, ...] = Field(
        DEFAULT_NULL_TOKENS, description="Values read as null in every column."
    )

    @field_validator("delimiter", "quote")
    @classmethod
    def _one_char(cls, value: str) -> str:
        if len(value) != 1:
            raise ValueError(f"{value!r} must be exactly one character")
        return value

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, value: str) -> str:
        import codecs

        try:
            return codecs.lookup(value).name
        except LookupError:
            raise ValueError(
                f"{value!r} is not a known text encoding; use e.g. utf-8, latin-1 or utf-16"
            ) from None


class Source(Strict):
    """Where a feed's files land: a folder (relative to the project home) or an s3:// prefix."""

    uri: str = Field(description="Folder path or s3://bucket/prefix/.")
    pattern: str = Field("*.csv*", description="Glob matched against the key relative to the source.")
    settle_seconds: float = Field(
        2.0, ge=0, description="A local file is picked up only once its size and mtime are this old."
    )

    @field_validator("uri")
    @classmethod
    def _uri(cls, value: str) -> str:
        if value.startswith("s3://"):
            if not re.match(r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?$", value):
                raise ValueError(f"{value!r} is not an s3://bucket/prefix URI")
        elif "://" in value and not value.startswith("file://"):
            raise ValueError(f"{value!r}: use a folder path, file:// or s3://")
        if ".." in Path(value.removeprefix("file://")).parts:
            raise ValueError(f"{value!r} must not contain '..'")
        return value

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        if value.startswith("/") or ".." in value.split("/"):
            raise ValueError(f"{value!r} must be relative to the source and must not contain '..'")
        return value

    @property
    def is_s3(self) -> bool:
        return self.uri.startswith("s3://")


class Dedupe(StrEnum):
    first = "first"
    last = "last"


class LoadMode(StrEnum):
    append = "append"
    upsert = "upsert"
    replace = "replace"  # type: ignore[assignment]


class Target(Strict):
    """The warehouse table a feed loads into, and how."""

    table: str = Field(description="Target table name.")
    schema_: str | None = Field(
        None, alias="schema", description="Target schema; the warehouse default if unset."
    )
    mode: LoadMode = Field(LoadMode.append, description="append, upsert (needs primary_key) or replace.")
    index_key: bool = Field(
        False,
        description="PostgreSQL: index the primary key in the target table, so that an upsert finds the "
        "rows a file replaces through the index instead of scanning the whole table (many small files "
        "into a large table); it slows loads that replace most of a large table. Ignored by DuckDB and "
        "Redshift.",
    )

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("table")
    @classmethod
    def _table(cls, value: str) -> str:
        return check_identifier(value, "table name")

    @field_validator("schema_")
    @classmethod
    def _schema(cls, value: str | None) -> str | None:
        return None if value is None else check_identifier(value, "schema name")


class Retries(Strict):
    """Retry policy for transient errors; terminal errors never retry."""

    retries: int = Field(3, ge=0, le=20, description="Attempts after the first.")
    delay_seconds: float = Field(30, gt=0, description="First retry delay.")
    exponential_backoff: bool = Field(True, description="Double the delay on each retry.")
    max_delay_seconds: float = Field(1800, gt=0, description="Upper bound of a retry delay.")


class Trigger(StrEnum):
    watcher = "watcher"
    sensor = "sensor"


class Schedule(Strict):
    """How a feed's runs start: on file events (watcher) or a deferrable sensor, plus a sweep."""

    trigger: Trigger = Field(
        Trigger.watcher, description="watcher (asset events) or sensor (deferrable FileSensor)."
    )
    sweep: str | None = Field(
        "*/30 * * * *",
        description="Cron of the fallback sweep that catches anything an event missed; null for none.",
    )
    poll_seconds: float = Field(1.0, gt=0, le=3600, description="How often the watcher or sensor looks.")


EMAIL = re.compile(r"^[^@\s,;<>\"'()\[\]]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
CONN_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,250}$")


def check_email(value: str) -> str:
    """Accept a plain address (user@example.com); display names and lists belong elsewhere."""
    address = value.strip()
    if not EMAIL.match(address):
        raise ValueError(f"{value!r} is not an email address; write it as e.g. ops@example.com")
    return address


def check_conn_id(value: str) -> str:
    """A connection id, never the secret itself: a URL or token here would put a credential in the feed."""
    if "://" in value or "/" in value:
        raise ValueError(
            "looks like a URL or token, which must not be in a feed file; put it in an Airflow connection "
            "(`airflow connections add …`) and name that connection here"
        )
    if not CONN_ID.match(value):
        raise ValueError(f"{value!r} is not an Airflow connection id; use letters, digits, '_', '-' and '.'")
    return value


class Notify(Strict):
    """Who hears about a feed: email over SMTP and/or a Slack incoming webhook.

    Only connection ids appear here; hosts, passwords and webhook URLs live in Airflow connections so a
    feed file can be shared and committed. With no route (no `email`, no `slack_webhook_conn_id`)
    nothing is sent and nothing fails.
    """

    on_failure: bool = Field(True, description="Notify when a task of the feed fails after its last retry.")
    on_success: bool = Field(False, description="Notify when a run that handled at least one file succeeds.")
    on_quarantine: bool = Field(
        True, description="Notify when a file is quarantined (bad data or a contract it does not meet)."
    )
    email: tuple[str, ...] = Field(
        (), description="Email recipients (one address or a list); empty: no email is sent."
    )
    smtp_conn_id: str = Field(
        "smtp_default", description="Airflow SMTP connection the email goes through (host, port, login)."
    )
    from_email: str | None = Field(
        None, description="Sender address; if unset, the SMTP connection's `from_email` extra."
    )
    slack_webhook_conn_id: str | None = Field(
        None,
        description="Airflow Slack incoming-webhook connection (the webhook URL is its password); "
        "unset: no Slack message.",
    )

    @field_validator("email", mode="before")
    @classmethod
    def _email_list(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("email")
    @classmethod
    def _emails(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(check_email(v) for v in value))

    @field_validator("from_email")
    @classmethod
    def _from_email(cls, value: str | None) -> str | None:
        return None if value is None else check_email(value)

    @field_validator("smtp_conn_id", "slack_webhook_conn_id")
    @classmethod
    def _conn_id(cls, value: str | None) -> str | None:
        return None if value is None else check_conn_id(value)

    @model_validator(mode="after")
    def _sender_needs_recipients(self) -> Notify:
        if self.from_email and not self.email:
            raise ValueError("from_email is set but email lists no recipient; add one or remove from_email")
        return self

    @property
    def has_routes(self) -> bool:
        return bool(self.email) or self.slack_webhook_conn_id is not None

    def sends(self, event: str) -> bool:
        """Whether `event` (failure, success, quarantine) is to be sent to at least one route."""
        wanted = {"failure": self.on_failure, "success": self.on_success, "quarantine": self.on_quarantine}
        return self.has_routes and wanted[event]


class Sla(Strict):
    """A feed's freshness promises; none unless set. The monitoring DAG checks both every hour, and
    `loaded_within_minutes` also puts an Airflow deadline alert on every run of the feed's DAG."""

    new_file_every_minutes: float | None = Field(
        None,
        gt=0,
        description="A new file is loaded at least this often; the monitoring DAG alerts when the newest "
        "load is older.",
    )
    loaded_within_minutes: float | None = Field(
        None,
        gt=0,
        description="Each file is loaded within this long of being detected; a feed run still unfinished "
        "this long after it was queued alerts at once.",
    )


class Monitoring(Strict):
    """Thresholds of the monitoring DAG's checks of this feed (see docs/monitoring.md)."""

    stuck_after_minutes: float = Field(
        60, gt=0, description="A file in a non-final ledger state for longer than this is stuck."
    )
    backlog_after_minutes: float = Field(
        60, gt=0, description="A landed file the ledger has not registered for longer than this is backlog."
    )
    max_quarantine_rate: float = Field(
        0.1, ge=0, le=1, description="Most files quarantined (a fraction of those finished) in the window."
    )
    window_hours: float = Field(
        24, gt=0, description="How far back the quarantine rate and the load latency look."
    )
    realert_minutes: float = Field(
        360, ge=0, description="A problem still present is alerted again after this long; 0: every run."
    )
    alert: bool = Field(True, description="Send problems and recoveries to the feed's notify routes.")


class Feed(Strict):
    """One stream of files with one contract."""

    name: str = Field(description="Feed name: lowercase letters, digits and '_'. The DAG is feed_<name>.")
    description: str = Field("", description="Free text shown in the DAG's docs.")
    source: Source
    csv: CsvOptions = Field(default_factory=CsvOptions)
    columns: tuple[Column, ...] = Field(min_length=1)
    primary_key: tuple[str, ...] = Field(
        (), description="Columns identifying a row; dedupe and upsert use it."
    )
    dedupe: Dedupe = Field(
        Dedupe.first,
        description="Which row of a primary key repeated within one file is kept: first (memory: one "
        "entry per distinct key) or last (the file's later rows win, as later files do; memory: state for "
        "every row, measured in docs/benchmarks.md).",
    )
    target: Target
    retries: Retries = Field(default_factory=Retries)
    schedule: Schedule = Field(default_factory=Schedule)
    max_files_per_run: int = Field(500, ge=1, description="Files one run takes from the ledger at most.")
    notify: Notify = Field(
        default_factory=Notify, description="Email and Slack notifications; none unless routes are set."
    )
    rules: tuple[RowRule, ...] = Field(
        (), description="Row rules over several columns; a row breaking one is rejected with its name."
    )
    checks: tuple[Check, ...] = Field(
        (), description="Batch checks run on the batch inside its load's transaction, before it is published."
    )
    sla: Sla = Field(default_factory=Sla, description="Freshness SLAs; none unless set.")
    monitoring: Monitoring = Field(
        default_factory=Monitoring, description="Thresholds of the monitoring DAG's checks."
    )
    schema_policy: SchemaPolicy = Field(
        SchemaPolicy.discard,
        description="A column the file has and the contract does not: evolve (add it to the table), "
        "freeze (quarantine the file) or discard (drop and count it).",
    )

    @field_validator("name")
    @classmethod
    def _feed_name(cls, value: str) -> str:
        if not FEED_NAME.match(value):
            raise ValueError(f"{value!r} is not a feed name; use lowercase letters, digits and '_'")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Feed:
        names = [c.name for c in self.columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"columns: {', '.join(dupes)} declared twice; keep one of each")
        for key in self.primary_key:
            if key not in names:
                raise ValueError(f"primary_key: {key!r} is not a column{_suggest(key, names)}")
            if self.column(key).nullable:
                raise ValueError(f"primary_key: column {key!r} must be declared 'nullable: false'")
        if self.target.mode is LoadMode.upsert and not self.primary_key:
            raise ValueError("target.mode 'upsert' needs a primary_key; declare one or use 'append'")
        if self.dedupe is Dedupe.last and not self.primary_key:
            raise ValueError("dedupe 'last' keeps one row per primary_key; declare one or remove dedupe")
        if self.target.index_key and not self.primary_key:
            raise ValueError("target.index_key indexes the primary_key; declare one or remove index_key")
        for where, wanted in [
            *((f"rules.{r.name}", r.columns) for r in self.rules),
            *((f"checks.{c.label}", c.named_columns) for c in self.checks),
        ]:
            for name in wanted:
                if name not in names:
                    raise ValueError(f"{where}: {name!r} is not a column{_suggest(name, names)}")
        for check in self.checks:
            readable = COLUMN_TYPES.get(check.check)
            if readable is not None and check.column is not None:
                found = self.column(check.column).type
                if found.name not in readable:
                    what = "a number" if readable is NUMBER_TYPES else "a date or timestamp"
                    raise ValueError(
                        f"checks.{check.label}: column {check.column!r} is {found}, and check "
                        f"{check.check.value} needs {what} column; point the check at another column or "
                        "remove it"
                    )
        labels = [c.label for c in self.checks] + [r.name for r in self.rules]
        twice = sorted({n for n in labels if labels.count(n) > 1})
        if twice:
            raise ValueError(f"checks/rules: the name(s) {', '.join(twice)} are used twice; name them apart")
        return self

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def dag_id(self) -> str:
        return f"feed_{self.name}"


# --- loading -----------------------------------------------------------------------------------------


def _location(loc: tuple[int | str, ...], raw: Any) -> str:
    """Render a pydantic location, naming columns by their name: columns.amount.type."""
    parts: list[str] = []
    node = raw
    for item in loc:
        if isinstance(item, int):
            name = (
                node[item].get("name")
                if isinstance(node, list) and item < len(node) and isinstance(node[item], dict)
                else None
            )
            if name and parts and parts[-1] == "columns":
                parts.append(str(name))
            else:
                parts[-1:] = [f"{parts[-1] if parts else ''}[{item}]"]
            node = node[item] if isinstance(node, list) and item < len(node) else None
        else:
            parts.append(str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return ".".join(parts) or "(top level)"


def _fields_of(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """Field names allowed at the parent of `loc`, for 'did you mean' hints on unknown fields."""
    current: Any = model
    for item in loc[:-1]:
        if isinstance(item, int):
            continue
        info = getattr(current, "model_fields", {}).get(item)
        if info is None:
            return []
        annotation = info.annotation
        args = getattr(annotation, "__args__", ())
        current = next(
            (a for a in (annotation, *args) if isinstance(a, type) and issubclass(a, BaseModel)), None
        )
        if current is None:
            return []
    fields = getattr(current, "model_fields", {})
    return [info.alias or name for name, info in fields.items()]


def _describe(error: dict[str, Any], raw: Any) -> str:
    loc = tuple(error["loc"])
    where = _location(loc, raw)
    kind = error["type"]
    if kind == "missing":
        return f"{where}: required field is missing; add it"
    if kind == "extra_forbidden":
        known = _fields_of(Feed, loc)
        hint = _suggest(str(loc[-1]), known) if known else ""
        return f"{where}: unknown field{hint or '; remove it'}"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}"


def parse_feed(raw: Any, origin: str) -> Feed:
    """Validate one feed document; `origin` names it in error messages."""
    if not isinstance(raw, dict):
        raise ContractError(
            f"{origin}: a feed file must be a YAML mapping with name, source, columns and target"
        )
    try:
        return Feed.model_validate(raw)
    except ValidationError as exc:
        problems = [_describe(dict(e), raw) for e in exc.errors()]
        raise ContractError("\n".join(f"{origin}: {p}" for p in problems)) from None


def load_feed(path: Path | str) -> Feed:
    """Read and validate one feed file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ContractError(
            f"{path}:{where} is not valid YAML ({getattr(exc, 'problem', exc)}); fix the syntax"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ContractError(f"{path}: cannot be read ({exc})") from None
    feed = parse_feed(raw, str(path))
    if path.stem != feed.name:
        raise ContractError(f"{path}: name: {feed.name!r} differs from the file name; rename one to match")
    _compile_rules(feed, path)
    return feed


def _compile_rules(feed: Feed, path: Path) -> None:
    """Compile the feed's rules as the transform will, on the contract's types: a rule that cannot run
    (text compared with a number, arithmetic on text) fails here, when the feed is loaded, instead of
    at its first file."""
    if not feed.rules and not any(c.has_rules for c in feed.columns):
        return
    from feedline.transform.rules import row_checks  # polars: only for feeds with rules

    try:
        row_checks(feed)
    except ContractError as exc:
        raise ContractError(f"{path}: {exc}") from None


@dataclass
class FeedSet:
    """Every feed of a folder that validated, and one error per file that did not."""

    feeds: list[Feed] = field(default_factory=list)
    errors: dict[str, ContractError] = field(default_factory=dict)


def load_feeds(folder: Path | str) -> FeedSet:
    """Load every `*.yaml`/`*.yml` feed in `folder`; an invalid file never prevents the others."""
    result = FeedSet()
    folder = Path(folder)
    tables: dict[tuple[str | None, str], str] = {}
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        try:
            feed = load_feed(path)
        except ContractError as exc:
            result.errors[str(path)] = exc
            continue
        table = (feed.target.schema_, feed.target.table)
        if table in tables:
            result.errors[str(path)] = ContractError(
                f"{path}: target.table: {feed.target.table!r} is already loaded by feed {tables[table]!r}; "
                "give each feed its own table"
            )
            continue
        tables[table] = feed.name
        result.feeds.append(feed)
    return result
