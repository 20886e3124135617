"""What a multipart/form-data create is refused with while it streams in (app/api/forms/multipart.py
raises these; receive_form answers each as a 422 or a 413): a part under the wrong name, a file
where text goes, a form too large."""

import shlex

from fastapi.exceptions import RequestValidationError

from app.echoed import cut

FILE_FIELD = "file"


class FormError(Exception):
    """A problem of one field (or of the `body`), said as an input file's is."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


class UnknownField(Exception):
    """A part under a name the form does not have."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class MisnamedFile(UnknownField):
    """A file part under another name than `file` (curl -F upload=@f.csv)."""

    def __init__(self, name: str, filename: str) -> None:
        super().__init__(name)
        self.filename = filename


class FileInTextField(MisnamedFile):
    """A file part under a text field's name (curl -F name=@orders.csv): it was taken as the
    field's text."""


class TooLarge(Exception):
    pass


def one_file(part: MisnamedFile) -> str:
    """What a form with a `file` part and a file part under another name is told: which to drop."""
    sent = f" ({cut(part.filename)})" if part.filename else ""
    return f"send one file per pipeline; remove the other file part, '{cut(part.name)}'{sent}"


def as_file(filename: str) -> str:
    """The curl option that sends `filename` as the form's file (an example's without one)."""
    option = f"{FILE_FIELD}=@{cut(filename) or 'data.csv'}"
    return f"curl -F {shlex.quote(option)}"


def in_text_field(name: str, filename: str) -> RequestValidationError:
    """The 422 of a file sent under a text field's name: the field wants text, the file goes in
    `file`."""
    sent = f" ({cut(filename)})" if filename else ""
    message = (
        f"a text field, but a file was sent in it{sent}; send {name} as text, and the file as "
        f"the field '{FILE_FIELD}' ({as_file(filename)})"
    )
    problem = {"loc": ("body", name), "msg": message, "type": "file_in_text_field"}
    return RequestValidationError([problem])


def unknown(name: str) -> RequestValidationError:
    """The 422 of a field PipelineUpload does not have, as its validation would say it (a long
    name cut short)."""
    problem = {
        "loc": ("body", cut(name)),
        "msg": "Extra inputs are not permitted",
        "type": "extra_forbidden",
        "input": "",
    }
    return RequestValidationError([problem])
