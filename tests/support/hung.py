"""A server that is up and hung (`kill -STOP`): it accepts connections and never answers."""

import socket
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def hung_server() -> Iterator[str]:
    """A listening socket nobody reads from, as long as the block runs; its base URL. The
    kernel completes each connection, so a client connects, sends, and waits for an answer."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        yield f"http://127.0.0.1:{silent.getsockname()[1]}"
