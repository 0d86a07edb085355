"""Where results go: every sink the config turns on, built from one registry.

Each sink class decides from the run's `SinkContext` whether the config asks
for it (`from_config` returns None when not). Adding a sink is one new file
under `edge/sinks/` and one line in `SINKS`; the pipeline sees only `Sink`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import get_args

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
        "record": "edge.sinks.video:VideoSink",
        "events": "edge.sinks.events:EventsSink",
        "web": "edge.sinks.web:WebSink",
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


def drm_console() -> bool:
    """A console with a DRM/KMS device and no desktop: HDMI through the DRM preview."""
    from edge.sinks.window import display_available

    return not display_available() and any(Path("/dev/dri").glob("card*"))


def wants_drm_preview(display: str) -> bool:
    """Whether the Pi camera should start its DRM preview for this display choice."""
    return display == "drm" or (display == "auto" and drm_console())


def resolve_display(display: str, source: Source | None = None) -> str:
    """`auto` made concrete: a window under a desktop session, the DRM overlay
    when the Pi camera shows its DRM preview (a console-only Pi), else none."""
    if display != "auto":
        return display
    from edge.sinks.window import display_available

    drm = getattr(source, "drm_preview", False) and getattr(source, "camera", None) is not None
    display = "window" if display_available() else "drm" if drm else "none"
    log.info("display auto: %s", {"none": "none (headless)"}.get(display, display))
    return display


def make_sinks(context: SinkContext) -> list[Sink]:
    """The (unopened) sinks the config asks for, in registry order."""
    sinks = []
    for name in SINKS:
        sink = SINKS.load(name).from_config(context)
        if sink is not None:
            sinks.append(sink)
    return sinks
