"""Turn a landed file into something polars scans: decompress, transcode to UTF-8, match the header."""

from __future__ import annotations

import codecs
import contextlib
import csv
import gzip
import io
import json
import os
import re
import unicodedata
import uuid
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import polars as pl

from feedline.contract import Column, ColumnType, Compression, Feed
from feedline.errors import BadFileError
from feedline.quality.spec import SchemaPolicy

CHUNK = 4 << 20
CSV_CHUNK_BYTES = 4 << 20
"""polars sizes its CSV read chunks by the file size unless told (POLARS_CSV_CHUNK_SIZE): 4 MiB chunks keep
the reader's memory flat from 100 MB to 1 GB files at no measurable cost in speed."""
GZIP_MAGIC = b"\x1f\x8b"
SNIFF_BYTES = 4096
DELIMITERS = (",", ";", "\t", "|")
UTF8 = ("utf-8", "utf-8-sig")
LINE = "__line"
"""The 1-based data row number polars adds while scanning (written to the rejected file as `_line`)."""
EXTRA = "__extra"
"""One column past the last expected field: non-null when a row has more fields than the header."""


@dataclass(frozen=True)
class Layout:
    """Where each column sits in the file, and how polars must read it.

    `columns` are the contract's, then (schema_policy evolve) the file's columns the contract lacks, as
    nullable strings; `positions` holds the file field of each. `dropped` names the header columns left
    out (schema_policy discard, or a header field without a name)."""

    path: Path
    positions: tuple[int, ...]
    fields: int
    has_header: bool
    columns: tuple[Column, ...]
    dropped: tuple[str, ...] = ()

    def field(self, index: int) -> str:
        return f"__f{index}"

    def scan(self, feed: Feed) -> pl.LazyFrame:
        """Every field as text, the row number `LINE`, and `EXTRA` for surplus fields."""
        schema: dict[str, pl.DataType] = {self.field(i): pl.String() for i in range(self.fields)}
        schema[EXTRA] = pl.String()
        os.environ.setdefault("POLARS_CSV_CHUNK_SIZE", str(CSV_CHUNK_BYTES))
        return pl.scan_csv(
            self.path,
            has_header=False,
            skip_rows=1 if self.has_header else 0,
            separator=feed.csv.delimiter,
            quote_char=feed.csv.quote,
            schema=schema,
            encoding="utf8",
            row_index_name=LINE,
            row_index_offset=1,
            truncate_ragged_lines=True,
            missing_columns="insert",
            raise_if_empty=False,
        )


def is_gzip(feed: Feed, source: Path) -> bool:
    """Whether to decompress: as declared, or for `auto` by the .gz suffix or the gzip magic bytes."""
    if feed.csv.compression is not Compression.auto:
        return feed.csv.compression is Compression.gzip
    if source.suffix.lower() == ".gz":
        return True
    with source.open("rb") as fh:
        return fh.read(2) == GZIP_MAGIC


@contextlib.contextmanager
def readable(feed: Feed, source: Path, workdir: Path) -> Iterator[Path]:
    """Yield a plain UTF-8 file with the content of `source`, streamed through a temp file when needed."""
    compressed = is_gzip(feed, source)
    encoding = codecs.lookup(feed.csv.encoding).name
    if not compressed and encoding in UTF8:
        yield source
        return
    temp = workdir / f".{source.name}.{uuid.uuid4().hex[:8]}.csv.partial"
    try:
        with source.open("rb") as raw, temp.open("wb") as out:
            stream = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
            _copy(stream, out, source, None if encoding in UTF8 else encoding)
        yield temp
    finally:
        temp.unlink(missing_ok=True)


def _copy(stream: io.BufferedIOBase, out: IO[bytes], source: Path, encoding: str | None) -> None:
    """Copy in bounded chunks, decompressing and transcoding on the way; bad input becomes BadFileError."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict") if encoding else None
    offset = 0
    try:
        while chunk := stream.read(CHUNK):
            if decoder is not None:
                try:
                    out.write(decoder.decode(chunk).encode("utf-8"))
                except UnicodeDecodeError as exc:
                    raise BadFileError(
                        f"{source}: cannot be decoded as {encoding} (byte offset {offset + exc.start} of the "
                        "decompressed text); fix csv.encoding in the feed or re-export the file"
                    ) from None
            else:
                out.write(chunk)
            offset += len(chunk)
        if decoder is not None:
            out.write(decoder.decode(b"", final=True).encode("utf-8"))
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise BadFileError(
            f"{source}: is not a complete gzip file ({exc}); re-upload it, or set csv.compression to 'none' "
            "if it is not compressed"
        ) from None
    except UnicodeDecodeError as exc:
        raise BadFileError(
            f"{source}: cannot be decoded as {encoding} ({exc.reason}); fix csv.encoding"
        ) from None


def locate_bad_utf8(path: Path) -> str:
    """Where a file first stops being UTF-8, for the error message (only run after polars refused it)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    offset = line = 0
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                line += chunk.count(b"\n", 0, exc.start)
                return f"byte offset {offset + exc.start}, line {line + 1}"
            offset += len(chunk)
            line += chunk.count(b"\n")
    return "an unknown position"


def sniff(path: Path) -> str | None:
    """What a file that is not UTF-8 looks like from its first bytes: 'utf-16', 'utf-32', 'binary' or None.

    A byte order mark names its encoding; NUL bytes without one mean UTF-16 when they sit at every other
    position of mostly-ASCII text, and a binary file otherwise (text in an 8-bit encoding has no NULs).
    """
    with path.open("rb") as fh:
        head = fh.read(SNIFF_BYTES)
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x00" not in head:
        return None
    even, odd = head[0::2], head[1::2]
    if len(head) >= 4 and (even.count(0) > 0.9 * len(even) or odd.count(0) > 0.9 * len(odd)):
        return "utf-16"
    return "binary"


def not_utf8(origin: Path, path: Path) -> str:
    """The message for a file that is not UTF-8: what it looks like, where it breaks, and what to change."""
    kind = sniff(path)
    if kind == "binary":
        return (
            f"{origin}: is not a text file (NUL bytes among its first {SNIFF_BYTES} bytes), so not a CSV "
            "export; remove it from the source, or narrow source.pattern so that it does not match"
        )
    if kind is not None:
        label = kind.upper()
        return (
            f"{origin}: is {label} text, not UTF-8; set `csv.encoding: {kind}` in the feed or re-export it "
            "as UTF-8"
        )
    return (
        f"{origin}: cannot be decoded as UTF-8 ({locate_bad_utf8(path)}); set `csv.encoding: latin-1` in "
        "the feed if the file is Latin-1 (or its real encoding, e.g. cp1252), or re-export it as UTF-8"
    )


def layout(feed: Feed, path: Path, origin: Path) -> Layout:
    """Match contract columns to file fields: by header name (case and spaces ignored), or by position."""
    if not feed.csv.header:
        count = len(feed.columns)
        return Layout(path, tuple(range(count)), count, has_header=False, columns=feed.columns)
    header = _first_record(feed, path, origin)
    if header is None:
        raise BadFileError(f"{origin}: is empty, not even a header line; the export must write the header")
    found: dict[str, int] = {}
    for index, name in enumerate(header):
        key = name.strip().casefold()
        if key in found:
            first = header[found[key]].strip()
            raise BadFileError(
                f"{origin}: the header has column {first!r} twice (fields {found[key] + 1} and {index + 1}); "
                "header names must be unique, ignoring case"
            )
        found[key] = index
    missing = [c.header for c in feed.columns if c.header.strip().casefold() not in found]
    if missing:
        raise BadFileError(
            f"{origin}: header lacks required column(s) {', '.join(missing)} (found: "
            f"{', '.join(h.strip() for h in header)}){_delimiter_hint(feed, header)}; fix the export or the "
            "feed's columns/source names"
        )
    positions = tuple(found[c.header.strip().casefold()] for c in feed.columns)
    known = {c.header.strip().casefold() for c in feed.columns}
    unexpected = [
        (index, name.strip()) for index, name in enumerate(header) if name.strip().casefold() not in known
    ]
    added, dropped = _schema_policy(feed, unexpected, origin)
    return Layout(
        path,
        positions + tuple(index for index, _ in added),
        len(header),
        has_header=True,
        columns=feed.columns + tuple(column for _, column in added),
        dropped=dropped,
    )


def _schema_policy(
    feed: Feed, unexpected: list[tuple[int, str]], origin: Path
) -> tuple[list[tuple[int, Column]], tuple[str, ...]]:
    """Apply the feed's schema_policy to the header columns the contract lacks ((field index, header)):
    returns the columns that travel on (evolve) with their field index, and the names of those dropped.

    A header field without a name (often a trailing delimiter) cannot become a column: it is dropped
    under evolve and discard alike, and quarantines the file under freeze like any unexpected column."""
    if not unexpected:
        return [], ()
    shown = [name or f"(unnamed field {index + 1})" for index, name in unexpected]
    policy = feed.schema_policy
    if policy is SchemaPolicy.freeze:
        raise BadFileError(
            f"{origin}: the header has column(s) {', '.join(shown)} that feed {feed.name}'s contract does "
            "not declare, and its schema_policy is freeze; add them to the feed's columns, or set "
            "`schema_policy: discard` (drop them) or `schema_policy: evolve` (add them to the table)"
        )
    if policy is SchemaPolicy.discard:
        return [], tuple(shown)
    named = [(index, name) for index, name in unexpected if name]
    taken = {c.name.casefold() for c in feed.columns}
    names = identifiers([name for _, name in named], taken=taken)
    added = [
        (index, Column(name=column, type=ColumnType("string"), source=header))
        for (index, header), column in zip(named, names, strict=True)
    ]
    return added, tuple(label for (_, name), label in zip(unexpected, shown, strict=True) if not name)


def identifiers(headers: Iterable[str], taken: Iterable[str] = ()) -> list[str]:
    """Header texts as unique, lowercase SQL identifiers: 'Order ID' -> order_id, 'customerEmail' ->
    customer_email, '2nd line' -> col_2nd_line; repeats, and names in `taken`, get _2, _3."""
    used = {name.casefold() for name in taken}
    names: list[str] = []
    for index, header in enumerate(headers, start=1):
        text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", header.strip())
        text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
        text = re.sub(r"[^0-9A-Za-z]+", "_", text).strip("_").lower()
        text = text or f"column_{index}"
        text = f"col_{text}" if text[0].isdigit() else text
        name, n = text[:63], 2
        while name in names or name in used:
            name, n = f"{text[: 63 - len(str(n)) - 1]}_{n}", n + 1
        names.append(name)
    return names


def _delimiter_hint(feed: Feed, header: list[str]) -> str:
    """A hint when the header splits into the contract's columns on another common delimiter."""
    if len(header) != 1:
        return ""
    wanted = {c.header.strip().casefold() for c in feed.columns}
    for other in DELIMITERS:
        names = {name.strip().strip(feed.csv.quote).casefold() for name in header[0].split(other)}
        if other != feed.csv.delimiter and wanted <= names:
            return (
                f"; the header is {other!r}-separated: set `csv.delimiter: {json.dumps(other)}` in the feed"
            )
    return ""


def unclosed_quote(feed: Feed, path: Path) -> int | None:
    """The line where a quoted field that never closes starts, or None (run only after polars failed)."""
    start = 1
    with path.open("r", encoding="utf-8", errors="replace", newline="") as fh:
        reader = csv.reader(fh, delimiter=feed.csv.delimiter, quotechar=feed.csv.quote, strict=True)
        try:
            for _ in reader:
                start = reader.line_num + 1
        except csv.Error:
            return start
    return None


def _first_record(feed: Feed, path: Path, origin: Path) -> list[str] | None:
    try:
        with path.open("r", encoding="utf-8-sig", newline="") as fh:
            return next(csv.reader(fh, delimiter=feed.csv.delimiter, quotechar=feed.csv.quote), None)
    except UnicodeDecodeError:
        raise BadFileError(not_utf8(origin, path)) from None
    except csv.Error as exc:
        raise BadFileError(f"{origin}: the header line is not valid CSV ({exc}); fix the export") from None
