"""Where results go; `make_sinks` builds them from the output config."""

from __future__ import annotations

import logging
from pathlib import Path

from edge.config import OutputConfig
from edge.sinks.base import Sink, SinkError
from edge.sources.base import Source

log = logging.getLogger(__name__)

DISPLAYS = ("auto", "window", "none", "drm")

__all__ = ["DISPLAYS", "Sink", "SinkError", "make_sinks"]


def drm_console() -> bool:
    """A console with a DRM/KMS device and no desktop: HDMI through the DRM preview."""
    from edge.sinks.window import display_available

    return not display_available() and any(Path("/dev/dri").glob("card*"))


def wants_drm_preview(display: str) -> bool:
    """Whether the Pi camera should start its DRM preview for this display choice."""
    return display == "drm" or (display == "auto" and drm_console())


def make_display(display: str, fullscreen: bool, source: Source | None = None) -> Sink | None:
    """The display sink: a window on a desktop, the DRM overlay on a Pi console.

    `auto` takes the window under a desktop session, the DRM overlay when the
    Pi camera is showing its DRM preview (a console-only Pi), else none.
    """
    from edge.sinks.window import WindowSink, display_available

    camera = getattr(source, "camera", None) if getattr(source, "drm_preview", False) else None
    if display == "auto":
        display = "window" if display_available() else "drm" if camera is not None else "none"
        log.info("display auto: %s", {"none": "none (headless)"}.get(display, display))
    if display == "none":
        return None
    if display == "window":
        return WindowSink(fullscreen)
    if display == "drm":
        if camera is None:
            raise SinkError(
                "--display drm shows the Pi camera's own preview: use it with --source "
                "picamera2 (or auto on a Pi), or use --display window / none"
            )
        from edge.sinks.drm import DrmSink

        return DrmSink(camera, source.size)
    raise SinkError(f"unknown display {display!r}: use one of {', '.join(DISPLAYS)}")


def make_sinks(config: OutputConfig, fps: float, source: Source | None = None) -> list[Sink]:
    """The (unopened) sinks the config asks for, display first."""
    sinks: list[Sink] = []
    display = make_display(config.display, config.fullscreen, source)
    if display is not None:
        sinks.append(display)
    if config.record:
        from edge.sinks.video import VideoSink

        sinks.append(VideoSink(config.record, fps, config.overwrite))
    if config.events:
        from edge.sinks.events import EventsSink

        sinks.append(EventsSink(config.events, config.overwrite))
    return sinks
