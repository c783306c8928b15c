"""The inferred feed as commented YAML, written by hand (no YAML library keeps comments) and quoted safely."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from feedline.infer.columns import Setting

if TYPE_CHECKING:
    from feedline.infer import Inference
    from feedline.infer.sample import Sample

COMMENT_AT = 40
"""Comments start at this column when the line is shorter, so they read as a second column."""
PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]*$")
YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "none"}
"""Words YAML 1.1 reads as bools or null when unquoted."""


def scalar(value: Any) -> str:
    """A YAML scalar or flow collection that reads back as `value` (plain only when unambiguous)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        return text if "e" not in text and "n" not in text else f"{value:.12f}".rstrip("0")
    if isinstance(value, list | tuple):
        return "[" + ", ".join(scalar(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {scalar(v)}" for k, v in value.items()) + "}"
    text = str(value)
    if PLAIN.match(text) and text.lower() not in YAML_WORDS:
        return text
    return quote(text)


def quote(text: str) -> str:
    """A double-quoted YAML string; anything not printable is escaped (YAML forbids it raw)."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char.isprintable():
            out.append(char)
        else:
            out.append(f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08x}")
    return '"' + "".join(out) + '"'


def _comment(note: str) -> str:
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in note)


def _line(indent: int, text: str, note: str = "") -> str:
    line = " " * indent + text
    return f"{line:<{COMMENT_AT}}  # {_comment(note)}" if note else line


def _mapping(indent: int, settings: dict[str, Setting], first: str = "") -> list[str]:
    lines = []
    for i, (key, setting) in enumerate(settings.items()):
        prefix = first if i == 0 else " " * len(first)
        lines.append(_line(indent, f"{prefix}{key}: {scalar(setting.value)}", setting.note))
    return lines


def render(inference: Inference) -> str:
    """The inference as a commented feed YAML."""
    sample, rows = inference.sample, inference.rows
    read = f"{rows:,} rows read" + (", the start of a longer file" if sample.more else "")
    key = inference.primary_key.value
    lines = [
        f"# Feed {inference.feed!r} inferred by `feedline infer` from {_comment(str(sample.path))} ({read}).",
        "# REVIEW BEFORE USE: every type, key and rule below describes that sample only. Check the primary",
        "# key, widen decimal precisions and max_length where larger values may come, drop rules that do",
        "# not hold in general, and set source.uri. Each comment says what its value is based on.",
        "# `feedline validate` checks the result.",
        f"name: {inference.feed}",
        f"description: {quote(f'Inferred from {sample.path.name}; review before use.')}",
        "source:",
        *_mapping(2, _source(inference.feed, sample)),
        "csv:",
        *_mapping(2, _csv(sample)),
        "columns:",
    ]
    for column in inference.columns:
        lines += _mapping(2, column.settings, first="- ")
    lines.append(_line(0, f"primary_key: {scalar(key)}", inference.primary_key.note))
    mode = "upsert" if key else "append"
    lines += [
        "target:",
        _line(2, f"table: {inference.feed}", "named after the feed"),
        _line(
            2, f"mode: {mode}", "rows replace those with the same key" if key else "no key: rows are added"
        ),
        "checks:",
        *(_line(2, f"- {scalar(c.value)}", c.note) for c in inference.checks),
    ]
    return "\n".join(lines) + "\n"


def _source(feed: str, sample: Sample) -> dict[str, Setting]:
    suffixes = [s.lower() for s in sample.path.suffixes if s.lower() != ".gz"]
    suffix = suffixes[-1] if suffixes else ""
    return {
        "uri": Setting(f"data/landing/{feed}", "a folder (relative to the project) or s3://bucket/prefix/"),
        "pattern": Setting(f"*{suffix}*", f"files named like {sample.path.name}"),
    }


def _csv(sample: Sample) -> dict[str, Setting]:
    gz = sample.path.suffix.lower() == ".gz"
    if gz:
        compression = Setting("gzip", "the sample ends in .gz")
    elif sample.compressed:
        compression = Setting(
            "auto", "the sample is gzip without a .gz suffix: auto tells by its first bytes"
        )
    else:
        compression = Setting("auto", "auto also reads .gz files")
    return {
        "delimiter": Setting(sample.delimiter, sample.delimiter_note),
        "header": Setting(True, "the first line is taken as the header"),
        "encoding": Setting(sample.encoding, sample.encoding_note),
        "compression": compression,
    }
