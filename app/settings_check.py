"""The settings a stack's processes would read, checked before `make up` starts any of them or
`make doctor` checks the stack: a value Settings refuses (`PIPELINE_MAX_UPLOAD_BYTES=abc`) failed
the first process with pydantic's traceback (`migrate failed (1): Traceback …`), and a
`DATABASE_URL` that is not one failed the stack's lock with SQLAlchemy's."""

from collections.abc import Mapping

from pydantic import ValidationError
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource
from pydantic_settings.sources.utils import parse_env_vars

from app.config import ENV_FILE, Settings

# a value under such a name may hold a password: its name and the problem are said, not it
_UNSAID = ("URL", "KEY", "PASSWORD", "SECRET", "TOKEN")


def problems(env: Mapping[str, str]) -> list[str]:
    """Each setting Settings refuses when read from `env` (and the project's .env, as every
    process reads it), as `NAME='value': what is wrong`."""

    class _Given(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            given = EnvSettingsSource(settings_cls)
            given.env_vars = parse_env_vars(
                env, given.case_sensitive, given.env_ignore_empty, given.env_parse_none_str
            )
            return init_settings, given, dotenv_settings, file_secret_settings

    try:
        _Given()
    except ValidationError as exc:
        return [_said(error) for error in exc.errors()]
    return []


def _said(error: ErrorDetails) -> str:
    """`NAME='value': what is wrong`; a check of several settings at once (no one name: its input
    is every setting given, API keys and passwords too) by its message alone, which names them."""
    name = ".".join(str(part) for part in error["loc"]).upper()
    what = str(error["msg"]).removeprefix("Value error, ")
    if not name:
        return what
    if what[:2].istitle():  # pydantic's "Input should …", not a setting's name that opens it
        what = what[:1].lower() + what[1:]
    if any(word in name for word in _UNSAID):
        return f"{name}: {what}"
    return f"{name}={error['input']!r}: {what}"


def refusal(env: Mapping[str, str]) -> str | None:
    """What to print when a setting in `env` is refused, or None when every one is usable."""
    if not (found := problems(env)):
        return None
    listed = "\n".join(f"  {problem}" for problem in found)
    return (
        f"{'a setting' if len(found) == 1 else 'settings'} the stack's processes read cannot "
        f"be used:\n{listed}\nset {'it' if len(found) == 1 else 'them'} right in the "
        f"environment or in {ENV_FILE} (the README's Configuration lists each setting)"
    )
