"""A multipart/form-data body's framing, as a client can get it wrong: a boundary longer than
RFC 2046 allows, a body its boundary does not delimit. Said in a client's words (python-multipart
says "Expected boundary character 45, got 97 at index 2"), with the parser's after them."""

import re

from python_multipart.exceptions import FormParserError

from app.pipeline.input_files.inputs import InputError

MAX_BOUNDARY = 70  # RFC 2046, 5.1.1 (python-multipart raises past 256, before a byte is read)
_UNEXPECTED = re.compile(r"Expected boundary character (\d+), got (\d+) at index (\d+)")
_INVALID = re.compile(r"Found invalid character (\d+) in header at \d+")
# python-multipart's other errors, by where in the body they arise
_AT_START = ("Did not find CR at end of boundary", "Did not find LF at end of boundary")
_IN_HEADERS = ("Found 0-length header", "Did not find LF", "Maximum")
_AFTER_BOUNDARY = ("Did not find CRLF after boundary padding", "Did not find - at end of boundary")


def check_boundary(boundary: bytes) -> None:
    """InputError on `body` for a boundary longer than RFC 2046's 70 characters."""
    if len(boundary) > MAX_BOUNDARY:
        raise InputError(
            "body",
            f"the boundary in its Content-Type is {len(boundary):,} characters long; RFC 2046 "
            f"allows 1 to {MAX_BOUNDARY}: send a shorter one (HTTP clients choose one that fits)",
        )


def malformed(exc: FormParserError, boundary: bytes) -> str:
    """What is wrong with a body python-multipart could not parse, then the parser's words."""
    said = str(exc)
    if found := _UNEXPECTED.fullmatch(said):  # its index counts a CRLF before the first "--"
        expected, got, index = (int(number) for number in found.groups())
        said = f"character {index - 1} is {chr(got)!r}, not {chr(expected)!r}"
    elif invalid := _INVALID.fullmatch(said):
        said = f"{chr(int(invalid[1]))!r} in a header's name"
    if found or said.startswith(_AT_START):
        what = (
            "does not start with the boundary its Content-Type gives "
            f"(--{boundary.decode('latin-1')} and a line break); send the body together with "
            "the Content-Type made for it"
        )
    elif invalid or said.startswith(_IN_HEADERS):
        what = (
            "a part's headers are malformed; each is a `Name: value` line ending in CRLF, "
            "and an empty line ends them"
        )
    elif said.startswith(_AFTER_BOUNDARY):
        what = "a boundary in it is followed by neither a line break nor -- (the form's end)"
    else:
        what = "not valid multipart/form-data"
    return f"{what} (parser: {said})"
