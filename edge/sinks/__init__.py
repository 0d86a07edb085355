"""Where results go: every sink the config turns on, built from one registry.

Each sink class decides from the run's `SinkContext` whether the config asks
for it (`from_config` returns None when not). Adding a sink is one new file
under `edge/sinks/` and one line in `SINKS`; the pipeline sees only `Sink`.
"""

from __future__ import annotations

import logging
from typing import get_args

from edge import screen
from edge.config import DisplayName
from edge.registry import Registry
from edge.sinks.base import Sink, SinkContext, SinkError
from edge.sources.base import Source

log = logging.getLogger(__name__)

# In the order they are opened and written to: the display first, so the
# screen shows a frame before the slower outputs have it.
SINKS: Registry[Sink] = Registry(
    "sink",
    {
        "window": "edge.sinks.window:WindowSink",
        "drm": "edge.sinks.drm:DrmSink",
        "console": "edge.sinks.console:ConsoleSink",
        "record": "edge.sinks.video:VideoSink",
        "events": "edge.sinks.events:EventsSink",
        "web": "edge.sinks.web:WebSink",
        "mqtt": "edge.sinks.mqtt:MqttSink",
    },
    SinkError,
)

# `[output] display` names a display sink, or decides (`auto`) or declines (`none`):
# a display the config accepts but no sink draws would be a silent no-op.
DISPLAYS = get_args(DisplayName)
if missing := set(DISPLAYS) - {"auto", "none"} - set(SINKS.names):
    raise RuntimeError(f"displays {sorted(missing)} have no entry in SINKS")

__all__ = [
    "DISPLAYS",
    "SINKS",
    "Sink",
    "SinkContext",
    "SinkError",
    "make_sinks",
    "resolve_display",
    "wants_drm_preview",
]


def console_screen() -> bool:
    """A console with a connected screen that no desktop owns: ours to draw on."""
    from edge.sinks.window import display_available

    return not display_available() and screen.drm_unavailable() is None


def wants_drm_preview(display: str, private: bool = False) -> bool:
    """Whether the Pi camera should start its DRM preview for this display choice.

    `display = "drm"` where DRM cannot work is refused here, before the camera
    starts, with the reason: otherwise picamera2's frame thread dies on the
    first frame and the capture waits forever. The preview shows the sensor's
    picture as it is, so with `[privacy]` on (`private`) `auto` draws the
    console itself instead, and `drm` is refused.
    """
    if display == "drm" and private:
        raise SinkError(
            "--display drm shows the camera's picture straight from the sensor, faces "
            "unblurred: with [privacy] use --display console (drawn blurred) or none"
        )
    if display in ("drm", "console") and (reason := screen.drm_unavailable()):
        raise SinkError(
            f"--display {display}: {reason}; use --display window from the desktop "
            "session, or --display none and watch on the web page (--web PORT)"
        )
    return display == "drm" or (display == "auto" and not private and console_screen())


def resolve_display(display: str, source: Source | None = None, web: bool = False) -> str:
    """`auto` made concrete: a window under a desktop session; on a console
    with a screen, the Pi camera's own DRM preview when it runs (no CPU copy),
    else our frames drawn on the console's framebuffer; else none, with one
    line saying why and where to watch instead."""
    if display != "auto":
        return display
    from edge.sinks.window import display_available

    drm = getattr(source, "drm_preview", False) and getattr(source, "camera", None) is not None
    if display_available():
        display = "window"
    elif drm:
        display = "drm"
    elif (reason := screen.drm_unavailable()) is None and screen.framebuffer() is not None:
        display = "console"
    else:
        reason = reason or "the screen's card has no framebuffer (fbdev emulation is off)"
        watch = "the web page shows the video" if web else "add --web PORT to watch in a browser"
        log.info("display auto: none (headless: no desktop session; %s); %s", reason, watch)
        return "none"
    log.info("display auto: %s", display)
    return display


def make_sinks(context: SinkContext) -> list[Sink]:
    """The (unopened) sinks the config asks for, in registry order."""
    sinks = []
    for name in SINKS:
        sink = SINKS.load(name).from_config(context)
        if sink is not None:
            sinks.append(sink)
    return sinks
