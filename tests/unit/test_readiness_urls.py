"""What GET /ready and `pipeline doctor` show of DATABASE_URL and PREFECT_API_URL: where they
point, never a user, a password or a query string."""

from app.shown import shown_database_url, shown_prefect_url


def test_the_urls_as_shown() -> None:
    assert shown_database_url("postgresql+psycopg://u:p@db.internal:5432/pipes?sslkey=/k") == (
        "db.internal:5432/pipes"
    )
    assert shown_database_url("postgresql+asyncpg://u@[::1]/pipes") == "[::1]/pipes"
    assert shown_database_url("sqlite+aiosqlite:////var/lib/pipes.db?mode=ro") == (
        "sqlite+aiosqlite:////var/lib/pipes.db"
    )
    assert shown_database_url("no url") == "(DATABASE_URL, which is not a database URL)"
    assert shown_prefect_url("https://u:p@ss@prefect.example:4200/api?key=k#top") == (
        "https://prefect.example:4200/api"
    )
    assert shown_prefect_url("http://127.0.0.1:4200/api") == "http://127.0.0.1:4200/api"
