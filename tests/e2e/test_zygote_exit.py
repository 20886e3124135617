"""A stopped zygote exits without its preloaded libraries' exit hooks: it runs nothing itself that
they would finish, and ddtrace's reached out to the Datadog agent. Against an agent that had hung
since the zygote started, its exit took ~6 s and two connections to that agent, and the worker's
stop (`make down`) waited for them."""

import signal
import socket
import threading
from pathlib import Path

from tests.e2e.test_warm_start import started_zygote

INFO = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class HangingAgent:
    """Answers its first GET /info (the zygote's check before it preloads ddtrace), then takes
    every connection and never answers: an agent that hung. Counts the connections."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            if self.connections == 1:
                conn.recv(65536)
                conn.sendall(INFO)
                conn.close()
            else:
                self.held.append(conn)

    def close(self) -> None:
        self.listener.close()
        for conn in self.held:
            conn.close()


def test_a_stopped_zygote_does_not_wait_for_a_hung_datadog_agent(tmp_path: Path) -> None:
    agent = HangingAgent()
    directory = tmp_path / "zygote"
    directory.mkdir(mode=0o700)
    path = str(directory / "zygote.sock")
    try:
        with started_zygote(
            path, DD_AGENT_HOST="127.0.0.1", DD_TRACE_AGENT_PORT=str(agent.port)
        ) as zygote:
            before = agent.connections
            zygote.send_signal(signal.SIGTERM)
            rest, errors = zygote.communicate(timeout=60)
    finally:
        agent.close()
    assert (zygote.returncode, rest, errors, agent.connections - before) == (0, "", None, 0)
    assert not directory.exists()  # its socket and directory removed, as before
