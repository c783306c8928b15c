"""Cleaning and typing rules, column by column, read back from the clean and rejected Parquet."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import polars as pl
import pytest
from feed_builders import Run, make_feed, one_column


def _csv(values: list[str], header: str = "id,v") -> str:
    return header + "\n" + "".join(f"{i},{v}\n" for i, v in enumerate(values))


def test_strip_chars_removes_every_listed_character_anywhere(run: Run) -> None:
    feed = one_column("bigint", strip_chars="#_")
    out = run(feed, _csv(["#12", "1_000", "#4#2#", "12#a"]))
    assert out.column("v") == [12, 1000, 42]
    assert out.reasons() == ["v: '12#a' is not an integer (bigint)"]


def test_strip_chars_then_trim_then_null_tokens(run: Run) -> None:
    feed = one_column("string", strip_chars="$")
    out = run(feed, _csv(["  a b  ", "$ N/A $", "\tx\t", "$"]))
    assert out.column("v") == ["a b", None, "x", None]


def test_trim_false_keeps_whitespace(run: Run) -> None:
    out = run(one_column("string", trim=False), _csv(["  a  ", "b"]))
    assert out.column("v") == ["  a  ", "b"]


def test_feed_null_tokens_apply_after_trim_and_are_case_sensitive(run: Run) -> None:
    feed = make_feed(
        [{"name": "id", "type": "string"}, {"name": "v", "type": "string"}], csv={"null_tokens": ["", "NIL"]}
    )
    out = run(feed, _csv([" NIL ", "nil", "N/A", ""]))
    assert out.column("v") == [None, "nil", "N/A", None]


def test_column_null_tokens_replace_the_feed_tokens(run: Run) -> None:
    feed = one_column("string", case="lower", null_tokens=["", "unknown", "?"])
    out = run(feed, _csv(["unknown", " ? ", "N/A", "UNKNOWN", "Shipped"]))
    # tokens are compared before lowering the case, and the feed's default tokens (N/A) no longer apply
    assert out.column("v") == [None, None, "n/a", "unknown", "shipped"]


def test_null_token_in_a_typed_column_is_null_not_invalid(run: Run) -> None:
    out = run(one_column("int"), _csv(["N/A", "-", "null", "7"]))
    assert out.column("v") == [None, None, None, 7]
    assert out.result.rows_rejected == 0


def test_case_lower_and_upper(run: Run) -> None:
    feed = make_feed(
        [
            {"name": "email", "type": "string", "case": "lower"},
            {"name": "country", "type": "string", "case": "upper"},
        ]
    )
    out = run(feed, "email,country\n John.Smith@Example.COM , de\nZOË@X.ORG,Fr\n")
    assert out.column("email") == ["john.smith@example.com", "zoë@x.org"]
    assert out.column("country") == ["DE", "FR"]


def test_int_rejects_fractions_garbage_and_overflow(run: Run) -> None:
    out = run(
        one_column("int"), _csv(["12", "+7", "-5", "007", "12.5", "2147483648", "-2147483648", "three"])
    )
    assert out.column("v") == [12, 7, -5, 7, -2147483648]
    assert out.clean.schema["v"] == pl.Int32
    assert out.reasons() == [
        "v: '12.5' is not an integer (int)",
        "v: '2147483648' is out of range for int",
        "v: 'three' is not an integer (int)",
    ]


def test_bigint_range(run: Run) -> None:
    out = run(one_column("bigint"), _csv(["9223372036854775807", "9223372036854775808", "1e3"]))
    assert out.column("v") == [9223372036854775807]
    assert out.clean.schema["v"] == pl.Int64
    assert out.reasons() == [
        "v: '9223372036854775808' is out of range for bigint",
        "v: '1e3' is not an integer (bigint)",
    ]


def test_float(run: Run) -> None:
    out = run(one_column("float"), _csv(["1.5", "1.5e3", "-2", "abc"]))
    assert out.column("v") == [1.5, 1500.0, -2.0]
    assert out.clean.schema["v"] == pl.Float64
    assert out.reasons() == ["v: 'abc' is not a float"]


def test_decimal_scale_and_precision(run: Run) -> None:
    values = ["12.3", "12.340", "-3.20", ".5", "1234567890.12", "12.345", "12345678901", "1e3", '"1,5"']
    out = run(one_column("decimal(12,2)"), _csv(values))
    assert out.clean.schema["v"] == pl.Decimal(12, 2)
    assert out.column("v") == [
        Decimal("12.30"),
        Decimal("12.34"),
        Decimal("-3.20"),
        Decimal("0.50"),
        Decimal("1234567890.12"),
    ]
    assert out.reasons() == [
        "v: '12.345' does not fit decimal(12,2) (too many integer digits or decimals)",
        "v: '12345678901' does not fit decimal(12,2) (too many integer digits or decimals)",
        "v: '1e3' is not a decimal(12,2)",
        "v: '1,5' is not a decimal(12,2)",
    ]


def test_decimal_with_strip_chars_like_the_orders_feed(run: Run) -> None:
    feed = one_column("decimal(12,2)", strip_chars="$,")
    out = run(feed, _csv(['"$1,234.50"', "$7", '"12,3x"']))
    assert out.column("v") == [Decimal("1234.50"), Decimal("7.00")]
    assert out.reasons() == ["v: '12,3x' is not a decimal(12,2)"]


def test_decimal_without_scale(run: Run) -> None:
    out = run(one_column("decimal(3,0)"), _csv(["999", "1000", "5.0", "5.5"]))
    assert out.column("v") == [Decimal(999), Decimal(5)]
    assert out.result.rows_rejected == 2


def test_bool_tokens_are_case_insensitive(run: Run) -> None:
    out = run(one_column("bool"), _csv(["yes", "NO", "True", "0", " Y ", "f", "", "maybe"]))
    assert out.column("v") == [True, False, True, False, True, False, None]
    assert out.reasons() == [
        "v: 'maybe' is not a bool (true: true/t/yes/y/1, false: false/f/no/n/0)",
    ]


def test_bool_custom_tokens(run: Run) -> None:
    feed = one_column("bool", true_values=["ja", "x"], false_values=["nein"])
    out = run(feed, _csv(["JA", "x", "Nein", "yes"]))
    assert out.column("v") == [True, True, False]
    assert out.reasons() == ["v: 'yes' is not a bool (true: ja/x, false: nein)"]


ORDERS_FORMATS = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%d/%m/%Y %H:%M", "%m-%d-%Y %H:%M"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-05 14:07:09", datetime(2024, 3, 5, 14, 7, 9)),
        ("2024-03-05T14:07:09", datetime(2024, 3, 5, 14, 7, 9)),
        ("05/03/2024 14:07", datetime(2024, 3, 5, 14, 7)),
        ("03-05-2024 14:07", datetime(2024, 3, 5, 14, 7)),
        ("5/3/2024 4:07", datetime(2024, 3, 5, 4, 7)),
        ("2024-03-05T14:07:09Z", datetime(2024, 3, 5, 14, 7, 9)),
        ("2024-03-05T14:07:09.123+02:00", datetime(2024, 3, 5, 12, 7, 9, 123000)),
        ("2024-03-05T14:07:09-0530", datetime(2024, 3, 5, 19, 37, 9)),
        ("2024-03-05 14:07:09+01", datetime(2024, 3, 5, 13, 7, 9)),
        ("2024-03-05T14:07:09.123456789Z", datetime(2024, 3, 5, 14, 7, 9, 123456)),
        ("2024-03-05T14:07:09.5", datetime(2024, 3, 5, 14, 7, 9, 500000)),
        ("2024-03-05T14:07", datetime(2024, 3, 5, 14, 7)),
        ("2024-03-05", datetime(2024, 3, 5)),
    ],
)
def test_timestamp_formats_then_iso(run: Run, text: str, expected: datetime) -> None:
    out = run(one_column("timestamp", formats=ORDERS_FORMATS), _csv([text]))
    assert out.clean.schema["v"] == pl.Datetime("us")
    assert out.column("v") == [expected]


@pytest.mark.parametrize(
    "text",
    [
        "2024-02-30 10:00:00",
        "15/13/2024 10:00",
        "yesterday",
        "2024-03-05T14:07:09+25:00",
        "2024-03-05T24:00:00",
        "2024-03-05T14:07:09x",
        "31-31-2024 10:00",
    ],
)
def test_malformed_timestamps_are_rejected(run: Run, text: str) -> None:
    out = run(one_column("timestamp", formats=ORDERS_FORMATS), _csv([text]))
    assert out.result.rows_out == 0
    assert out.reasons() == [f"v: '{text}' is not a timestamp (tried {', '.join(ORDERS_FORMATS)}, ISO 8601)"]


def test_first_declared_format_wins(run: Run) -> None:
    feed = one_column("date", formats=["%m/%d/%Y", "%d/%m/%Y"])
    out = run(feed, _csv(["03/04/2024", "13/04/2024", "2024-04-03"]))
    assert out.clean.schema["v"] == pl.Date
    assert out.column("v") == [date(2024, 3, 4), date(2024, 4, 13), date(2024, 4, 3)]


def test_formats_without_a_usual_width_still_parse(run: Run) -> None:
    feed = one_column("date", formats=["%B %d, %Y"])
    out = run(feed, _csv(['"March 5, 2024"', "2024-03-06", "Smarch 5, 2024"]))
    assert out.column("v") == [date(2024, 3, 5), date(2024, 3, 6)]
    assert out.result.rows_rejected == 1


def test_not_nullable_rejects_missing_and_null_tokens(run: Run) -> None:
    out = run(one_column("int", nullable=False), _csv(["1", "", "N/A", "  "]))
    assert out.column("v") == [1]
    assert out.reasons() == ["v: required value is missing"] * 3
    assert list(out.rejected["_line"]) == [2, 3, 4]


def test_every_problem_of_a_row_is_named(run: Run) -> None:
    feed = make_feed(
        [
            {"name": "a", "type": "int", "nullable": False},
            {"name": "b", "type": "decimal(5,2)"},
            {"name": "c", "type": "date"},
        ]
    )
    out = run(feed, "a,b,c\n,12345.6,2024-13-01\n")
    assert out.reasons() == [
        "a: required value is missing; "
        "b: '12345.6' does not fit decimal(5,2) (too many integer digits or decimals); "
        "c: '2024-13-01' is not a date (tried ISO 8601)"
    ]


def test_output_schemas_follow_the_contract(run: Run) -> None:
    feed = make_feed(
        [
            {"name": "s", "type": "string"},
            {"name": "i", "type": "int"},
            {"name": "b", "type": "bigint"},
            {"name": "f", "type": "float"},
            {"name": "o", "type": "bool"},
            {"name": "d", "type": "date"},
            {"name": "t", "type": "timestamp"},
            {"name": "m", "type": "decimal(38,10)"},
        ]
    )
    out = run(feed, "m,t,d,o,f,b,i,s\n1.5,2024-01-01 00:00:00,2024-01-02,no,2.5,3,4,x\n")
    assert out.clean.schema == pl.Schema(
        {
            "s": pl.String,
            "i": pl.Int32,
            "b": pl.Int64,
            "f": pl.Float64,
            "o": pl.Boolean,
            "d": pl.Date,
            "t": pl.Datetime("us"),
            "m": pl.Decimal(38, 10),
        }
    )
    assert out.clean.row(0) == ("x", 4, 3, 2.5, False, date(2024, 1, 2), datetime(2024, 1, 1), Decimal("1.5"))
    assert out.rejected.schema == pl.Schema(
        {"_line": pl.Int64, "_reason": pl.String, **{c: pl.String for c in "sibfodtm"}}
    )


def test_rejected_rows_keep_the_raw_text(run: Run) -> None:
    feed = one_column("decimal(12,2)", strip_chars="$,", nullable=False)
    out = run(feed, 'id,v\n a ,"$1,2x"\n')
    assert out.rejected.row(0) == (1, "v: '$1,2x' is not a decimal(12,2)", " a ", "$1,2x")
