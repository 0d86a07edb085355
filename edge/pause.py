"""Pausing analysis from the web page or MQTT: while paused no frame is
analysed and no picture of the scene leaves (outputs get a dark frame that
says so), the service stays alive (frames still flow, so the watchdog is
fed), and the state says paused. Logged once per change, with who asked."""

from __future__ import annotations

import logging
import threading

import cv2
import numpy as np

log = logging.getLogger(__name__)


class PauseSwitch:
    def __init__(self) -> None:
        self._paused = threading.Event()

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    def set(self, paused: bool, by: str) -> None:
        if paused == self.paused:
            return
        if paused:
            self._paused.set()
        else:
            self._paused.clear()
        log.info("analysis %s (from %s)", "paused" if paused else "resumed", by)


def paused_picture(like: np.ndarray) -> np.ndarray:
    """A dark frame of the same size, saying analysis is paused."""
    out = np.full((like.shape[0], like.shape[1], 3), 24, np.uint8)
    scale = max(0.6, like.shape[1] / 900)
    text = "analysis paused"
    (w, h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
    origin = ((out.shape[1] - w) // 2, (out.shape[0] + h) // 2)
    cv2.putText(out, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (200, 200, 200), 2, cv2.LINE_AA)
    return out
