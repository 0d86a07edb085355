"""systemd notification (sd_notify): READY, WATCHDOG, STATUS, STOPPING.

A few lines over the `$NOTIFY_SOCKET` datagram socket rather than a
dependency: the protocol is one `KEY=value` datagram, and a no-op when the
process is not started by systemd (no `$NOTIFY_SOCKET`).

The watchdog pings only while processed frames advance: a hung camera or a
stuck inference stops the pings, and systemd restarts the service after
`WatchdogSec=`. A ping sent from a timer alone would keep a dead pipeline
"healthy" forever.
"""

from __future__ import annotations

import logging
import os
import socket
import threading

from edge.frames import Result

log = logging.getLogger(__name__)


class Notifier:
    """Sends sd_notify messages; silently does nothing outside systemd."""

    def __init__(self, address: str | None = None) -> None:
        address = address if address is not None else os.environ.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):  # abstract namespace socket
            address = "\0" + address[1:]
        self.address = address
        self._socket: socket.socket | None = None
        if address:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._socket.setblocking(False)

    @property
    def enabled(self) -> bool:
        return self._socket is not None

    def send(self, message: str) -> bool:
        if self._socket is None:
            return False
        try:
            self._socket.sendto(message.encode(), self.address)
        except OSError as exc:
            log.warning("sd_notify %r failed: %s", message.split("=")[0], exc)
            return False
        return True

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def watchdog_interval() -> float | None:
    """Half of systemd's WatchdogSec (from $WATCHDOG_USEC), or None when off."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 1e6 / 2
    except ValueError:
        return None


class ServiceNotifier:
    """Connects a Pipeline to systemd: pass `on_result` and `on_stats` to it.

    READY=1 after the first processed frame, or once the pipeline waits for
    its camera (it is up, and patient); WATCHDOG=1 every `interval` seconds if
    frames were processed or the camera-waiting loop ticked since the last
    ping; STATUS= with the FPS and latency of each stats snapshot, or, while
    the camera is waited for, what and since when (stats snapshots keep
    coming then, and must not hide it from `systemctl status`: found by
    `make pi-vm-check`); STOPPING=1 from `stop()`.
    """

    def __init__(self, notifier: Notifier | None = None, interval: float | None = None):
        self.notifier = notifier or Notifier()
        self.interval = interval if interval is not None else watchdog_interval()
        self.processed = 0
        self.waiting_ticks = 0
        self.ready = False
        self.waiting = False  # the camera is waited for: the status says so
        self._pinged_at = (0, 0)
        self._status = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> ServiceNotifier:
        if self.notifier.enabled and self.interval:
            self._thread = threading.Thread(target=self._watchdog, name="watchdog", daemon=True)
            self._thread.start()
        return self

    def on_result(self, result: Result) -> None:
        if not self.ready:  # before counting: no watchdog ping may precede READY
            self.ready = True
            self.notifier.send("READY=1\nSTATUS=first frame processed")
        self.processed += 1
        self.waiting = False

    def on_waiting(self, status: str) -> None:
        """Called at least once a second while the pipeline waits for its camera."""
        self.waiting = True
        if not self.ready:
            self.ready = True
            self.notifier.send(f"READY=1\nSTATUS={status}")
            self._status = status
        elif status != self._status:
            self.notifier.send(f"STATUS={status}")
            self._status = status
        self.waiting_ticks += 1

    def on_stats(self, snapshot: dict) -> None:
        if self.waiting:  # "waiting for webcam 0 since ..." stays until a frame comes
            return
        self._status = ""
        lat = snapshot["latency_ms"]
        self.notifier.send(
            f"STATUS={snapshot['processed_fps']:.1f} fps, latency p50 {lat['p50']:.0f} ms "
            f"p95 {lat['p95']:.0f} ms, {snapshot['faces']} faces"
        )

    def _watchdog(self) -> None:
        while not self._stop.wait(self.interval):
            progress = (self.processed, self.waiting_ticks)
            if progress != self._pinged_at:  # a frame processed, or the waiting loop alive
                self._pinged_at = progress
                self.notifier.send("WATCHDOG=1")
            else:
                log.warning(
                    "no frame processed for %.1f s: withholding the watchdog ping", self.interval
                )

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        self.notifier.send("STOPPING=1")
        self.notifier.close()

    def __enter__(self) -> ServiceNotifier:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
