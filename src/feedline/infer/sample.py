"""Read the first rows of a sample file as text: delimiter sniffed, UTF-8 or Latin-1, gzip by suffix or magic.

Only the rows asked for are read, so a sample of any size costs the same. A plain UTF-8 file is scanned by
polars directly; a compressed or non-UTF-8 one has its first rows copied to a UTF-8 temp file first.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

import polars as pl

from feedline.errors import BadFileError
from feedline.transform.read import CSV_CHUNK_BYTES

SNIFF_BYTES = 64 << 10
SNIFF_RECORDS = 50
DELIMITERS = (",", ";", "|", "\t")
GZIP_MAGIC = b"\x1f\x8b"
LATIN_1 = "latin-1"


@dataclass(frozen=True)
class Sample:
    """The header and first data rows of a file, every field as text, with how they were read."""

    path: Path
    headers: tuple[str, ...]
    frame: pl.DataFrame
    """Data rows; column i is named `__f<i>`."""
    more: bool
    """Whether the file has rows beyond those read."""
    delimiter: str
    delimiter_note: str
    encoding: str
    encoding_note: str
    compressed: bool


def read_sample(path: Path, rows: int, workdir: Path) -> Sample:
    """The header and at most `rows` data rows of `path`; raises BadFileError naming what is wrong."""
    try:
        with path.open("rb") as fh:
            compressed = path.suffix.lower() == ".gz" or fh.read(2) == GZIP_MAGIC
        with _binary(path, compressed) as raw:
            head = raw.read(SNIFF_BYTES)
    except FileNotFoundError:
        raise BadFileError(f"{path}: no such file; pass the path of a sample CSV file") from None
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise BadFileError(f"{path}: cannot be read ({exc}); pass a readable CSV file") from None
    delimiter, delimiter_note = sniff_delimiter(head.decode("utf-8", "replace"), len(head) == SNIFF_BYTES)
    encoding, encoding_note = "utf-8", "every byte read is valid UTF-8"
    frame = None if compressed else _scan(path, delimiter, rows, utf8_only=True)
    if frame is None:
        copy = workdir / "head.csv"
        encoding, encoding_note = _copy_head(path, compressed, delimiter, rows, copy)
        frame = _scan(copy, delimiter, rows, utf8_only=False)
    assert frame is not None
    if frame.height == 0:
        raise BadFileError(f"{path}: is empty; infer needs a header line and some rows")
    headers = tuple((v or "").strip() for v in frame.row(0))
    _check_headers(path, headers)
    data = frame.slice(1, rows).rename({c: f"__f{i}" for i, c in enumerate(frame.columns)})
    return Sample(
        path=path,
        headers=headers,
        frame=data,
        more=frame.height > rows + 1,
        delimiter=delimiter,
        delimiter_note=delimiter_note,
        encoding=encoding,
        encoding_note=encoding_note,
        compressed=compressed,
    )


@contextmanager
def _binary(path: Path, compressed: bool) -> Iterator[IO[bytes]]:
    with path.open("rb") as raw:
        if compressed:
            with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
                yield cast(IO[bytes], unzipped)
        else:
            yield raw


def sniff_delimiter(text: str, truncated: bool) -> tuple[str, str]:
    """The delimiter among , ; | tab that splits the first lines into the same number (>1) of fields."""
    best: tuple[tuple[bool, float, int], str] | None = None
    for delimiter in DELIMITERS:
        try:
            records = [
                r for r in itertools.islice(csv.reader(io.StringIO(text), delimiter=delimiter), 51) if r
            ]
        except csv.Error:
            continue
        records = records[:-1] if truncated and len(records) > 1 else records
        records = records[:SNIFF_RECORDS]
        if not records:
            continue
        width = len(records[0])
        same = sum(len(r) == width for r in records) / len(records)
        score = (width > 1, same, width)
        if best is None or score > best[0]:
            best = (score, delimiter)
    if best is None or not best[0][0]:
        return ",", "no delimiter splits the header: a one-column file"
    (_, same, width), delimiter = best
    name = "tab" if delimiter == "\t" else repr(delimiter)
    share = "every one" if same == 1 else f"{same:.0%}"
    return delimiter, f"{name} splits {share} of the first lines into {width} fields"


def _scan(path: Path, delimiter: str, rows: int, *, utf8_only: bool) -> pl.DataFrame | None:
    """Header plus up to rows + 1 data rows (one more tells whether the file goes on), all as text.

    With `utf8_only`, None when the file is not UTF-8 (the caller then reads it through a decoded copy).
    Without a chunk size polars sizes its reads by the file: an 800 MB file cost 1.6 s and 290 MB for
    100,000 rows; with the transform's 4 MiB chunks 0.17 s and 130 MB whatever the size.
    """
    os.environ.setdefault("POLARS_CSV_CHUNK_SIZE", str(CSV_CHUNK_BYTES))
    plan = pl.scan_csv(
        path,
        has_header=False,
        separator=delimiter,
        infer_schema=False,
        n_rows=rows + 2,
        truncate_ragged_lines=True,
        encoding="utf8",
        raise_if_empty=False,
    )
    try:
        return plan.collect(engine="streaming")
    except pl.exceptions.ComputeError as exc:
        message = str(exc).strip().splitlines()[0]
        if utf8_only and "utf" in message.lower():
            return None
        raise BadFileError(
            f"{path}: cannot be read as CSV ({message}); fix the file or pass another"
        ) from None


def _copy_head(path: Path, compressed: bool, delimiter: str, rows: int, copy: Path) -> tuple[str, str]:
    """Copy the header and first rows as UTF-8; Latin-1 when the text is not UTF-8 (it decodes any byte)."""
    try:
        _copy(path, compressed, "utf-8-sig", delimiter, rows, copy)
        return "utf-8", "every byte read is valid UTF-8"
    except UnicodeDecodeError as exc:
        byte = exc.object[exc.start : exc.start + 1]
        note = f"not UTF-8 (byte 0x{byte.hex()} in the rows read); Latin-1 reads any byte: check accents"
    _copy(path, compressed, LATIN_1, delimiter, rows, copy)
    return LATIN_1, note


def _copy(path: Path, compressed: bool, encoding: str, delimiter: str, rows: int, copy: Path) -> None:
    try:
        with (
            _binary(path, compressed) as raw,
            io.TextIOWrapper(raw, encoding=encoding, newline="") as text,
            copy.open("w", encoding="utf-8", newline="") as out,
        ):
            records = itertools.islice(csv.reader(text, delimiter=delimiter), rows + 2)
            csv.writer(out, delimiter=delimiter, lineterminator="\n").writerows(records)
    except (csv.Error, EOFError, gzip.BadGzipFile) as exc:
        raise BadFileError(f"{path}: cannot be read as CSV ({exc}); fix the file or pass another") from None


def _check_headers(path: Path, headers: tuple[str, ...]) -> None:
    """The transform matches columns by header name ignoring case: a repeated name cannot be loaded."""
    seen: dict[str, int] = {}
    for index, header in enumerate(headers, start=1):
        key = header.casefold()
        if key in seen:
            raise BadFileError(
                f"{path}: the header has column {header!r} twice (fields {seen[key]} and {index}); feedline "
                "matches columns by header name, so rename one in the export first"
            )
        seen[key] = index
