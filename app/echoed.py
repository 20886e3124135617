"""What a refusal echoes of a client's text (a field's name, a file's name): cut short, as every
refusal cuts it; all of it is theirs to send again, not ours to echo."""

LONGEST = 64  # characters of a client's text a message shows


def cut(text: str) -> str:
    """`text`, or its first 63 characters and an ellipsis."""
    return text if len(text) <= LONGEST else f"{text[: LONGEST - 1]}…"


MOST_DIGITS = 18  # past these no count or interval is within bounds: a number is said by its length


def said_number(value: int) -> str:
    """A whole number as a refusal shows it: 31,622,401, or past 18 digits how many it has (a
    JSON number may have 4,300, every one of them the client's already)."""
    digits = len(str(abs(value)))
    if digits <= MOST_DIGITS:
        return f"{value:,}"
    return f"a {'negative ' if value < 0 else ''}number of {digits:,} digits"


def first_names(names: list[str]) -> str:
    """The first three of many field names a refusal lists, each cut to 40 characters:
    `'a', 'b', 'c'`."""
    return ", ".join(repr(name[:40]) for name in names[:3])
