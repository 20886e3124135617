"""What was wrong with a request the HTTP parser (httptools, i.e. llhttp) refused, in the API's
error shape: `message` says what to fix, `detail` keeps the parser's own words."""

import re

from httptools import HttpParserError, HttpParserInvalidURLError

MAX_URL_BYTES = 65_535  # httptools.parse_url's limit
_CONTROL = "a control character (a byte below 0x20 other than tab, or 0x7F)"
# a header line whose value holds such a byte
_CONTROL_IN_VALUE = re.compile(
    rb"^([!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}):[^\r\n]*?[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", re.M
)
_FIXES = {
    "Invalid header value char": f"a header's value holds {_CONTROL}, which HTTP does not "
    "allow there; remove it",
    "Invalid header token": "a header's name holds a character HTTP does not allow in names "
    "(a space, a control character, a quote…); names are letters, digits and !#$%&'*+-.^_`|~",
    "Invalid method encountered": "the request does not start with an HTTP method; if it "
    "followed another on the same connection, that one's body was longer than its "
    "Content-Length: send Content-Length equal to the body's length in bytes",
    "Duplicate Content-Length": "Content-Length: sent twice; send it once",
    "Invalid character in Content-Length": "Content-Length: not a whole number; send the "
    "body's length in bytes",
    "Transfer-Encoding can't be present with Content-Length": "Content-Length and "
    "Transfer-Encoding both sent; send one of them",
}


def refusal(error: BaseException | None, data: bytes, said: str) -> tuple[int, dict[str, str]]:
    """The status and body answering a request the parser raised `error` on (None when it is
    not known: then uvicorn's own words, `said`), `data` being the bytes it was parsing."""
    if isinstance(error, HttpParserError) and isinstance(
        error.__context__, HttpParserInvalidURLError
    ):  # uvicorn parses the URL in a parser callback: its error comes as the callback's
        error = error.__context__
    said = str(error) if isinstance(error, HttpParserError) else said
    if said.startswith("url is too long"):
        message = (
            f"the URL is longer than {MAX_URL_BYTES:,} bytes; send a shorter one (fewer or "
            "shorter query parameters)"
        )
        return 414, {"message": message, "detail": said}
    message = _FIXES.get(
        said, f"not a valid HTTP/1.1 request ({said}); send one as an HTTP client makes it"
    )
    if said == "Invalid header value char" and (found := _CONTROL_IN_VALUE.search(data)):
        message = (
            f"{found[1].decode()}: holds {_CONTROL}, which HTTP does not allow in a "
            "header; remove it"
        )
    return 400, {"message": message, "detail": said}
