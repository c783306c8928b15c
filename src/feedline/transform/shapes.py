"""What the text of a strftime format usually looks like: its lengths and the separators at fixed places."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

DIRECTIVE = re.compile(r"%([.:#]?\d?[A-Za-z%])")
MAX_MARKS = 2
# Usual widths of each directive's text (zero-padded fields). A directive missing here (e.g. %B, a month
# name) has no usual width: formats using it skip the fast, shape-guarded attempt.
WIDTHS: dict[str, tuple[int, ...]] = {
    **dict.fromkeys(("Y", "G"), (4,)),
    **dict.fromkeys(
        ("m", "d", "H", "M", "S", "y", "I", "e", "k", "l", "C", "g", "U", "W", "V", "p", "P"), (2,)
    ),
    **dict.fromkeys(("j",), (3,)),
    **dict.fromkeys(("b", "h", "a"), (3,)),
    **{"F": (10,), "T": (8,), "R": (5,), "D": (8,), "%": (1,), "u": (1,), "w": (1,)},
    **{"f": (6, 9, 3), ".f": (0, 4, 7, 10), ".3f": (4,), ".6f": (7,), ".9f": (10,), "3f": (3,), "6f": (6,)},
    **{"9f": (9,), "z": (5,), ":z": (6,), "#z": (1, 6, 5, 3)},
}


@dataclass(frozen=True)
class Shape:
    """The usual lengths of a format's text and a few (position, character) separators it always has."""

    lengths: tuple[int, ...]
    marks: tuple[tuple[int, str], ...]


def _tokens(fmt: str) -> list[tuple[str, str | None]]:
    """(literal text, None) and ("", directive) pieces of a format, in order."""
    tokens: list[tuple[str, str | None]] = []
    position = 0
    for match in DIRECTIVE.finditer(fmt):
        if match.start() > position:
            tokens.append((fmt[position : match.start()], None))
        tokens.append(("", match.group(1)))
        position = match.end()
    if position < len(fmt):
        tokens.append((fmt[position:], None))
    return tokens


def shape_of(fmt: str) -> Shape | None:
    """The usual shape of `fmt`'s text, or None when a directive has no usual width."""
    widths: list[tuple[int, ...]] = []
    marks: dict[str, int] = {}
    fixed: int | None = 0
    for literal, directive in _tokens(fmt):
        if directive is None:
            for char in literal:
                if fixed is not None and not char.isdigit() and char not in marks:
                    marks[char] = fixed
                fixed = None if fixed is None else fixed + 1
            widths.append((len(literal),))
            continue
        options = WIDTHS.get(directive)
        if options is None:
            return None
        widths.append(options)
        fixed = fixed + options[0] if fixed is not None and len(options) == 1 else None
    lengths = tuple(sorted({sum(combo) for combo in itertools.product(*widths)}))
    chosen = sorted(marks.items(), key=lambda item: item[1])[:MAX_MARKS]
    return Shape(lengths, tuple((pos, char) for char, pos in chosen))
