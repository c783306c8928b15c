"""Reading landed files: compression, encodings, headers, malformed rows, dedupe and the row accounting."""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl
import pytest
from feed_builders import Run, make_feed, one_column, transform

from feedline.errors import BadFileError, ContractError
from feedline.transform import InvariantError, TransformResult, transform_file
from feedline.transform.result import TransformResult as ResultClass
from feedline.transform.run import _check, _Counts

TWO = make_feed([{"name": "id", "type": "int", "nullable": False}, {"name": "name", "type": "string"}])
KEYED = make_feed(
    [{"name": "id", "type": "int", "nullable": False}, {"name": "name", "type": "string"}], primary_key=["id"]
)


def test_gzip_by_suffix_by_magic_and_declared(run: Run) -> None:
    data = gzip.compress(b"id,name\n1,a\n2,b\n")
    assert run(TWO, data=data, name="x.csv.gz").column("name") == ["a", "b"]
    assert run(TWO, data=data, name="x.csv").column("name") == ["a", "b"]
    declared = make_feed(
        [{"name": "id", "type": "int"}, {"name": "name", "type": "string"}], csv={"compression": "gzip"}
    )
    assert run(declared, data=data, name="x.dat").result.rows_out == 2


@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_damaged_gzip_is_a_bad_file(run: Run, damage: str) -> None:
    data = gzip.compress(b"id,name\n" + b"".join(b"%d,name%d\n" % (i, i) for i in range(5000)))
    data = data[: len(data) // 2] if damage == "truncated" else data[:20] + b"\x00" * 50 + data[70:]
    with pytest.raises(BadFileError, match=r"x\.csv\.gz: is not a complete gzip file .*re-upload it"):
        run(TWO, data=data, name="x.csv.gz")


def test_latin1_is_transcoded(run: Run) -> None:
    feed = make_feed(
        [{"name": "id", "type": "int"}, {"name": "name", "type": "string"}], csv={"encoding": "latin-1"}
    )
    out = run(feed, data="id,name\n1,José Müller\n".encode("latin-1"))
    assert out.column("name") == ["José Müller"]


def test_gzip_and_utf16_together(run: Run) -> None:
    feed = make_feed(
        [{"name": "id", "type": "int"}, {"name": "name", "type": "string"}], csv={"encoding": "utf-16"}
    )
    out = run(feed, data=gzip.compress("id,name\n1,Zoë\n".encode("utf-16")), name="x.csv.gz")
    assert out.column("name") == ["Zoë"]


def test_wrong_encoding_names_the_position_and_the_fix(run: Run) -> None:
    data = b"id,name\n1,ok\n2,caf\xe9\n"
    with pytest.raises(
        BadFileError, match=r"in\.csv: cannot be decoded as UTF-8 \(byte offset 18, line 3\); set"
    ):
        run(TWO, data=data)
    late = b"id,name\n" + b"1,ok\n" * 20_000 + b"2,caf\xe9\n"
    with pytest.raises(BadFileError, match=r"cannot be decoded as UTF-8 \(byte offset 100013, line 20002\)"):
        run(TWO, data=late)


def test_text_not_in_the_declared_encoding_is_a_bad_file(run: Run) -> None:
    feed = make_feed(
        [{"name": "id", "type": "int"}, {"name": "name", "type": "string"}], csv={"encoding": "ascii"}
    )
    with pytest.raises(
        BadFileError, match=r"cannot be decoded as ascii \(byte offset 13 of the decompressed text\)"
    ):
        run(feed, data=b"id,name\n1,caf\xe9\n")


def test_utf8_bom_is_tolerated(run: Run) -> None:
    out = run(TWO, data=b"\xef\xbb\xbfid,name\n1,a\n")
    assert out.column("id") == [1]
    positional = make_feed([{"name": "id", "type": "int"}], csv={"header": False})
    assert run(positional, data=b"\xef\xbb\xbf7\n8\n").column("id") == [7, 8]


def test_windows_line_endings(run: Run) -> None:
    feed = make_feed([{"name": "id", "type": "int"}, {"name": "name", "type": "string", "trim": False}])
    out = run(feed, 'id,name\r\n1,a\r\n2,"b\r\nc"\r\n')
    assert out.clean.rows() == [(1, "a"), (2, "b\r\nc")]


def test_quoted_delimiters_quotes_and_newlines(run: Run) -> None:
    out = run(TWO, 'id,name\n1,"Smith, John"\n2,"O""Brien"\n3,"two\nlines"\n4,plain\n')
    assert out.column("name") == ["Smith, John", 'O"Brien', "two\nlines", "plain"]


def test_other_delimiter_and_quote(run: Run) -> None:
    feed = make_feed(
        [{"name": "id", "type": "int"}, {"name": "name", "type": "string"}],
        csv={"delimiter": ";", "quote": "'"},
    )
    assert run(feed, "id;name\n1;'a;b'\n").column("name") == ["a;b"]


def test_header_only_gives_two_empty_outputs(run: Run) -> None:
    out = run(KEYED, "id,name\n")
    assert out.result.to_dict() | {"seconds": 0} == {
        "rows_in": 0,
        "rows_out": 0,
        "rows_rejected": 0,
        "duplicates_dropped": 0,
        "bytes_in": 8,
        "seconds": 0,
        "columns_dropped": [],
    }
    assert out.clean.schema == pl.Schema({"id": pl.Int32, "name": pl.String})
    assert out.rejected.schema == pl.Schema(
        {"_line": pl.Int64, "_reason": pl.String, "id": pl.String, "name": pl.String}
    )


def test_empty_file_is_a_bad_file(run: Run) -> None:
    with pytest.raises(BadFileError, match="is empty, not even a header line"):
        run(TWO, "")


def test_empty_file_without_header_is_zero_rows(run: Run) -> None:
    feed = make_feed([{"name": "id", "type": "int"}], csv={"header": False})
    assert run(feed, "").result.rows_in == 0


def test_missing_columns_are_named_with_the_columns_found(run: Run) -> None:
    feed = make_feed(
        [{"name": "id", "type": "int"}, {"name": "name", "type": "string"}, {"name": "x", "type": "int"}]
    )
    with pytest.raises(BadFileError) as caught:
        run(feed, "ID,nom\n1,a\n")
    assert str(caught.value).endswith(
        "in.csv: header lacks required column(s) name, x (found: ID, nom); "
        "fix the export or the feed's columns/source names"
    )


def test_duplicate_header_is_a_bad_file(run: Run) -> None:
    with pytest.raises(BadFileError, match=r"has column 'id' twice \(fields 1 and 3\)"):
        run(TWO, "id,name,ID\n1,a,2\n")


def test_header_matching_ignores_case_spaces_order_and_extra_columns(run: Run) -> None:
    out = run(TWO, " Name ,extra, ID \nb,zzz,2\n")
    assert out.clean.columns == ["id", "name"]
    assert out.clean.row(0) == (2, "b")


def test_source_names_the_header(run: Run) -> None:
    feed = make_feed([{"name": "order_id", "type": "int", "source": "Order Number"}])
    assert run(feed, "Order Number\n7\n").column("order_id") == [7]


def test_positional_columns_without_header(run: Run) -> None:
    feed = make_feed(
        [{"name": "id", "type": "int"}, {"name": "name", "type": "string"}], csv={"header": False}
    )
    out = run(feed, "1,a\n2,b\n3,c,extra\n")
    assert out.clean.rows() == [(1, "a"), (2, "b")]
    assert out.reasons() == ["row has more than 2 fields"]
    assert list(out.rejected["_line"]) == [3]


def test_surplus_fields_and_blank_lines_are_rejected_rows(run: Run) -> None:
    out = run(TWO, "id,name\n1,a\n2,b,c\n\n4,d\n")
    assert out.column("id") == [1, 4]
    assert out.rejected.select("_line", "_reason").rows() == [
        (2, "row has more than 2 fields"),
        (3, "row is empty"),
    ]
    assert out.result.rows_in == 4


@pytest.mark.parametrize(
    ("dedupe", "kept"),
    [
        ("first", [(1, "first"), (2, "x"), (3, "z")]),
        ("last", [(1, "third"), (3, "z"), (2, "again")]),  # each where its kept row stands in the file
    ],
)
def test_dedupe_keeps_the_chosen_valid_occurrence(run: Run, dedupe: str, kept: list[tuple[int, str]]) -> None:
    keyed = make_feed(
        [{"name": "id", "type": "int", "nullable": False}, {"name": "name", "type": "string"}],
        primary_key=["id"],
        dedupe=dedupe,
    )
    out = run(keyed, "id,name\n1,first\n2,x\n1,second\nbad,y\n1,third\n3,z\n2,again\n")
    assert out.clean.rows() == kept
    assert (
        out.result.rows_in,
        out.result.rows_out,
        out.result.rows_rejected,
        out.result.duplicates_dropped,
    ) == (7, 3, 1, 3)


@pytest.mark.parametrize(
    ("dedupe", "text"), [("first", "id,n\n1,oops\n1,2\n"), ("last", "id,n\n1,2\n1,oops\n")]
)
def test_dedupe_ignores_rejected_occurrences(run: Run, dedupe: str, text: str) -> None:
    feed = make_feed(
        [{"name": "id", "type": "int", "nullable": False}, {"name": "n", "type": "int"}],
        primary_key=["id"],
        dedupe=dedupe,
    )
    out = run(feed, text)
    assert out.clean.rows() == [(1, 2)]
    assert (out.result.rows_rejected, out.result.duplicates_dropped) == (1, 0)


def test_composite_primary_key(run: Run) -> None:
    feed = make_feed(
        [
            {"name": "a", "type": "int", "nullable": False},
            {"name": "b", "type": "string", "nullable": False},
            {"name": "v", "type": "int"},
        ],
        primary_key=["a", "b"],
    )
    out = run(feed, "a,b,v\n1,x,1\n1,y,2\n1,x,3\n2,x,4\n1, y ,5\n")
    assert out.clean.rows() == [(1, "x", 1), (1, "y", 2), (2, "x", 4)]
    assert out.result.duplicates_dropped == 2


def test_without_primary_key_nothing_is_deduplicated(run: Run) -> None:
    out = run(TWO, "id,name\n1,a\n1,a\n")
    assert out.result.rows_out == 2
    assert out.result.duplicates_dropped == 0


def test_errors_leave_no_outputs_behind(tmp_path: Path) -> None:
    clean, rejected = tmp_path / "clean.parquet", tmp_path / "rejected.parquet"
    clean.write_bytes(b"old")
    rejected.write_bytes(b"old")
    source = tmp_path / "in.csv"
    source.write_bytes(b"nope\n1\n")
    with pytest.raises(BadFileError):
        transform_file(TWO, source, clean, rejected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_outputs_replace_older_ones(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "clean.parquet").write_bytes(b"old")
    source = tmp_path / "in.csv"
    source.write_text("id,name\n1,a\n")
    assert transform(TWO, source, tmp_path / "out").column("id") == [1]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["clean.parquet", "rejected.parquet"]


def test_result_round_trips_through_a_dict() -> None:
    result = TransformResult(
        rows_in=5, rows_out=3, rows_rejected=1, duplicates_dropped=1, bytes_in=99, seconds=0.25
    )
    assert TransformResult.from_dict({**result.to_dict(), "later_field": 1}) == result
    assert ResultClass is TransformResult


def test_unbalanced_accounting_raises(tmp_path: Path) -> None:
    result = TransformResult(
        rows_in=5, rows_out=3, rows_rejected=1, duplicates_dropped=0, bytes_in=1, seconds=0
    )
    with pytest.raises(InvariantError, match="row accounting does not balance"):
        _check(KEYED, result, _Counts(rows_in=5, last_line=5, valid=3), tmp_path / "x.csv")
    balanced = TransformResult(
        rows_in=5, rows_out=3, rows_rejected=1, duplicates_dropped=1, bytes_in=1, seconds=0
    )
    with pytest.raises(InvariantError, match="3 rows written from 4 valid rows"):
        _check(TWO, balanced, _Counts(rows_in=5, last_line=5, valid=4), tmp_path / "x.csv")
    _check(KEYED, balanced, _Counts(rows_in=5, last_line=5, valid=4), tmp_path / "x.csv")


def test_trailing_empty_fields_are_tolerated(run: Run) -> None:
    out = run(TWO, "id,name\n1,a,\n2,b,,\n")
    assert out.clean.rows() == [(1, "a"), (2, "b")]


@pytest.mark.parametrize("name", ["_line", "_reason", "__x"])
def test_reserved_column_names_are_refused(tmp_path: Path, name: str) -> None:
    feed = make_feed([{"name": name, "type": "int"}])
    (tmp_path / "in.csv").write_text(f"{name}\n1\n")
    with pytest.raises(ContractError, match=f"column name\\(s\\) {name} are reserved by the transform"):
        transform(feed, tmp_path / "in.csv", tmp_path / "out")


def test_one_column_feed(run: Run) -> None:
    out = run(one_column("int"), "id,v\n,\n")
    assert out.reasons() == ["row is empty"]
