"""Pausing analysis from the web page or MQTT: while paused no frame is
analysed and no picture of the scene leaves (outputs get a dark frame that
says so), the service stays alive (frames still flow, so the watchdog is
fed), and the state says paused. Logged once per change, with who asked.

A pause holds across restarts: a power cut or a service restart must not
quietly start analysing people who were told it had stopped. The state is
kept in `state_file` (the service's StateDirectory, `$STATE_DIRECTORY/
paused.json`, written atomically) and said in one line at start; the events
file gets a `pause` record at each change (`changes`), so a paused hour does
not read as an empty room."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)


def state_file() -> Path | None:
    """Where the paused state is kept: the service's state directory (systemd
    sets STATE_DIRECTORY from the unit's StateDirectory=); None elsewhere."""
    directory = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(directory) / "paused.json" if directory else None


class PauseSwitch:
    def __init__(self, state_file: Path | None = None) -> None:
        self._paused = threading.Event()
        self._lock = threading.Lock()
        self.state_file = state_file
        self.changes: list[dict] = []  # every change, in order: {paused, by, t}
        self._load()

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    def set(self, paused: bool, by: str) -> None:
        with self._lock:
            if paused == self.paused:
                return
            if paused:
                self._paused.set()
            else:
                self._paused.clear()
            change = {"paused": paused, "by": by, "t": dt.datetime.now(dt.UTC).isoformat()}
            self.changes.append(change)
            self._save(change)
        log.info("analysis %s (from %s)", "paused" if paused else "resumed", by)

    def _load(self) -> None:
        if self.state_file is None:
            return
        try:
            state = json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            # Unreadable: fail closed, a pause that cannot be read is kept.
            state = {"paused": True, "by": f"an unreadable {self.state_file} ({exc})", "t": "?"}
        if isinstance(state, dict) and state.get("paused") is True:
            self._paused.set()
            log.warning(
                "analysis is paused (since %s, from %s), as before this start: "
                "resume it from the web page or MQTT",
                state.get("t", "?"),
                state.get("by", "?"),
            )

    def _save(self, change: dict) -> None:
        if self.state_file is None:
            return
        try:
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            partial = self.state_file.with_name(self.state_file.name + ".tmp")
            with partial.open("w") as handle:
                json.dump(change, handle)
                handle.flush()
                os.fsync(handle.fileno())
            partial.replace(self.state_file)
        except OSError as exc:
            log.error(
                "could not keep the paused state in %s (%s): a restart will %s",
                self.state_file,
                exc,
                "resume analysis" if change["paused"] else "still find it paused",
            )


def paused_picture(like: np.ndarray) -> np.ndarray:
    """A dark frame of the same size, saying analysis is paused."""
    out = np.full((like.shape[0], like.shape[1], 3), 24, np.uint8)
    scale = max(0.6, like.shape[1] / 900)
    text = "analysis paused"
    (w, h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
    origin = ((out.shape[1] - w) // 2, (out.shape[0] + h) // 2)
    cv2.putText(out, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (200, 200, 200), 2, cv2.LINE_AA)
    return out
