"""A request the HTTP parser refused, said in the API's error shape (app/bad_requests.py); the
server's answers themselves are in tests/api/test_http_server.py."""

from httptools import HttpParserError

from app.bad_requests import refusal

CONTROL = "a control character (a byte below 0x20 other than tab, or 0x7F)"


def test_a_control_character_names_its_header_when_the_bytes_show_it() -> None:
    error = HttpParserError("Invalid header value char")
    named = refusal(error, b"GET / HTTP/1.1\r\nHost: x\r\nX-Trace: a\x7fb\r\n\r\n", "")
    split = refusal(error, b"b\x01c\r\n\r\n", "")  # the header's name came in an earlier read
    assert (named, split) == (
        (
            400,
            {
                "message": f"X-Trace: holds {CONTROL}, which HTTP does not allow in a header; "
                "remove it",
                "detail": "Invalid header value char",
            },
        ),
        (
            400,
            {
                "message": f"a header's value holds {CONTROL}, which HTTP does not allow there; "
                "remove it",
                "detail": "Invalid header value char",
            },
        ),
    )


def test_an_unknown_error_is_still_a_json_400() -> None:
    """uvicorn answers outside its parser's error (none known): its own words are kept."""
    assert refusal(None, b"", "Invalid HTTP request received.") == (
        400,
        {
            "message": "not a valid HTTP/1.1 request (Invalid HTTP request received.); send one "
            "as an HTTP client makes it",
            "detail": "Invalid HTTP request received.",
        },
    )
