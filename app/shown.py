"""What messages show of the service's URLs (GET /ready, `pipeline doctor`, Prefect's 503s):
where they point, never a user, password or query string (?password=…, an sslkey path)."""

from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import URL, make_url
from sqlalchemy.exc import ArgumentError


def shown_database_url(url: str) -> str:
    """host:port/database of a server's URL, the whole URL of a file's (SQLite)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "(DATABASE_URL, which is not a database URL)"
    where = URL.create(
        parsed.drivername, host=parsed.host, port=parsed.port, database=parsed.database
    )
    shown = where.render_as_string(hide_password=True)
    return shown.split("://", 1)[1] if parsed.host else shown


def shown_prefect_url(url: str) -> str:
    """A Prefect API URL without its user-info, query and fragment."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc.rpartition("@")[2]
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    except ValueError:
        return "(PREFECT_API_URL, which is not a URL)"
