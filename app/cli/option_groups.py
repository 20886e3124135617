"""Options that several commands take, defined once: the fields of a dataclass (each annotated
with its `typer.Option`), which typer lists as each command's own and the command receives as
one value. Typer has no such groups itself (fastapi/typer#153): it reads a command's parameters
from its signature, so the group's fields are put into that signature."""

import dataclasses
import functools
import inspect
from collections.abc import Callable
from typing import Any

Command = Callable[..., None]


def options_of(group: type[Any], *, into: str) -> Callable[[Command], Command]:
    """A decorator (under `@command()`): the command's parameter named `into`, a `group`, is
    given on the command line as `group`'s fields, in its place and in their order."""
    fields = dataclasses.fields(group)
    names = [field.name for field in fields]

    def decorate(func: Command) -> Command:
        own = inspect.signature(func)
        if into not in own.parameters:
            raise TypeError(f"{func.__name__} takes no parameter {into!r} to put {names} into")
        parameters: list[inspect.Parameter] = []
        for parameter in own.parameters.values():
            if parameter.name == into:
                parameters.extend(
                    inspect.Parameter(
                        field.name,
                        inspect.Parameter.KEYWORD_ONLY,
                        default=field.default,
                        annotation=field.type,
                    )
                    for field in fields
                )
            else:  # typer passes every parameter by name
                parameters.append(parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY))

        @functools.wraps(func)
        def grouped(**kwargs: Any) -> None:
            func(**{into: group(**{name: kwargs.pop(name) for name in names})}, **kwargs)

        grouped.__signature__ = own.replace(parameters=parameters)  # type: ignore[attr-defined]
        grouped.__annotations__ = {
            **{p.name: p.annotation for p in parameters},
            "return": own.return_annotation,
        }
        return grouped

    return decorate
