"""Who may call the API: API keys, the origins whose pages may write, the host names a request
without a key may be sent to. A part of Settings (app/config.py), read with it."""

from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings

DEFAULT_PORTS = {"http": 80, "https": 443}
# an origin as a browser's Origin header sends it: scheme, host (lowercase), port (None: default)
Origin = tuple[str, str, int | None]


def origin_of(text: str) -> Origin | None:
    """`scheme://host[:port]` as a comparable origin, or None when it is none (no scheme, a
    path, a user): `HTTPS://Pipelines.Example.com:443/` is `https://pipelines.example.com`."""
    try:
        parts = urlsplit(text.strip())
        host, port = parts.hostname, parts.port
    except ValueError:  # a port that is no number, an unclosed [IPv6
        return None
    if (
        parts.scheme not in DEFAULT_PORTS
        or not host
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or "@" in parts.netloc
    ):
        return None
    return parts.scheme, host, None if port == DEFAULT_PORTS[parts.scheme] else port


class AccessSettings(BaseSettings):
    """The access settings of Settings; read only as a part of it (its .env file, its rules)."""

    api_keys_csv: str = Field(
        default="",
        validation_alias=AliasChoices("API_KEYS"),
        description="Comma-separated API keys; when set, mutating endpoints need one.",
    )
    trusted_origins_csv: str = Field(
        default="",
        validation_alias=AliasChoices("PIPELINE_TRUSTED_ORIGINS"),
        description="Comma-separated origins whose pages may write too (a proxy rewrites Host).",
    )
    api_keys_for_reads: bool = Field(
        default=False,
        validation_alias=AliasChoices("API_KEYS_FOR_READS"),
        description="Also require a key on read endpoints.",
    )
    allowed_hosts_csv: str = Field(
        default="",
        validation_alias=AliasChoices("PIPELINE_ALLOWED_HOSTS"),
        description="Comma-separated host names a request needing no key may be sent to, besides "
        "IP addresses and localhost: pipelines.example.com, .example.com (it and its "
        "subdomains), * (any).",
    )

    @field_validator("allowed_hosts_csv")
    @classmethod
    def _names_only(cls, value: str) -> str:
        """Names as a Host header carries them, without its port: a URL or a port never
        matched, and every request was refused."""
        for entry in (entry.strip() for entry in value.split(",")):
            wildcard = "*" in entry and entry != "*" and not entry.startswith("*.")
            if "/" in entry or ":" in entry or wildcard or "*" in entry[1:]:
                raise ValueError(
                    f"{entry!r} is not a host name: list names without scheme or port "
                    "(pipelines.example.com; .example.com for it and its subdomains, *.example.com "
                    "for its subdomains; * for any); "
                    "IP addresses need no entry"
                )
        return value

    @field_validator("trusted_origins_csv")
    @classmethod
    def _origins_only(cls, value: str) -> str:
        """Origins as a browser sends them: a name without its scheme never matched a page's
        Origin, and the writes of the pages it meant were refused."""
        for entry in (entry.strip() for entry in value.split(",")):
            if entry and origin_of(entry) is None:
                raise ValueError(
                    f"{entry!r} is not an origin: list each as a browser sends it, "
                    "scheme://host[:port] without a path (https://pipelines.example.com, "
                    "http://10.0.0.5:8080)"
                )
        return value

    @property
    def trusted_origins(self) -> frozenset[Origin]:
        """PIPELINE_TRUSTED_ORIGINS, each as `origin_of` makes it comparable."""
        origins = (origin_of(entry) for entry in self.trusted_origins_csv.split(",") if entry)
        return frozenset(origin for origin in origins if origin is not None)

    @property
    def api_keys(self) -> tuple[str, ...]:
        return tuple(key.strip() for key in self.api_keys_csv.split(",") if key.strip())

    @property
    def allowed_hosts(self) -> frozenset[str]:
        """PIPELINE_ALLOWED_HOSTS, lowercase, without a trailing dot (`example.com.` is
        `example.com`)."""
        names = (
            entry.strip().lower().removesuffix(".") for entry in self.allowed_hosts_csv.split(",")
        )
        return frozenset(name for name in names if name)
