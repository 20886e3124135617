"""Whether the watchdog's passes reach Prefect's API. An outage is said once as it is found and once
as it ends, not on every pass (every 10 s, and again by each minute's pass over flow runs). A stack
starts its API beside its Prefect server, which answers 10-20 s later: Prefect not answering yet
within STARTING_SECONDS of the watchdog's start is said only if it lasts past them."""

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from app.pipeline.orchestrator import PrefectUnavailableError

logger = logging.getLogger("app.pipeline.reconcile.watchdog")

STARTING_SECONDS = 60.0


class PrefectReach:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._started = clock()
        self.down_since: datetime | None = None
        self._said = False

    def failed(self, exc: PrefectUnavailableError) -> None:
        """A pass met `exc`: said if it is the outage's first word and not the stack starting."""
        if self.down_since is None:
            self.down_since = datetime.now(UTC)
        if not self._said and self._clock() - self._started >= STARTING_SECONDS:
            logger.warning("watchdog: %s", exc)
            self._said = True

    def reached(self) -> None:
        """A pass read from Prefect: an outage that was said is said to be over."""
        if self._said and self.down_since is not None:
            logger.warning(
                "watchdog: Prefect's API answers again (unreachable since %s)",
                self.down_since.isoformat(timespec="seconds"),
            )
        self.down_since = None
        self._said = False
