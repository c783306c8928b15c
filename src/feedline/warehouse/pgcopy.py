"""Arrow record batches as PostgreSQL binary COPY data, encoded column-wise with Arrow and NumPy."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from feedline.contract import ColumnType
from feedline.errors import TerminalError

HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8  # signature, flags, header extension length
TRAILER = b"\xff\xff"
BATCH_ROWS = 65_536
_NULL = b"\xff\xff\xff\xff"  # a field of length -1
_PG_EPOCH_DAYS = 10_957  # 2000-01-01, PostgreSQL's epoch, in days since 1970-01-01
_PG_EPOCH_US = _PG_EPOCH_DAYS * 86_400 * 1_000_000
_FIXED = {"int": ">i4", "bigint": ">i8", "float": ">f8", "date": ">i4", "timestamp": ">i8"}


def copy_data(
    parquet: Path,
    columns: Sequence[tuple[str, ColumnType]],
    *,
    row_order: bool = False,
    constants: Sequence[tuple[ColumnType, Any]] = (),
    batch_rows: int = BATCH_ROWS,
) -> Iterator[memoryview | bytes]:
    """The whole binary COPY stream of a Parquet file's `columns` (in that order), one chunk per record
    batch; with `row_order`, a bigint field numbering the rows from 0 in file order follows them, then
    the `constants` (the same values on every row: lineage).

    Memory stays bounded by one batch: nothing is converted row by row in Python."""
    import pyarrow.parquet as pq

    names = [name for name, _ in columns]
    tail = encode_constants(constants)
    yield HEADER
    first = 0
    for batch in pq.ParquetFile(parquet).iter_batches(batch_size=batch_rows, columns=names):
        yield encode_batch(batch, [t for _, t in columns], first if row_order else None, tail)
        first += batch.num_rows
    yield TRAILER


def encode_constants(values: Sequence[tuple[ColumnType, Any]]) -> tuple[int, bytes]:
    """(field count, COPY fields) of values repeated on every row."""
    import pyarrow as pa

    arrow = {"string": pa.large_string(), "timestamp": pa.timestamp("us"), "bigint": pa.int64()}
    fields = [_encode(pa.array([value], arrow[type_.name]), type_)[0].as_py() for type_, value in values]
    return len(fields), b"".join(fields)


def encode_batch(
    batch: Any, types: Sequence[ColumnType], first_row: int | None = None, tail: tuple[int, bytes] = (0, b"")
) -> memoryview:
    """One record batch as binary COPY tuples (no header or trailer)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = batch.num_rows
    fields = [_encode(batch.column(i), t) for i, t in enumerate(types)]
    if first_row is not None:
        fields.append(_fixed(np.arange(first_row, first_row + n, dtype=">i8"), None))
    count = np.full(n, len(fields) + tail[0], dtype=">i2")
    head = _binary(pa.FixedSizeBinaryArray.from_buffers(pa.binary(2), n, [None, pa.py_buffer(count)]))
    null = pa.scalar(_NULL, pa.large_binary())
    empty = pa.scalar(b"", pa.large_binary())
    parts = [head, *[pc.fill_null(f, null) for f in fields]]
    if tail[0]:
        parts.append(pa.scalar(tail[1], pa.large_binary()))
    rows = pc.binary_join_element_wise(*parts, empty)
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int64, count=rows.offset + n + 1)
    return memoryview(rows.buffers()[2])[int(offsets[rows.offset]) : int(offsets[rows.offset + n])]


def _encode(column: Any, type_: ColumnType) -> Any:
    """Each value as one COPY field (length, then big-endian bytes); nulls stay null."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = type_.name
    arrow = {"string": pa.large_binary(), "int": pa.int32(), "bigint": pa.int64(), "float": pa.float64(),
             "bool": pa.bool_(), "date": pa.date32(), "timestamp": pa.timestamp("us"),
             "decimal": pa.decimal128(type_.precision or 18, type_.scale or 0)}  # fmt: skip
    if kind not in arrow:
        raise TerminalError(f"no PostgreSQL binary encoding for column type {type_}")
    typed = column.cast(arrow[kind])
    if kind == "string":
        lengths = pc.binary_length(typed).fill_null(0).to_numpy().astype(">i4")
        prefix = pa.FixedSizeBinaryArray.from_buffers(pa.binary(4), len(typed), [None, pa.py_buffer(lengths)])
        return pc.binary_join_element_wise(_binary(prefix), typed, pa.scalar(b"", pa.large_binary()))
    if typed.null_count == len(typed):  # nothing to encode (a column of nulls may have no data buffer)
        return pa.nulls(len(typed), pa.large_binary())
    if kind == "decimal":
        return _numeric(typed, type_)
    if kind == "bool":
        return _fixed(typed.fill_null(False).to_numpy(zero_copy_only=False).astype(np.uint8), typed)
    width = 8 if kind in ("bigint", "float", "timestamp") else 4
    raw = np.frombuffer(typed.buffers()[1], dtype=f"<{'f' if kind == 'float' else 'i'}{width}",
                        count=typed.offset + len(typed))[typed.offset :]  # fmt: skip
    if kind == "date":
        raw = raw - _PG_EPOCH_DAYS
    elif kind == "timestamp":
        raw = raw - _PG_EPOCH_US
    return _fixed(raw.astype(_FIXED[kind]), typed)


def _numeric(column: Any, type_: ColumnType) -> Any:
    """NUMERIC's binary form with a fixed number of base-10000 digits per column (PostgreSQL strips the
    leading and trailing zero digits on receipt): ndigits, weight, sign, dscale, digits."""
    import numpy as np

    n, precision, scale = len(column), type_.precision or 18, type_.scale or 0
    words = np.frombuffer(column.buffers()[1], dtype="<i8", count=2 * (column.offset + n))
    low, high = words[2 * column.offset :: 2], words[2 * column.offset + 1 :: 2]
    negative = high < 0
    frac_digits, partial = -(-scale // 4), scale % 4
    ndigits = max(-(-(precision - scale) // 4) + frac_digits, 1)
    digits = np.zeros((n, ndigits), dtype=np.int64)
    divide = _int64_divider(low) if precision <= 18 else _int128_divider(low, high, negative)
    position = ndigits - 1
    if partial:  # the last digit holds the scale's remainder, padded with zeros
        digits[:, position] = divide(10**partial) * 10 ** (4 - partial)
        position -= 1
    while position >= 0:
        digits[:, position] = divide(10_000)
        position -= 1
    head = np.empty((n, 4), dtype=np.int64)
    head[:, 0], head[:, 1], head[:, 3] = ndigits, ndigits - frac_digits - 1, scale
    head[:, 2] = np.where(negative, 0x4000, 0)
    return _fixed(np.concatenate([head, digits], axis=1).astype(">i2"), column)


def _int64_divider(low: Any) -> Any:
    """Successive remainders of |value| for precisions up to 18 (the value fits in the low word)."""
    import numpy as np

    magnitude = np.abs(low)

    def divide(divisor: int) -> Any:
        nonlocal magnitude
        magnitude, remainder = np.divmod(magnitude, divisor)
        return remainder

    return divide


def _int128_divider(low: Any, high: Any, negative: Any) -> Any:
    """Successive remainders of |value| for 128-bit decimals: long division over four 32-bit limbs."""
    import numpy as np

    mask, shift = np.uint64(0xFFFFFFFF), np.uint64(32)
    lo, hi = low.view(np.uint64), high.view(np.uint64)
    limbs = [hi >> shift, hi & mask, lo >> shift, lo & mask]
    carry = negative.astype(np.uint64)  # two's complement: invert, then add one
    for i in (3, 2, 1, 0):
        limb = np.where(negative, ~limbs[i] & mask, limbs[i]) + carry
        carry, limbs[i] = limb >> shift, limb & mask

    def divide(divisor: int) -> Any:
        d = np.uint64(divisor)
        remainder = np.zeros(len(lo), dtype=np.uint64)
        for i in range(4):
            current = (remainder << shift) | limbs[i]
            limbs[i] = current // d
            remainder = current - limbs[i] * d
        return remainder.astype(np.int64)

    return divide


def _fixed(values: Any, validity_of: Any) -> Any:
    """Fixed-width big-endian values (one row per entry of `values`) as length-prefixed COPY fields,
    null where `validity_of` (an Arrow array, or None) is null."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(values)
    width = values.itemsize * (values.shape[1] if values.ndim == 2 else 1)
    out = np.empty((n, 4 + width), dtype=np.uint8)
    out[:, :4] = np.array([width], dtype=">i4").view(np.uint8)
    out[:, 4:] = np.ascontiguousarray(values).view(np.uint8).reshape(n, width)
    validity = None
    if validity_of is not None and validity_of.null_count:
        validity = pc.is_valid(validity_of).buffers()[1]
    array = pa.FixedSizeBinaryArray.from_buffers(pa.binary(4 + width), n, [validity, pa.py_buffer(out)])
    return _binary(array)


def _binary(array: Any) -> Any:
    import pyarrow as pa

    return array.cast(pa.large_binary())
