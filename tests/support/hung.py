"""A server that is up and hung (`kill -STOP`): it accepts connections and never answers."""

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def hung_server(accepted: list[socket.socket] | None = None) -> Iterator[str]:
    """A listening socket nobody reads from, as long as the block runs; its base URL. The
    kernel completes each connection, so a client connects, sends, and waits for an answer.
    With `accepted`, each connection is taken (and held, unanswered) into it: how many calls
    reached the server."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        if accepted is not None:
            threading.Thread(target=_take, args=(silent, accepted), daemon=True).start()
        try:
            yield f"http://127.0.0.1:{silent.getsockname()[1]}"
        finally:
            if accepted is not None:  # its thread's accept() ends
                silent.shutdown(socket.SHUT_RDWR)
                for connection in accepted:
                    connection.close()


@contextmanager
def hanging_prefect(setting: Callable[[str, str], None]) -> Iterator[str]:
    """The app's Prefect API hung, through `setting` (tests/conftest.py): a request's budget 1 s,
    each call's timeout 0.4 s. Its API URL."""
    with hung_server() as url:
        setting("PREFECT_API_URL", f"{url}/api")
        setting("PIPELINE_PREFECT_REQUEST_SECONDS", "1")
        setting("PIPELINE_PREFECT_TIMEOUT_SECONDS", "0.4")
        yield f"{url}/api"


def _take(listening: socket.socket, accepted: list[socket.socket]) -> None:
    while True:
        try:
            connection, _ = listening.accept()
        except OSError:  # shut down: the block ended
            return
        accepted.append(connection)
