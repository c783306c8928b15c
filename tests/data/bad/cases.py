"""The bad-input corpus as data: each case writes one landed file and says what a demanding user expects.

Every case runs through the real pipeline (tests/corpus/test_bad_inputs.py). A case ends either
`quarantined` (the whole file set aside with a reason, nothing loaded) or `loaded` (good rows in the
table, bad rows set aside with a reason per row). `corpus_rows()` feeds the table in docs/reliability.md.
"""

from __future__ import annotations

import gzip
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

FEED: dict[str, Any] = {
    "name": "corpus",
    "description": "The bad-input corpus feed.",
    "source": {"uri": "data/landing/corpus", "pattern": "*.csv*"},
    "columns": [
        {"name": "id", "type": "bigint", "nullable": False},
        {"name": "name", "type": "string"},
        {"name": "amount", "type": "decimal(10,2)"},
        {"name": "qty", "type": "int"},
        {"name": "day", "type": "date"},
    ],
    "primary_key": ["id"],
    "target": {"table": "corpus_rows", "mode": "append"},
}
"""The feed every case runs against, before the case's `feed` overrides."""

HEADER = "id,name,amount,qty,day"
Outcome = Literal["quarantined", "loaded"]


@dataclass(frozen=True)
class BadCase:
    """One landed file and its expected fate.

    `reason` words must appear in the quarantine reason (ledger and `.reason.txt`) or, for a loaded
    file, in the rejected rows' reasons. `values` maps a column to its expected values in the target
    table, ordered by id; `queries` maps a SQL query on the warehouse to its expected single value.
    `feed` overrides the corpus feed: top-level mappings merge, `columns` maps a
    column name to the fields it changes (or None to drop it; unknown names are appended).
    `during` rewrites the landed file right after the transform has read it; the new content must
    then load in the next run (`next_loaded` rows).
    """

    name: str
    description: str
    make: Callable[[Path], None]
    outcome: Outcome
    reason: tuple[str, ...] = ()
    loaded: int = 0
    rejected: int = 0
    duplicates: int = 0
    key: str = "input.csv"
    feed: Mapping[str, Any] = field(default_factory=dict)
    values: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    queries: Mapping[str, Any] = field(default_factory=dict)
    during: Callable[[Path], None] | None = None
    next_loaded: int = 0

    @property
    def rows_in(self) -> int:
        return self.loaded + self.rejected + self.duplicates


def feed_spec(case: BadCase) -> dict[str, Any]:
    """The corpus feed with the case's overrides applied (a plain dict for `parse_feed`)."""
    spec = {k: (dict(v) if isinstance(v, dict) else v) for k, v in FEED.items()}
    columns = {c["name"]: dict(c) for c in FEED["columns"]}
    for name, value in case.feed.items():
        if name == "columns":
            for column, changes in value.items():
                if changes is None:
                    columns.pop(column)
                else:
                    columns[column] = {**columns.get(column, {"name": column}), **changes}
        elif isinstance(value, Mapping):
            spec[name] = {**spec.get(name, {}), **value}
        else:
            spec[name] = value
    spec["columns"] = list(columns.values())
    return spec


# --- writers --------------------------------------------------------------------------------------


def data(content: bytes) -> Callable[[Path], None]:
    """A writer of fixed bytes."""
    return lambda path: path.write_bytes(content)


def text(
    *lines: str, eol: str = "\n", encoding: str = "utf-8", final_eol: bool = True
) -> Callable[[Path], None]:
    """A writer of lines joined by `eol`, encoded."""
    body = eol.join(lines) + (eol if final_eol and lines else "")
    return data(body.encode(encoding))


def good(start: int = 1, count: int = 3) -> list[str]:
    """Valid rows of the corpus feed, ids start..start+count-1."""
    return [f"{i},name {i},{i}.50,{i},2024-01-{i % 28 + 1:02d}" for i in range(start, start + count)]


def csv_of(*rows: str, header: str = HEADER) -> Callable[[Path], None]:
    """A writer of a CSV file: the header line, then `rows`."""
    return text(header, *rows)


def lazy(writer: Callable[[], Callable[[Path], None]]) -> Callable[[Path], None]:
    """A writer built only when the file is written, so big contents cost nothing at import."""
    return lambda path: writer()(path)


def gzipped(content: bytes, *, keep: float = 1.0) -> Callable[[Path], None]:
    """A writer of `content` gzip-compressed (deterministically), cut to the first `keep` fraction."""
    packed = gzip.compress(content, mtime=0)
    return data(packed[: int(len(packed) * keep)])


def garbage(size: int = 4096) -> bytes:
    """Deterministic binary noise behind a PNG signature: what lands when someone drops an image."""
    return b"\x89PNG\r\n\x1a\n" + random.Random(7).randbytes(size)


def many(count: int, row: Callable[[int], str]) -> Callable[[Path], None]:
    """A writer of a header and `count` generated rows, streamed (large files stay cheap to build)."""

    def write(path: Path) -> None:
        with path.open("w", encoding="utf-8", newline="") as out:
            out.write(HEADER + "\n")
            for i in range(1, count + 1):
                out.write(row(i) + "\n")

    return write


def replace_with(*rows: str) -> Callable[[Path], None]:
    """Rewrite the landed file with new content (a writer re-exporting while we read)."""

    def rewrite(path: Path) -> None:
        path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")

    return rewrite


BIG = 10 * 1024 * 1024
LATIN1 = "\n".join([HEADER, "1,José Müller,1.00,1,2024-01-01", "2,Zoë Façade,2.00,2,2024-01-02"]) + "\n"
UTF16 = "\n".join([HEADER, "1,Zoë,1.00,1,2024-01-01", "2,Ådne,2.00,2,2024-01-02"]) + "\n"
INJECTION = '"""; DROP TABLE corpus_rows; --"'


# --- the corpus ------------------------------------------------------------------------------------

CASES: list[BadCase] = [
    BadCase(
        "empty_file",
        "A 0-byte file: no header, no rows.",
        data(b""),
        "quarantined",
        reason=("is empty", "header"),
    ),
    BadCase(
        "header_only",
        "A header and no rows: a valid export of nothing; loads zero rows.",
        csv_of(),
        "loaded",
    ),
    BadCase(
        "header_only_no_newline",
        "A header without a final newline and no rows; loads zero rows.",
        text(HEADER, final_eol=False),
        "loaded",
    ),
    BadCase(
        "binary_garbage",
        "Binary noise (an image) named .csv.",
        data(garbage()),
        "quarantined",
        reason=("not a text file",),
    ),
    BadCase(
        "truncated_gzip",
        "A .csv.gz cut off half way through its upload.",
        gzipped("\n".join([HEADER, *good(1, 2000)]).encode(), keep=0.5),
        "quarantined",
        reason=("not a complete gzip file", "re-upload"),
        key="input.csv.gz",
    ),
    BadCase(
        "empty_gzip",
        "A 0-byte .csv.gz.",
        data(b""),
        "quarantined",
        reason=("is empty",),
        key="input.csv.gz",
    ),
    BadCase(
        "gzip_without_suffix",
        "Gzip content under a .csv name: recognised by its magic bytes and loaded.",
        gzipped("\n".join([HEADER, *good()]).encode()),
        "loaded",
        loaded=3,
    ),
    BadCase(
        "wrong_delimiter",
        "A ';'-separated file in a ','-separated feed.",
        text(HEADER.replace(",", ";"), *(r.replace(",", ";") for r in good())),
        "quarantined",
        reason=("delimiter", "';'"),
    ),
    BadCase(
        "latin1_undeclared",
        "Latin-1 bytes in a UTF-8 feed.",
        data(LATIN1.encode("latin-1")),
        "quarantined",
        reason=("UTF-8", "csv.encoding: latin-1"),
    ),
    BadCase(
        "latin1_declared",
        "The same Latin-1 file with csv.encoding: latin-1 declared.",
        data(LATIN1.encode("latin-1")),
        "loaded",
        loaded=2,
        feed={"csv": {"encoding": "latin-1"}},
        values={"name": ("José Müller", "Zoë Façade")},
    ),
    BadCase(
        "utf16_undeclared",
        "A UTF-16 file (with its byte order mark) in a UTF-8 feed.",
        data(UTF16.encode("utf-16")),
        "quarantined",
        reason=("UTF-16", "csv.encoding: utf-16"),
    ),
    BadCase(
        "utf16_declared",
        "The same UTF-16 file with csv.encoding: utf-16 declared.",
        data(UTF16.encode("utf-16")),
        "loaded",
        loaded=2,
        feed={"csv": {"encoding": "utf-16"}},
        values={"name": ("Zoë", "Ådne")},
    ),
    BadCase(
        "utf8_bom",
        "UTF-8 with a byte order mark before the header.",
        data(b"\xef\xbb\xbf" + "\n".join([HEADER, *good()]).encode() + b"\n"),
        "loaded",
        loaded=3,
        values={"id": (1, 2, 3)},
    ),
    BadCase(
        "utf8_bom_no_header",
        "UTF-8 with a byte order mark and no header line (csv.header: false).",
        data(b"\xef\xbb\xbf" + "\n".join(good()).encode() + b"\n"),
        "loaded",
        loaded=3,
        feed={"csv": {"header": False}},
        values={"id": (1, 2, 3)},
    ),
    BadCase(
        "crlf",
        "Windows line endings (CRLF): values carry no stray carriage return.",
        text(HEADER, *good(), eol="\r\n"),
        "loaded",
        loaded=3,
        values={"day": ("2024-01-02", "2024-01-03", "2024-01-04")},
    ),
    BadCase(
        "unterminated_quote",
        "A quoted field that never closes, swallowing the rest of the file.",
        csv_of(*good(1, 2), '3,"name 3,3.50,3,2024-01-04', *good(4, 3)),
        "quarantined",
        reason=("unterminated quote", "line 4"),
    ),
    BadCase(
        "quoted_newline",
        "A quoted value spanning two lines: one row, newline kept.",
        csv_of(good(1, 1)[0], '2,"two\nlines",2.50,2,2024-01-03'),
        "loaded",
        loaded=2,
        values={"name": ("name 1", "two\nlines")},
    ),
    BadCase(
        "ragged_too_many_fields",
        "A row with more fields than the header is rejected.",
        csv_of(*good(1, 2), "3,name 3,3.50,3,2024-01-04,surplus"),
        "loaded",
        loaded=2,
        rejected=1,
        reason=("more than 5 fields",),
    ),
    BadCase(
        "ragged_too_few_fields",
        "A row with fewer fields than the header, missing a required value, is rejected naming it.",
        csv_of(*good(1, 2), "3,name 3"),
        "loaded",
        loaded=2,
        rejected=1,
        reason=("day: required value is missing",),
        feed={"columns": {"day": {"nullable": False}}},
    ),
    BadCase(
        "ragged_too_few_optional",
        "A short row missing only optional values loads them as null (a short row reads as empty fields).",
        csv_of(*good(1, 2), "3,name 3"),
        "loaded",
        loaded=3,
        values={"qty": (1, 2, None)},
    ),
    BadCase(
        "duplicate_header",
        "The header names a column twice.",
        csv_of(*good(), header="id,name,amount,qty,day,NAME"),
        "quarantined",
        reason=("'name' twice",),
    ),
    BadCase(
        "missing_column",
        "The header lacks a contract column.",
        csv_of("1,name 1,1.50,2024-01-02", header="id,name,amount,day"),
        "quarantined",
        reason=("lacks", "qty"),
    ),
    BadCase(
        "extra_column",
        "The header has a column the contract does not know: it is ignored.",
        csv_of(*(r + ",extra" for r in good()), header=HEADER + ",note"),
        "loaded",
        loaded=3,
    ),
    BadCase(
        "empty_header_name",
        "An unnamed column in the middle of the header is ignored.",
        csv_of("1,x,name 1,1.50,1,2024-01-02", header="id,,name,amount,qty,day"),
        "loaded",
        loaded=1,
        values={"name": ("name 1",)},
    ),
    BadCase(
        "trailing_delimiter",
        "Every line ends with the delimiter (an empty last header name): loads.",
        csv_of(*(r + "," for r in good()), header=HEADER + ","),
        "loaded",
        loaded=3,
    ),
    BadCase(
        "sql_injection_header",
        "An extra column named '\"; DROP TABLE corpus_rows; --' is ignored; nothing is executed.",
        csv_of(*(r + ",x" for r in good()), header=f"{HEADER},{INJECTION}"),
        "loaded",
        loaded=3,
    ),
    BadCase(
        "sql_injection_value",
        "A value '; DROP TABLE corpus_rows; -- loads as plain text.",
        csv_of("1,'; DROP TABLE corpus_rows; --,1.50,1,2024-01-02"),
        "loaded",
        loaded=1,
        values={"name": ("'; DROP TABLE corpus_rows; --",)},
    ),
    BadCase(
        "path_header",
        "A header '../../etc' in place of a contract column: quarantined, nothing written outside the lake.",
        csv_of(*good(), header="id,../../etc,amount,qty,day"),
        "quarantined",
        reason=("lacks", "name", "../../etc"),
    ),
    BadCase(
        "field_10mb",
        "One 10 MB value in a string column loads intact.",
        lazy(lambda: csv_of(f"1,{'x' * BIG},1.50,1,2024-01-02", good(2, 1)[0])),
        "loaded",
        loaded=2,
        queries={"SELECT max(length(name)) FROM corpus_rows": BIG},
    ),
    BadCase(
        "huge_invalid_number",
        "A 1 MB value in an int column: rejected, and the reason quotes it cut short.",
        lazy(lambda: csv_of(f"1,name 1,1.50,{'9' * (1 << 20)},2024-01-02", good(2, 1)[0])),
        "loaded",
        loaded=1,
        rejected=1,
        reason=("qty:", "is out of range for int", "…"),
    ),
    BadCase(
        "thousands_separators",
        "Amounts written with thousands separators are rejected naming the column.",
        csv_of('1,name 1,"1,234.50",1,2024-01-02', '2,name 2,"12,000",2,2024-01-03', *good(3, 1)),
        "loaded",
        loaded=1,
        rejected=2,
        reason=("amount: '1,234.50' is not a decimal(10,2)", "amount: '12,000'"),
    ),
    BadCase(
        "thousands_separators_stripped",
        "The same file with strip_chars: ',' on the column loads every row.",
        csv_of('1,name 1,"1,234.50",1,2024-01-02', '2,name 2,"12,000",2,2024-01-03', *good(3, 1)),
        "loaded",
        loaded=3,
        feed={"columns": {"amount": {"strip_chars": ","}}},
        values={"amount": ("1234.50", "12000.00", "3.50")},
    ),
    BadCase(
        "dates_three_formats",
        "Dates as ISO, dd.mm.yyyy and mm/dd/yyyy load once those formats are declared; others are rejected.",
        csv_of(
            "1,a,1.00,1,2024-03-05",
            "2,b,1.00,1,05.03.2024",
            "3,c,1.00,1,03/05/2024",
            "4,d,1.00,1,March 5th 2024",
        ),
        "loaded",
        loaded=3,
        rejected=1,
        reason=("day: 'March 5th 2024' is not a date", "%d.%m.%Y", "ISO 8601"),
        feed={"columns": {"day": {"formats": ["%d.%m.%Y", "%m/%d/%Y"]}}},
        values={"day": ("2024-03-05", "2024-03-05", "2024-03-05")},
    ),
    BadCase(
        "overflowing_integers",
        "Integers past int and bigint range are rejected, not wrapped or clipped.",
        csv_of(
            "1,a,1.00,2147483647,2024-01-02",
            "2,b,1.00,2147483648,2024-01-02",
            "9223372036854775808,c,1.00,1,2024-01-02",
        ),
        "loaded",
        loaded=1,
        rejected=2,
        reason=(
            "qty: '2147483648' is out of range for int",
            "id: '9223372036854775808' is out of range for bigint",
        ),
        values={"qty": (2147483647,)},
    ),
    BadCase(
        "overflowing_decimals",
        "Decimals with too many digits, or more decimals than the scale, are rejected, never rounded.",
        csv_of("1,a,99999999.99,1,2024-01-02", "2,b,123456789.00,1,2024-01-02", "3,c,1.005,1,2024-01-02"),
        "loaded",
        loaded=1,
        rejected=2,
        reason=("amount: '123456789.00' does not fit decimal(10,2)", "amount: '1.005'"),
        values={"amount": ("99999999.99",)},
    ),
    BadCase(
        "nan_infinity",
        "NaN and Infinity in decimal and float columns are rejected, not loaded as numbers.",
        csv_of(
            "1,a,NaN,1,2024-01-02,1.5",
            "2,b,Infinity,1,2024-01-02,1.5",
            "3,c,1.00,1,2024-01-02,NaN",
            "4,d,1.00,1,2024-01-02,-inf",
            "5,e,1.00,1,2024-01-02,2.5",
            header=HEADER + ",score",
        ),
        "loaded",
        loaded=1,
        rejected=4,
        reason=(
            "amount: 'NaN' is not a decimal(10,2)",
            "score: 'NaN' is not a finite number",
            "score: '-inf'",
        ),
        feed={"columns": {"score": {"type": "float"}}},
        values={"score": (2.5,)},
    ),
    BadCase(
        "all_null_key",
        "Every row lacks its primary key: all rows rejected, nothing loaded.",
        csv_of(*(",".join(["", *r.split(",")[1:]]) for r in good(1, 4))),
        "loaded",
        rejected=4,
        reason=("id: required value is missing",),
    ),
    BadCase(
        "whitespace_key",
        "Primary keys that are only spaces count as missing: rejected.",
        csv_of("   ,a,1.00,1,2024-01-02", "\t,b,1.00,1,2024-01-02", *good(3, 1)),
        "loaded",
        loaded=1,
        rejected=2,
        reason=("id: required value is missing",),
    ),
    BadCase(
        "all_duplicates",
        "Every row repeats the same key: the first loads, the rest count as duplicates.",
        csv_of(*(good(1, 1) * 6)),
        "loaded",
        loaded=1,
        duplicates=5,
    ),
    BadCase(
        "blank_lines",
        "Blank lines between rows are rejected as empty rows, so the row count still adds up.",
        csv_of(good(1, 1)[0], "", good(2, 1)[0], ""),
        "loaded",
        loaded=2,
        rejected=2,
        reason=("row is empty",),
    ),
    BadCase(
        "invalid_utf8_mid_file",
        "A file that stops being UTF-8 at line 502: quarantined naming the line.",
        data(("\n".join([HEADER, *good(1, 500)]) + "\n501,caf\xe9,1.00,1,2024-01-02\n").encode("latin-1")),
        "quarantined",
        reason=("UTF-8", "line 502"),
    ),
    BadCase(
        "many_bad_rows",
        "100,000 rows that are all bad: every one rejected with its reason, none dropped.",
        many(100_000, lambda i: f"{i},n,not-a-number,1,2024-01-02"),
        "loaded",
        rejected=100_000,
        reason=("amount: 'not-a-number' is not a decimal(10,2)",),
    ),
    BadCase(
        "changed_while_read",
        "The file is rewritten while being read: that version is quarantined, the new one loads next run.",
        csv_of(*good(1, 3)),
        "quarantined",
        reason=("changed while being read", "next version"),
        during=replace_with(*good(10, 4)),
        next_loaded=4,
    ),
    BadCase(
        "key_with_spaces_unicode_escape",
        "An object key with spaces, unicode and a literal %2F loads under exactly that key.",
        csv_of(*good()),
        "loaded",
        loaded=3,
        key="Daily Ünïcødé report %2F 2024.csv",
    ),
]


def corpus_rows() -> list[dict[str, Any]]:
    """One row per case for the docs table: name, description, outcome, reason words and row counts
    (None for a quarantined file: none of its rows is counted, loaded or rejected)."""
    return [
        {
            "name": case.name,
            "description": case.description,
            "outcome": case.outcome,
            "reason": "; ".join(case.reason),
            "rows": None
            if case.outcome == "quarantined"
            else {
                "in": case.rows_in,
                "loaded": case.loaded,
                "rejected": case.rejected,
                "duplicates": case.duplicates,
            },
        }
        for case in CASES
    ]
