"""A pass over many runs in which one run's failure stays that run's: the pass goes on with the
others, and the failure is logged once, not at every pass for as long as it lasts."""

import logging
from collections.abc import Hashable, Iterable, Iterator
from contextlib import contextmanager

from app.pipeline.orchestrator import PrefectAnsweredError, PrefectUnavailableError


class Isolated:
    """One kind of per-run work of a repeated pass (`what`, as the log names it). A run's error
    is logged once, with its traceback, while the run keeps failing the same way; again if it
    fails otherwise, and one line when it works again. Prefect unreachable is no run's failure:
    it ends the pass (an error status is an answer about that run's request, and stays its)."""

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self._logger = logger
        self._what = what
        self._failing: dict[Hashable, str] = {}  # run → the error it last failed with

    def keep_only(self, keys: Iterable[Hashable]) -> None:
        """Forget the runs that left the pass (ended, deleted): they fail no more."""
        keep = set(keys)
        self._failing = {key: how for key, how in self._failing.items() if key in keep}

    @contextmanager
    def each(self, key: Hashable) -> Iterator[None]:
        """The work on one run: its error is logged (once) and kept from the runs after it."""
        try:
            yield
        except PrefectAnsweredError as exc:
            self._failed(key, exc)
        except PrefectUnavailableError:
            raise
        except Exception as exc:
            self._failed(key, exc)
        else:
            if self._failing.pop(key, None) is not None:
                self._logger.info("watchdog: %s %s works again", self._what, key)

    def _failed(self, key: Hashable, exc: Exception) -> None:
        how = f"{type(exc).__name__}: {exc}"
        if self._failing.get(key) == how:
            return
        self._failing[key] = how
        self._logger.error(
            "watchdog: %s %s failed, the others go on (logged once while it fails so): %s",
            self._what,
            key,
            how,
            exc_info=exc,
        )
