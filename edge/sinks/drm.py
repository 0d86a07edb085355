"""HDMI without a desktop: picamera2's DRM preview with an RGBA overlay.

The camera's own DRM preview puts the main stream on the screen with no CPU
copy; this sink only draws boxes, labels and the HUD into a transparent RGBA
image and hands it to `Picamera2.set_overlay`, and only when something
changed (a face, a label, or the HUD once a second), since each overlay
update is a full-size copy on the Pi.

The sink follows the source, not one camera object: after a reopen the Pi
camera is a new `Picamera2` with a new preview. picamera2 refuses an
overlay until that preview runs ("No preview specified", "must be started"),
and until the preview has rendered its first frame it also says "Overlays not
supported on this device": the DRM preview reserves its overlay plane in its
first `render_drm` (previews/drm_preview.py; picamera2 issue #1252). Those
frames go without one. Only once the preview's plane exists does that message
mean an output with no overlay plane (some DSI, DPI or composite outputs):
the camera picture stays and the labels go, with one warning.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Self

import cv2
import numpy as np

from edge.frames import Result
from edge.overlay import draw_faces, draw_hud
from edge.sinks.base import Sink, SinkContext, SinkError
from edge.stats import RateMeter

log = logging.getLogger(__name__)

# picamera2's words for "no preview to draw on yet" (picamera2.py `set_overlay`,
# previews/drm_preview.py `set_overlay`).
NOT_YET = ("No preview specified", "must be started", "must be configured")
# ... and for "no overlay plane", which it also says before the first frame.
NO_PLANE = "Overlays not supported"


def preview_rendered(camera) -> bool:
    """Whether the camera's DRM preview has reserved its planes (its first
    frame is on the screen); True where the preview does not say."""
    preview = getattr(camera, "_preview", None)
    return getattr(preview, "plane", True) is not None


class DrmSink(Sink):
    name = "drm"

    def __init__(self, source, size: tuple[int, int], hud_interval_s: float = 1.0) -> None:
        super().__init__()
        self.source = source  # anything with a `camera` attribute: the Pi camera source
        self.size = size
        self.hud_interval_s = hud_interval_s
        self.rate = RateMeter()
        self._shown: tuple | None = None
        self._hud_at = 0.0
        self._camera = None  # the camera the current overlay is on
        self.overlay_supported = True
        self.updates = 0

    @classmethod
    def from_config(cls, context: SinkContext) -> Self | None:
        if context.display != "drm":
            return None
        source = context.source
        if problem := getattr(source, "preview_problem", None):
            raise SinkError(f"--display drm: {problem}; or use --display console")
        if not getattr(source, "drm_preview", False) or getattr(source, "camera", None) is None:
            raise SinkError(
                "--display drm shows the Pi camera's own preview: use it with --source "
                "picamera2 (or auto on a Pi), or use --display console, window or none"
            )
        return cls(source, source.size)

    def _write(self, result: Result, annotated: np.ndarray | None) -> None:
        now = time.monotonic()
        self.rate.tick(now)  # every processed frame passes here
        # What the viewer would see change: boxes to 8 px, confidence to 5 points.
        faces = tuple(
            (tuple(v // 8 for v in f.box), f.label, round(f.confidence * 20)) for f in result.faces
        )
        camera = getattr(self.source, "camera", None)  # None: mid-reopen, or a webcam now
        if camera is None or not self.overlay_supported:
            return  # mid-reopen, or a screen without an overlay plane
        if camera is not self._camera:
            self._shown = None  # a new camera starts with no overlay: draw it again
        if faces == self._shown and now - self._hud_at < self.hud_interval_s:
            return
        width, height = self.size
        canvas = np.zeros((height, width, 3), np.uint8)
        draw_faces(canvas, result)
        draw_hud(canvas, self.rate.rate(now), result.latency_ms, len(result.faces))
        # Opaque where something was drawn, transparent elsewhere; RGBA order.
        alpha = np.where(canvas.any(axis=2), 255, 0).astype(np.uint8)
        overlay = np.dstack([cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB), alpha])
        try:
            camera.set_overlay(overlay)
        except RuntimeError as exc:
            if any(words in str(exc) for words in NOT_YET):
                return  # its preview has not started yet; a later frame will do
            if NO_PLANE not in str(exc):
                raise
            if not preview_rendered(camera):
                return  # no plane reserved yet: the preview's first frame does that
            self.overlay_supported = False
            log.warning(
                "this screen has no overlay plane (%s): the camera picture shows without "
                "labels; the web page (--web PORT) shows them",
                exc,
            )
            return
        self._shown, self._hud_at, self._camera = faces, now, camera
        self.updates += 1

    def _close(self) -> None:
        # The camera may already be closed; nothing is left to clear then.
        with contextlib.suppress(Exception):
            self.source.camera.set_overlay(None)
