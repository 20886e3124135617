"""A multipart/form-data body parsed as it streams in: text fields into memory (bounded), the
file part straight to disk, digested as it is written, never held in memory."""

import asyncio
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from fastapi import HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header
from starlette.requests import ClientDisconnect

from app.api.errors import DISCONNECTED
from app.api.forms import part_file
from app.api.forms.form_framing import check_boundary, malformed
from app.api.forms.form_refusals import (
    FILE_FIELD,
    FileInTextField,
    FormError,
    MisnamedFile,
    TooLarge,
    UnknownField,
    as_file,
    in_text_field,
    one_file,
    unknown,
)
from app.api.upload_schemas import PipelineUpload
from app.echoed import cut
from app.pipeline.input_files import inputs

MAX_FIELD_BYTES = 64 * 1024
# all text fields together, their names and part headers counted in: four fields are known
MAX_TEXT_BYTES = 4 * MAX_FIELD_BYTES
FIELDS = (*PipelineUpload.model_fields, FILE_FIELD)
MAX_PARTS = 16  # five fields; a client repeating one (the last counts) has room, no more


@dataclass
class ReceivedForm:
    """The text fields of a form and where its file part was written."""

    fields: dict[str, str] = field(default_factory=dict)
    file_name: str | None = None
    file_path: Path | None = None
    file_bytes: int = 0
    file_sha256: str | None = None  # of the file as sent: a repeat with its key must send it again
    file_as_text: bool = False  # a `file` part without a file name (curl -F 'file=<f.csv')


class _Receiver:
    """python-multipart callbacks: text fields into memory (bounded), the file part to disk."""

    def __init__(self, dest: Path, max_bytes: int) -> None:
        self.form = ReceivedForm()
        self.dest = dest
        self.max_bytes = max_bytes
        self.pending = bytearray()  # file bytes parsed from the last chunk, written off the loop
        self._header_field = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._name = ""
        self._text = bytearray()
        self._text_bytes = 0
        self._parts = 0
        self._is_file = False
        self._skipped = 0  # bytes of a file part under another name, read and dropped
        # a file part under another name, told where to go once the form is read: unless a `file`
        # part comes after it, when it is the one to remove
        self.misnamed: MisnamedFile | None = None
        self.repeated: dict[str, int] = {}  # text fields sent more than once: how many times
        self.handle: IO[bytes] | None = None
        self._digest = hashlib.sha256()

    async def flush(self) -> None:
        """Write (and digest) the file bytes parsed so far, off the event loop."""
        if self.pending and self.handle is not None:
            await asyncio.to_thread(self._write, bytes(self.pending))
            self.pending.clear()
            self.form.file_sha256 = self._digest.hexdigest()

    def _write(self, data: bytes) -> None:
        assert self.handle is not None
        try:
            self.handle.write(data)
            self.handle.flush()  # a full disk says so here, naming the file, not at close
        except OSError as exc:
            exc.filename = exc.filename or str(self.form.file_path)
            raise
        self._digest.update(data)

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field_data,
            "on_header_value": self._header_value_data,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _part_begin(self) -> None:
        self._parts += 1
        if self._parts > MAX_PARTS:  # thousands of parts, each small: one of them names none
            raise FormError(
                "body",
                f"more than {MAX_PARTS} parts; the form's fields are {', '.join(FIELDS)}, "
                "each sent once",
            )
        self._headers, self._text, self._is_file, self._skipping = {}, bytearray(), False, False

    def _count_text(self, size: int) -> None:
        """Everything of the form but its file is held in memory: its text and its part headers
        (names included) have one budget."""
        self._text_bytes += size
        if self._text_bytes > MAX_TEXT_BYTES:
            raise FormError(
                "body",
                f"text fields longer than {MAX_TEXT_BYTES:,} bytes in all "
                "(their names and part headers included)",
            )

    def _header_field_data(self, data: bytes, start: int, end: int) -> None:
        self._count_text(end - start)
        self._header_field += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._count_text(end - start)
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field = self._header_value = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._name = options.get(b"name", b"").decode("utf-8", "replace")
        if not self._name:
            raise FormError("body", f"a part without a field name; name each ({', '.join(FIELDS)})")
        disposition = self._headers.get(b"content-disposition", b"")
        filename = part_file.file_name(disposition, options)
        sent_file = part_file.is_file(disposition, options)
        if self._name not in FIELDS:  # refused before its value is kept
            if sent_file:
                self._misnamed_file(MisnamedFile(self._name, filename))
                return
            raise UnknownField(self._name)
        self._is_file = self._name == FILE_FIELD
        if sent_file and not self._is_file:  # curl -F name=@orders.csv: not the name's text
            raise FileInTextField(self._name, filename)
        if self._is_file:
            if self.form.file_path is not None:
                raise FormError(FILE_FIELD, "send one file per pipeline")
            if self.misnamed is not None:
                raise FormError(FILE_FIELD, one_file(self.misnamed))
            self.form.file_name = filename  # "" when sent without one: `filename=`
            self.form.file_as_text = not sent_file
            self.form.file_path = self.dest / "upload"
            self.handle = self.form.file_path.open("wb")

    def _misnamed_file(self, part: MisnamedFile) -> None:
        """A file part under another name: after the `file` part, the one to remove; before it,
        read and dropped, since a `file` part may follow (a second such is told where the first
        goes)."""
        if self.form.file_path is not None:
            raise FormError(FILE_FIELD, one_file(part))
        if self.misnamed is not None:
            raise self.misnamed
        self.misnamed, self._skipping = part, True

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._skipping:
            self._skipped += end - start
            if self._skipped > self.max_bytes and self.misnamed is not None:
                raise self.misnamed
            return
        if self._is_file:
            self.form.file_bytes += end - start
            if self.form.file_bytes > self.max_bytes:
                raise TooLarge
            self.pending += data[start:end]
            return
        self._text += data[start:end]
        if len(self._text) > MAX_FIELD_BYTES:
            raise FormError(self._name, f"longer than {MAX_FIELD_BYTES:,} bytes")
        self._count_text(end - start)

    def _part_end(self) -> None:
        if not self._is_file and not self._skipping:
            if self._name in self.form.fields:  # the last one was taken: name=a&name=b made "b"
                self.repeated.setdefault(self._name, 1)
                self.repeated[self._name] += 1  # refused once the form is read: the bounds first
            try:
                self.form.fields[self._name] = self._text.decode("utf-8")
            except UnicodeDecodeError:  # was stored with U+FFFD in place of what was sent
                raise FormError(self._name, "not UTF-8 text; send the form as UTF-8") from None


def _misnamed(name: str, filename: str) -> RequestValidationError:
    """The 422 of a file sent under another field name than `file`: the one the file goes in,
    as a curl command names it."""
    message = (
        f"a file part under another name; send the file as the field '{FILE_FIELD}' "
        f"({as_file(filename)})"
    )
    problem = {"loc": ("body", cut(name)), "msg": message, "type": "misnamed_file"}
    return RequestValidationError([problem])


async def receive_form(request: Request, dest: Path, *, max_bytes: int) -> ReceivedForm:
    """Parse a multipart/form-data body as it streams in, writing its file part into `dest`."""
    _, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if not boundary:
        raise inputs.InputError("body", "multipart/form-data without a boundary")
    check_boundary(boundary)
    receiver = _Receiver(dest, max_bytes)
    try:
        parser = MultipartParser(boundary, receiver.callbacks())  # type: ignore[arg-type]
        async for chunk in request.stream():
            parser.write(chunk)
            await receiver.flush()
        parser.finalize()
        await receiver.flush()
        if parser.state != MultipartState.END:  # a cut body would make a pipeline of part a file
            raise FormError(
                "body", "ended before the form's closing boundary; send the whole form again"
            )
        if receiver.misnamed is not None:  # and no `file` part: the file is this one
            raise receiver.misnamed
        for name, times in receiver.repeated.items():  # as a query parameter given twice is
            raise FormError(name, f"given {times:,} times; give it once")
    except TooLarge:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"file: larger than {max_bytes:,} bytes (PIPELINE_MAX_UPLOAD_BYTES); "
            "send a smaller file or name a file under PIPELINE_INPUT_DIR",
        ) from None
    except FormError as exc:
        raise inputs.InputError(exc.field, exc.message) from None
    except FileInTextField as exc:
        raise in_text_field(exc.name, exc.filename) from None
    except MisnamedFile as exc:
        raise _misnamed(exc.name, exc.filename) from None
    except UnknownField as exc:
        raise unknown(exc.name) from None
    except FormParserError as exc:
        raise inputs.InputError("body", malformed(exc, boundary)) from None
    except ClientDisconnect:  # nobody reads the answer; the caller removes what was written
        raise HTTPException(status.HTTP_400_BAD_REQUEST, DISCONNECTED) from None
    finally:
        if receiver.handle is not None:
            receiver.handle.close()
    return receiver.form
