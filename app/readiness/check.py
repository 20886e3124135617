"""One readiness check as GET /ready and `make doctor` show it, and what its messages may quote."""

from dataclasses import asdict, dataclass

from app.config import get_settings
from app.shown import shown_database_url, shown_prefect_url


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str | None = None
    warning: bool = False  # ok for now, soon not: the fix says what to do before it fails

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def hidden(text: str) -> str:
    """A message that may quote either URL (Prefect's errors name its URL), with them shown."""
    settings = get_settings()
    for url, shown in (
        (settings.database_url, shown_database_url(settings.database_url)),
        (settings.prefect_api_url, shown_prefect_url(settings.prefect_api_url)),
    ):
        text = text.replace(url, shown) if url else text
    return text
