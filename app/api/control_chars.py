"""A pipeline's name and description without control characters: they went raw into the
dashboard's <title>, the CLI's tables and the logs (and PostgreSQL cannot store NUL at all); a
bidi control reordered the CLI's table columns, and could make one name read as another."""

import re
import unicodedata

_C0_C1 = r"\x00-\x1f\x7f-\x9f"  # C0 (U+0000 to U+001F), DEL and C1 (U+007F to U+009F)
# the bidi controls (Unicode's UAX #9): the marks (ALM, LRM, RLM), which people writing Arabic or
# Hebrew type, and the embeddings, overrides and isolates, which reorder the text after them
_BIDI_MARKS = "\u061c\u200e\u200f"
_BIDI_REORDERING = "\u202a-\u202e\u2066-\u2069"
_BIDI = _BIDI_MARKS + _BIDI_REORDERING
# a name only: what shows as nothing, so that two names that differ look the same (zero-width
# space, soft hyphen, word joiner, BOM), and the line and paragraph separators: a name is one line.
# The zero-width joiner and non-joiner stay: emoji sequences and Persian or Indic words need them.
# Besides: the combining grapheme joiner, Hangul's fillers (a name of U+3164 alone looked blank),
# Khmer's inherent vowels, Mongolian's vowel separator, the invisible math operators, the braille
# blank, the interlinear annotation marks, and the noncharacters U+FFFE and U+FFFF.
_INVISIBLE = (
    "\u00ad\u200b\u2060\ufeff\u034f\u115f\u1160\u17b4\u17b5\u180e\u2061-\u2064\u2800\u3164"
    "\uffa0\ufff9-\ufffb\ufffe\uffff"
)
_LINE_BREAKS = "\u2028\u2029"
REFUSED_IN_NAME = re.compile(f"[{_C0_C1}{_BIDI}{_INVISIBLE}{_LINE_BREAKS}]")
# a description may keep its layout: tabs and line breaks (a form's textarea sends CRLF), and
# the bidi marks of right-to-left writing; a name refuses them too (it is shown in tables)
_IN_DESCRIPTION = re.compile(f"[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f{_BIDI_REORDERING}]")
_NAMES = {
    0x00: "NUL",
    0x09: "tab",
    0x0A: "line feed",
    0x0D: "carriage return",
    0x1B: "escape",
    0x7F: "delete",
}


def _kind(character: str) -> str:
    if re.fullmatch(f"[{_INVISIBLE}]", character):
        return "invisible character"
    if character in _LINE_BREAKS:
        return "line break"
    return "control character"


def _refuse(found: re.Match[str] | None, fix: str) -> None:
    if found is None:
        return
    code = ord(found[0])
    name = _NAMES.get(code) or unicodedata.name(found[0], "").lower()
    named = f" ({name})" if name else ""
    raise ValueError(
        f"holds the {_kind(found[0])} U+{code:04X}{named} at position {found.start() + 1}; "
        f"remove it ({fix})"
    )


def name_text(value: str) -> str:
    """A name: one line of printable text."""
    _refuse(REFUSED_IN_NAME.search(value), "a name is one line of printable text")
    return value


def description_text(value: str | None) -> str | None:
    """A description: printable text, with tabs and line breaks."""
    if value is not None:
        _refuse(_IN_DESCRIPTION.search(value), "tabs and line breaks are fine")
    return value


def _escape(found: re.Match[str]) -> str:
    code = ord(found[0])
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escaped(text: str) -> str:
    """Text a page echoes back (a query's value): every character a name refuses written as its
    escape (\\x00, \\u202e), so that none reaches the HTML raw or reorders the text around it."""
    return REFUSED_IN_NAME.sub(_escape, text)
