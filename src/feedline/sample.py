"""A deterministic generator of dirty order exports for feeds/orders.yaml, with exact expected outcomes."""

from __future__ import annotations

import argparse
import gzip as gzip_module
import io
import json
import random
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

HEADER = "order_id,customer_name,customer_email,country,amount,quantity,status,ordered_at,is_gift\n"
BLOCK_ROWS = 50_000
"""Rows generated once and repeated with shifted order ids; the first N rows never depend on `rows`."""

FIRST_NAMES = ("John", "Anna", "José", "Zoë", "Li", "Fatima", "Pat", "Olga", "Mark", "Ines", "Søren", "Amy")
LAST_NAMES = ("Smith", "Müller", "Núñez", "O'Brien", "Chen", "Haddad", "Kowalski", "Berg", "Rossi", "Dubois")
COUNTRIES = ("US", "us", " De ", "fr", "GB", "Nl ", "es", "It")
STATUSES = ("pending", "Shipped", "DELIVERED", " cancelled ", "Returned", "unknown", "?", "")
BOOLS = ("yes", "no", "1", "0", "TRUE", "false", " Y ", "n", "True", "")
EPOCH = datetime(2023, 1, 1)


@dataclass(frozen=True)
class SampleStats:
    """What a generated file holds: `bad` rows must be rejected, `duplicates` dropped by the dedupe."""

    rows: int
    bad: int
    duplicates: int
    bytes: int

    @property
    def clean(self) -> int:
        """Rows the transform must write to the clean output."""
        return self.rows - self.bad - self.duplicates


@dataclass(frozen=True)
class _Row:
    """One template row: `pre`, the order id (block base + `offset`, unless `offset` is None), `post`."""

    pre: str
    offset: int | None
    post: str
    bad: bool
    duplicate: bool


def _timestamp(rng: random.Random) -> str:
    moment = EPOCH + timedelta(seconds=rng.randrange(0, 2 * 365 * 86400))
    style = rng.randrange(8)
    if style == 0:
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    if style == 1:
        return moment.strftime("%Y-%m-%dT%H:%M:%S")
    if style == 2:
        return moment.strftime("%d/%m/%Y %H:%M")
    if style == 3:
        return moment.strftime("%m-%d-%Y %H:%M")
    if style == 4:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if style == 5:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+02:00"
    if style == 6:
        return " " + moment.strftime("%Y-%m-%d %H:%M:%S") + " "
    return moment.strftime("%Y-%m-%d")


def _amount(rng: random.Random) -> str:
    cents = rng.randrange(1, 250_000_00)
    whole, frac = divmod(cents, 100)
    style = rng.randrange(5)
    if style == 0:
        return f"{whole}.{frac:02d}"
    if style == 1:
        return f'"${whole:,}.{frac:02d}"'
    if style == 2:
        return f" {whole}.{frac // 10} "
    if style == 3:
        return f"${whole}"
    if rng.random() < 0.2:
        return f"-{whole}.{frac:02d}"
    return f'"{whole:,}.{frac:02d}"'


def _name(rng: random.Random) -> tuple[str, str]:
    """A CSV field for the customer name (sometimes 'Last, First', quoted) and a matching email."""
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    email = (
        f"{first}.{last}@Example.COM".replace("'", "")
        if rng.random() < 0.5
        else f"{first}{rng.randrange(99)}@mail.org"
    )
    style = rng.randrange(6)
    if style == 0:
        field = f'"{last}, {first}"'
    elif style == 1:
        field = f"  {first} {last} "
    elif style == 2:
        field = "N/A" if rng.random() < 0.5 else ""
    elif style == 3:
        field = f'"{first} ""{last[:2]}"" {last}"'
    else:
        field = f"{first} {last}"
    email = f" {email.upper()} " if rng.random() < 0.2 else email
    return field, email


def _id_field(rng: random.Random) -> tuple[str, str]:
    return rng.choice((("", ""), ("#", ""), (" ", " "), (" #", "")))


# Each entry: (order id field or None to keep a valid id, amount, quantity, ordered_at, is_gift); None keeps
# the valid generated value. Every entry is rejected by the orders contract for the reason in the comment.
BAD_VARIANTS: tuple[tuple[str | None, str | None, str | None, str | None, str | None], ...] = (
    (None, None, None, "2024-02-30 10:00:00", None),  # no such day
    (None, None, None, "yesterday", None),  # matches no format
    (None, None, None, "15/13/2024 10:00", None),  # month 13
    (None, None, None, "", None),  # ordered_at is not nullable
    (None, None, None, "N/A", None),  # a null token in a non-nullable column
    (None, '"12,3x"', None, None, None),  # not a decimal once '$,' are stripped
    (None, "", None, None, None),  # amount is not nullable
    (None, '"$99,999,999,999.00"', None, None, None),  # 11 integer digits; decimal(12,2) allows 10
    (None, "12.345", None, None, None),  # three decimals; decimal(12,2) keeps two
    (None, None, "2.5", None, None),  # not an integer
    (None, None, "99999999999", None, None),  # overflows int
    (None, None, "three", None, None),  # not an integer
    (None, None, None, None, "maybe"),  # not a bool token
    ("#12a", None, None, None, None),  # not a bigint
    ("", None, None, None, None),  # order_id is not nullable
    (None, "abc", None, "31-31-2024 10:00", None),  # two problems in one row
)


def _template(seed: int, rows: int, dup_rate: float, bad_rate: float) -> list[_Row]:
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    template: list[_Row] = []
    valid_offsets: list[int] = []
    for offset in range(rows):
        draw = rng.random()
        bad = draw < bad_rate
        duplicate = not bad and bool(valid_offsets) and draw < bad_rate + dup_rate
        name, email = _name(rng)
        values = {
            "amount": _amount(rng),
            "quantity": rng.choice((str(rng.randrange(1, 20)), f" {rng.randrange(1, 9)} ", "")),
            "ordered_at": _timestamp(rng),
            "is_gift": rng.choice(BOOLS),
        }
        id_pre, id_post = _id_field(rng)
        id_offset: int | None = rng.choice(valid_offsets) if duplicate else offset
        if bad:
            bad_id, *bad_values = rng.choice(BAD_VARIANTS)
            for key, value in zip(("amount", "quantity", "ordered_at", "is_gift"), bad_values, strict=True):
                if value is not None:
                    values[key] = value
            if bad_id is not None:
                id_pre, id_post, id_offset = bad_id, "", None
        elif not duplicate:
            valid_offsets.append(offset)
        status = rng.choice(STATUSES)
        post = (
            f"{id_post},{name},{email},{rng.choice(COUNTRIES)},{values['amount']},{values['quantity']},"
            f"{status},{values['ordered_at']},{values['is_gift']}\n"
        )
        template.append(_Row(id_pre, id_offset, post, bad, duplicate))
    return template


def _write_blocks(out: IO[str], template: list[_Row], rows: int, start_id: int) -> None:
    parts = [(row.pre, row.offset, row.post) for row in template]
    written = 0
    base = start_id
    while written < rows:
        count = min(len(parts), rows - written)
        out.write(
            "".join(
                [
                    pre + post if offset is None else f"{pre}{base + offset}{post}"
                    for pre, offset, post in parts[:count]
                ]
            )
        )
        written += count
        base += len(parts)


def write_orders_csv(
    path: Path,
    *,
    rows: int,
    seed: int = 0,
    start_id: int = 1,
    dup_rate: float = 0.03,
    bad_rate: float = 0.02,
    gzip: bool = False,
) -> SampleStats:
    """Write `rows` dirty order rows and a header to `path`; say exactly what the transform must make of them.

    Rows come in blocks of `BLOCK_ROWS` that repeat with order ids shifted by the block size, so a gigabyte
    takes seconds. Bad rows carry one or two defects the orders contract rejects; duplicate rows are valid
    and repeat the order id of an earlier valid row of the same block (a later export line superseding it).
    """
    if rows < 0:
        raise ValueError(f"rows must be >= 0, not {rows}")
    if bad_rate < 0 or dup_rate < 0 or bad_rate + dup_rate >= 1:
        raise ValueError("bad_rate and dup_rate must be >= 0 with a sum below 1")
    template = _template(seed, min(rows, BLOCK_ROWS), dup_rate, bad_rate)
    full, rest = divmod(rows, len(template)) if template else (0, 0)
    bad = sum(r.bad for r in template) * full + sum(r.bad for r in template[:rest])
    dups = sum(r.duplicate for r in template) * full + sum(r.duplicate for r in template[:rest])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as file:
        # No name and mtime 0 in the gzip header: the same arguments give the same bytes, so a re-run
        # re-delivers identical content (which the ledger recognises) instead of a new version.
        raw = (
            gzip_module.GzipFile(filename="", mode="wb", fileobj=file, mtime=0, compresslevel=1)
            if gzip
            else file
        )
        with raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as out:
            out.write(HEADER)
            _write_blocks(out, template, rows, start_id)
    return SampleStats(rows=rows, bad=bad, duplicates=dups, bytes=path.stat().st_size)


def main(argv: list[str] | None = None) -> None:
    """Command line: python -m feedline.sample OUT.csv --rows N [--seed S] [--start-id I] [--gzip]."""
    parser = argparse.ArgumentParser(prog="python -m feedline.sample", description=__doc__)
    parser.add_argument("out", type=Path, help="file to write (add .gz with --gzip)")
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start-id", type=int, default=1)
    parser.add_argument("--dup-rate", type=float, default=0.03)
    parser.add_argument("--bad-rate", type=float, default=0.02)
    parser.add_argument("--gzip", action="store_true")
    args = parser.parse_args(argv)
    stats = write_orders_csv(
        args.out,
        rows=args.rows,
        seed=args.seed,
        start_id=args.start_id,
        dup_rate=args.dup_rate,
        bad_rate=args.bad_rate,
        gzip=args.gzip,
    )
    print(json.dumps({**asdict(stats), "clean": stats.clean}))


if __name__ == "__main__":
    main()
