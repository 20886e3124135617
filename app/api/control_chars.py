"""A pipeline's name and description without control characters: they went raw into the
dashboard's <title>, the CLI's tables and the logs (and PostgreSQL cannot store NUL at all)."""

import re

# C0 (U+0000 to U+001F), DEL and C1 (U+007F to U+009F)
_IN_NAME = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# a description may keep its layout: tabs and line breaks (a form's textarea sends CRLF)
_IN_DESCRIPTION = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_NAMES = {
    0x00: "NUL",
    0x09: "tab",
    0x0A: "line feed",
    0x0D: "carriage return",
    0x1B: "escape",
    0x7F: "delete",
}


def _refuse(found: re.Match[str] | None, fix: str) -> None:
    if found is None:
        return
    code = ord(found[0])
    named = f" ({_NAMES[code]})" if code in _NAMES else ""
    raise ValueError(
        f"holds the control character U+{code:04X}{named} at position {found.start() + 1}; "
        f"remove it ({fix})"
    )


def name_text(value: str) -> str:
    """A name: one line of printable text."""
    _refuse(_IN_NAME.search(value), "a name is one line of printable text")
    return value


def description_text(value: str | None) -> str | None:
    """A description: printable text, with tabs and line breaks."""
    if value is not None:
        _refuse(_IN_DESCRIPTION.search(value), "tabs and line breaks are fine")
    return value
