"""The settings a stack's processes would read, checked before `make up` starts any of them or
`make doctor` checks the stack: a value Settings refuses (`PIPELINE_MAX_UPLOAD_BYTES=abc`) failed
the first process with pydantic's traceback (`migrate failed (1): Traceback …`), and a
`DATABASE_URL` that is not one failed the stack's lock with SQLAlchemy's. Prefect's own settings
too: `PREFECT_WORKER_QUERY_SECONDS=1s` failed the Prefect server with a traceback that named
`WorkerSettings`'s field, not the variable."""

import io
import os
import tomllib
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, redirect_stderr
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import AliasChoices, ValidationError
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource
from pydantic_settings.sources.utils import parse_env_vars

from app.config import ENV_FILE, Settings

if TYPE_CHECKING:
    from prefect.settings.base import PrefectBaseSettings

# a value under such a name may hold a password: its name and the problem are said, not it
_UNSAID = ("URL", "KEY", "PASSWORD", "SECRET", "TOKEN", "AUTH")
PREFECT_SETTINGS_REF = "https://docs.prefect.io/v3/api-ref/settings-ref"
_PROFILES_UNREAD = "Failed to load profiles from "  # Prefect's warning, before the file's path


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
        ours = [_said(".".join(map(str, error["loc"])).upper(), error) for error in exc.errors()]
    else:
        ours = []
    return list(dict.fromkeys(ours + prefect_problems(env)))


def prefect_problems(env: Mapping[str, str]) -> list[str]:
    """Each of Prefect's settings its processes would refuse with `env` as their environment.

    Prefect's settings are a tree of models, each reading `os.environ` as it is built, and one
    refused value stops the whole tree: so the environment is swapped for `env` (this runs before
    the stack's threads and processes start) and each variable found refused is taken out of it
    before the next try, until the tree builds or a refused value is not in `env` (a profile's)."""
    with _quiet_import():
        from prefect.settings.models.root import Settings as PrefectSettings
    models = {model.__name__: model for model in _models(PrefectSettings)}
    left, found, saved = dict(env), [], dict(os.environ)
    try:
        for _ in models:
            os.environ.clear()
            os.environ.update(left)
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    PrefectSettings()
                found += _unreadable_profiles(caught)
            except ValidationError as exc:
                refused = [
                    (_variable(models.get(exc.title), error, left), error)
                    for error in exc.errors()
                    if error["type"] != "default_factory_not_called"
                ]
                found += [_said(name, error, left.get(name)) for name, error in refused]
                if not [left.pop(name) for name, _ in refused if name in left]:
                    break
            else:
                break
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return found


def _unreadable_profiles(caught: list[warnings.WarningMessage]) -> list[str]:
    """Prefect's profiles file, when it is not TOML: its settings models warn and go on without
    it, but every Prefect process stops on it (`tomllib.TOMLDecodeError` as it starts)."""
    for warning in caught:
        said = str(warning.message)
        if said.startswith(_PROFILES_UNREAD):
            path = Path(said.removeprefix(_PROFILES_UNREAD).split(". Please ensure")[0])
            try:
                tomllib.loads(path.read_text())
            except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError) as exc:
                return [
                    f"Prefect's profiles file {path} is not valid TOML ({exc}): fix it or remove "
                    "it; every Prefect process stops on it"
                ]
    return []


@contextmanager
def _quiet_import() -> Iterator[None]:
    """Prefect as it loads in this process (`make up`'s, in a terminal): with a refused value in
    this process's own environment it prints "Failed to initialize plugins: 1 validation error for
    WorkerSettings…" (said by name here), and in a terminal its telemetry notice, then sends an
    "SDK imported" event; DO_NOT_TRACK for the import, as the stack turns analytics off."""
    before = os.environ.get("DO_NOT_TRACK")
    os.environ["DO_NOT_TRACK"] = "1"
    try:
        with redirect_stderr(io.StringIO()):
            yield
    finally:
        if before is None:
            del os.environ["DO_NOT_TRACK"]
        else:
            os.environ["DO_NOT_TRACK"] = before


def _models(model: type["PrefectBaseSettings"]) -> Iterator[type["PrefectBaseSettings"]]:
    from prefect.settings.base import PrefectBaseSettings

    yield model
    for field in model.model_fields.values():
        if isinstance(field.annotation, type) and issubclass(field.annotation, PrefectBaseSettings):
            yield from _models(field.annotation)


def _variable(
    model: type["PrefectBaseSettings"] | None, error: ErrorDetails, env: Mapping[str, str]
) -> str:
    """The environment variable that gave the refused value: of the field's names (its model's
    prefix and its older aliases, as PREFECT_API_DATABASE_TIMEOUT), the one set to it."""
    if model is None or not error["loc"] or error["loc"][0] not in model.model_fields:
        return ""
    field = str(error["loc"][0])
    names = [f"{model.model_config.get('env_prefix', '')}{field}".upper()]
    alias = model.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        names += [choice.upper() for choice in alias.choices if isinstance(choice, str)]
    given = [name for name in dict.fromkeys(names) if name in env]
    value = str(error["input"]).casefold()
    return next((name for name in given if env[name].casefold() == value), (given or names)[0])


def _said(name: str, error: ErrorDetails, given: str | None = "") -> str:
    """`NAME='value': what is wrong`, the value as `given` in the environment (Prefect changes
    some: `verbose` became `VERBOSE`), or None: not there, but in Prefect's profile or
    prefect.toml. A check of several settings at once (no one name: its input is every setting
    given, API keys and passwords too) by its message alone, which names them."""
    what = str(error["msg"]).removeprefix("Value error, ")
    if not name:
        return what
    if what[:2].istitle():  # pydantic's "Input should …", not a setting's name that opens it
        what = what[:1].lower() + what[1:]
    if given is None:
        name += " (in Prefect's profile or prefect.toml, not the environment)"
    if any(word in name for word in _UNSAID):
        return f"{name}: {what}"
    return f"{name}={given or error['input']!r}: {what}"


def refusal(env: Mapping[str, str]) -> str | None:
    """What to print when a setting in `env` is refused, or None when every one is usable."""
    if not (found := problems(env)):
        return None
    listed = "\n".join(f"  {problem}" for problem in found)
    return (
        f"{'a setting' if len(found) == 1 else 'settings'} the stack's processes read cannot "
        f"be used:\n{listed}\nset {'it' if len(found) == 1 else 'them'} right in the "
        f"environment or in {ENV_FILE} (the README's Configuration lists each setting"
        + (
            f"; Prefect's: {PREFECT_SETTINGS_REF})"
            if any(p.startswith("PREFECT_") for p in found)
            else ")"
        )
    )
