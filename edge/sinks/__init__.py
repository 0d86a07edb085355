"""Where results go; `make_sinks` builds them from the output config."""

from __future__ import annotations

import logging

from edge.config import OutputConfig
from edge.sinks.base import Sink, SinkError

log = logging.getLogger(__name__)

DISPLAYS = ("auto", "window", "none", "drm")

__all__ = ["DISPLAYS", "Sink", "SinkError", "make_sinks"]


def make_display(display: str, fullscreen: bool) -> Sink | None:
    from edge.sinks.window import WindowSink, display_available

    if display == "auto":
        display = "window" if display_available() else "none"
        log.info("display auto: %s", "window" if display == "window" else "none (headless)")
    if display == "none":
        return None
    if display == "window":
        return WindowSink(fullscreen)
    if display == "drm":
        raise SinkError("--display drm is not available yet: use window (desktop) or none")
    raise SinkError(f"unknown display {display!r}: use one of {', '.join(DISPLAYS)}")


def make_sinks(config: OutputConfig, fps: float) -> list[Sink]:
    """The (unopened) sinks the config asks for, display first."""
    sinks: list[Sink] = []
    display = make_display(config.display, config.fullscreen)
    if display is not None:
        sinks.append(display)
    if config.record:
        from edge.sinks.video import VideoSink

        sinks.append(VideoSink(config.record, fps, config.overwrite))
    if config.events:
        from edge.sinks.events import EventsSink

        sinks.append(EventsSink(config.events, config.overwrite))
    return sinks
