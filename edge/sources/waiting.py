"""Waiting for a camera: absent at start or lost mid-run, it is waited for, forever.

A service cannot give up on its camera: a Pi camera that comes up late at
boot, a USB camera plugged in later, a network camera rebooting. `Waiter`
retries with a capped backoff (about 2 s for a local camera, 4 s for a
network one, so it is back within seconds of returning), obeys the stop
event between and during its pauses (SIGTERM ends it within a second), and
calls `on_waiting` at least once a second with what it waits for: the
systemd notifier pings the watchdog from there, so a patient process is not
killed while a hung one still is. The log gets one line per change of state
(lost, waiting, back), never one per retry.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from edge.sources.base import SourceError

T = TypeVar("T")

log = logging.getLogger("edge.sources")

TICK_S = 1.0  # the longest pause without a word to on_waiting or a look at the stop event
LOCAL_BACKOFF_S = (0.25, 0.5, 1.0, 2.0)
NETWORK_BACKOFF_S = (0.5, 1.0, 2.0, 4.0)


class Waiter:
    """Retries `attempt` until it succeeds or `stop` is set."""

    def __init__(
        self,
        stop: threading.Event,
        on_waiting: Callable[[str], None] | None = None,
        network: bool = False,
    ) -> None:
        self.stop = stop
        self.on_waiting = on_waiting
        self.backoff = NETWORK_BACKOFF_S if network else LOCAL_BACKOFF_S

    def until(self, what: str, attempt: Callable[[], T], reason: str) -> T | None:
        """`attempt()` once it stops raising SourceError; None if stopped first.

        `what` names the camera in the log and the status; `reason` says why
        we wait (the first error, or the loss).
        """
        since = time.monotonic()
        stamp = time.strftime("%H:%M:%S")
        status = f"waiting for {what} since {stamp}"
        most = self.backoff[-1]
        log.warning("%s: %s; waiting for it (retrying every %g s at most)", what, reason, most)
        last_error = reason
        tries = 0
        while True:
            delay = self.backoff[min(tries, len(self.backoff) - 1)]
            if not self._pause(delay, status):
                log.info("stopped while waiting for %s", what)
                return None
            tries += 1
            try:
                result = attempt()
            except SourceError as exc:
                if str(exc) != last_error:  # a new state is worth a line; a retry is not
                    log.info("%s: still waiting (%s)", what, exc)
                    last_error = str(exc)
                continue
            log.info("%s is back after %.1f s (%d tries)", what, time.monotonic() - since, tries)
            return result

    def _pause(self, seconds: float, status: str) -> bool:
        """Sleep `seconds`, telling on_waiting at least every TICK_S; False if stopped."""
        end = time.monotonic() + seconds
        while True:
            if self.on_waiting is not None:
                self.on_waiting(status)
            left = end - time.monotonic()
            if left <= 0:
                return not self.stop.is_set()
            if self.stop.wait(min(TICK_S, left)):
                return False
