"""The CLI's one way to the API: an httpx client whose failures become messages a person can act
on, each with its own exit code."""

import contextlib
import re
import uuid
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import httpx

DEFAULT_API_URL = "http://127.0.0.1:8000"
TIMEOUT_SECONDS = 30.0  # to connect, to send, and for a read's answer
# A write's answer (and GET /ready's) may wait on Prefect (the API gives each request 20 s of it,
# PIPELINE_PREFECT_REQUEST_SECONDS) and on a failed trigger's clean-up through a database outage
# (30 s): giving up sooner leaves a request that may still complete
ANSWER_SECONDS = 150.0
# where the API's log is: the CLI does not know the stack's state directory
API_LOG = "under `make up`: api.log in <STATE_DIR>/log, var/log by default"
QUICK = httpx.Timeout(TIMEOUT_SECONDS)  # a read of rows the API has
PATIENT = httpx.Timeout(TIMEOUT_SECONDS, read=ANSWER_SECONDS)  # what may wait on Prefect


class ExitCode(IntEnum):
    """What `pipeline` exits with; listed in its --help."""

    OK = 0
    RUN_FAILED = 1  # the run failed or was cancelled; `doctor`: a check failed
    USAGE = 2  # a bad option or argument (typer's own); `download`: an --output unusable as given
    UNREACHABLE = 3  # no answer from the API
    REFUSED = 4  # the API refused the request (404, 409, 413, 422): its message says why
    UNAUTHORIZED = 5  # 401: missing or wrong API key
    SERVER_ERROR = 6  # the API or a service behind it failed (5xx, e.g. Prefect unreachable)
    TIMEOUT = 7  # gave up waiting: --timeout passed, or the API did not answer in time
    STACK_FAILED = 8  # `up`: a part of the stack did not start, or one exited (all stop)
    WRITE_FAILED = 9  # `download`: the file could not be written (no permission, disk full)
    BUG = 70  # an unexpected error in `pipeline` itself
    INTERRUPTED = 130  # Ctrl-C: a run followed goes on; a write may still complete


EXIT_CODES_HELP = """Exit codes:

- 0 done (--wait: the run completed)
- 1 the run failed or was cancelled; doctor: a check failed
- 2 bad usage; download: an --output unusable as given (it exists: --force; no such directory)
- 3 cannot reach the API
- 4 the API refused the request (404, 409, 422, ...): its message says why
- 5 the API key is missing or wrong (set PIPELINE_API_KEY)
- 6 the API or Prefect behind it failed (5xx)
- 7 gave up waiting: --timeout passed before the run ended, or the API did not answer in time
- 8 up: the stack did not start, or one of its processes exited (the whole stack stops)
- 9 download: could not write the file (no permission, disk full)
- 70 a bug in pipeline itself
- 130 interrupted (Ctrl-C): a run being followed goes on, a write may still complete
"""


class CliError(Exception):
    """A failure to report in one line, then exit with `code`."""

    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


ClientFactory = Callable[[str, dict[str, str]], httpx.Client]


def http_client(base_url: str, headers: dict[str, str]) -> httpx.Client:
    """The real client; tests pass another factory (the app in-process) to `pipeline`."""
    return httpx.Client(base_url=base_url, headers=headers, timeout=QUICK)


def idempotency_key() -> dict[str, str]:
    """A new key for a request that creates something: the API answers a repeat of it (a proxy's
    or a client's retry) with what the first one created, never a second pipeline or run."""
    return {"Idempotency-Key": uuid.uuid4().hex}


def _reason(exc: httpx.TransportError) -> str:
    text = re.sub(r"^\[Errno -?\d+\] ", "", str(exc)) or type(exc).__name__
    return text[:1].lower() + text[1:]


# The API's refusals name its own endpoints ("cancel it first (POST …/cancel)"): the command
# that does the same is what a user of the CLI runs.
_CLI_TERMS = (
    (re.compile(r"POST /api/pipelines/(\d+)/cancel"), r"pipeline cancel \1"),
    (re.compile(r"POST /api/pipelines/(\d+)/trigger"), r"pipeline trigger \1"),
    (re.compile(r"PUT /api/pipelines/(\d+)/schedule"), r"pipeline schedule set \1"),
    # an upload's and a download's `format` field, and the upload's file part: options here
    (re.compile(r"send format=csv\|jsonl\|parquet"), "pass --format csv|jsonl|parquet"),
    (re.compile(r"send it as format=(\w+)"), r"pass --format \1"),
    (re.compile(r"download format=(\w+) or format=(\w+)"), r"pass --format \1 or --format \2"),
    (re.compile(r"download format=(\w+)"), r"pass --format \1"),
    (
        re.compile(
            r"send the (?:input )?file as the (?:form )?field 'file'(?: \(curl -F .*?\)(?=;|$))?"
        ),
        "pass the file with --file",
    ),
)


def _in_cli_terms(text: str) -> str:
    for endpoint, command in _CLI_TERMS:
        text = endpoint.sub(command, text)
    return text


def _check_with(path: str) -> str:
    """The command that shows whether a write to `path` took effect."""
    if match := re.match(r"/api/pipelines/(\d+)/schedule", path):
        return f"pipeline schedule show {match[1]}"
    if match := re.match(r"/api/pipelines/(\d+)", path):
        return f"pipeline show {match[1]}"
    return "pipeline list"


@dataclass
class Api:
    """The pipeline service at `url`, with the API key if one is set."""

    url: str
    key: str | None = None
    factory: ClientFactory = http_client
    _client: httpx.Client | None = field(default=None, repr=False)

    def get(
        self, path: str, *, ok: Collection[int] = (), timeout: httpx.Timeout = QUICK, **params: Any
    ) -> Any:
        return self.request("GET", path, ok=ok, timeout=timeout, params=params or None)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def request(
        self,
        method: str,
        path: str,
        *,
        ok: Collection[int] = (),
        timeout: httpx.Timeout = PATIENT,
        **kwargs: Any,
    ) -> Any:
        """The JSON body of a 2xx answer (or of a status in `ok`); anything else is a CliError."""
        with self._failures_said(method, path, timeout):
            response = self.client.request(method, path, timeout=timeout, **kwargs)
        return self._body(response, method, path, ok)

    def download(self, path: str, into: Callable[[httpx.Response], None], **params: Any) -> None:
        """Hand a 2xx answer's streamed body to `into`; anything else is a CliError, as for
        `request` (its 4xx message, its exit code)."""
        with (
            self._failures_said("GET", path, QUICK),
            self.client.stream("GET", path, params=params or None, timeout=QUICK) as response,
        ):
            if response.status_code >= 400:
                response.read()
                self._body(response, "GET", path, ())  # raises: the API's message, its code
            into(response)

    @contextlib.contextmanager
    def _failures_said(self, method: str, path: str, timeout: httpx.Timeout) -> Iterator[None]:
        """httpx's failures while sending `method path` (or reading its answer) as CliErrors."""
        try:
            yield
        except (httpx.ReadTimeout, httpx.WriteTimeout) as exc:
            # connected and (partly) sent: the API may act on it, so this is no "cannot reach"
            seconds = timeout.read if isinstance(exc, httpx.ReadTimeout) else timeout.write
            within = f"did not answer {method} {path}" + (
                f" within {seconds:g} s" if seconds is not None else ""
            )
            if method == "GET":
                doctor = "" if path == "/ready" else " and `pipeline doctor`"
                hint = f"check its log ({API_LOG}){doctor}"
            else:
                hint = f"the request may still complete; check with `{_check_with(path)}`"
            raise CliError(f"the API at {self.url} {within}; {hint}", ExitCode.TIMEOUT) from None
        except KeyboardInterrupt:
            if method == "GET":
                raise  # nothing was changed: the command's own "interrupted"
            # Ctrl-C stops the waiting, not the API: the request may be (partly) sent already
            raise CliError(
                f"interrupted before the API at {self.url} answered {method} {path}; the request "
                f"may still complete; check with `{_check_with(path)}`",
                ExitCode.INTERRUPTED,
            ) from None
        except httpx.TransportError as exc:  # refused, no such host, no connection in time, …
            raise CliError(
                f"cannot reach the API at {self.url}: {_reason(exc)}; start it with `make up` "
                "(or `pipeline up`) or set PIPELINE_API_URL",
                ExitCode.UNREACHABLE,
            ) from None
        except (httpx.InvalidURL, UnicodeError) as exc:  # a host like a..b (idna refuses it)
            raise CliError(
                f"{self.url} is not a usable address ({exc}); pass --api-url like "
                "http://127.0.0.1:8000",
                ExitCode.USAGE,
            ) from None

    def _body(self, response: httpx.Response, method: str, path: str, ok: Collection[int]) -> Any:
        if response.status_code == 204:  # e.g. a DELETE: done, nothing to say
            return None
        try:
            body = response.json()
        except ValueError:
            raise CliError(
                f"the API at {self.url} answered {method} {path} with {response.status_code} "
                f"and no JSON; is PIPELINE_API_URL the pipeline service?",
                ExitCode.SERVER_ERROR,
            ) from None
        status = response.status_code
        if status < 400 or status in ok:
            return body
        detail = body.get("detail") if isinstance(body, dict) else None
        message = body.get("message") if isinstance(body, dict) else None
        text = _in_cli_terms(str(message or detail or body))
        if status == 401:
            raise CliError(
                f"{text}; set PIPELINE_API_KEY (or pass --api-key) to one of the service's API_KEYS",
                ExitCode.UNAUTHORIZED,
            )
        if status == 404 and detail == "Not Found":  # FastAPI's own: no such route
            raise CliError(
                f"the API at {self.url} has no {method} {path}; is PIPELINE_API_URL the pipeline "
                "service?",
                ExitCode.REFUSED,
            )
        code = ExitCode.SERVER_ERROR if status >= 500 else ExitCode.REFUSED
        raise CliError(text, code)

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            headers = {"X-API-Key": self.key} if self.key else {}
            self._client = self.factory(self.url, headers)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
