"""Where frames come from, chosen by name: see `open_source`."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from edge.config import DEMO_CLIP, SourceConfig
from edge.sources.base import FrameError, Source, SourceError, SourceFailed, SourceLost
from edge.sources.images import IMAGE_SUFFIXES, ImageSource
from edge.sources.video import STREAM_PREFIXES, VideoSource

log = logging.getLogger(__name__)

NAMES = (
    "auto",
    "camera",
    "demo",
    "picamera2",
    "<webcam index>",
    "<video file>",
    "<image or folder>",
    "<rtsp/http URL>",
)

__all__ = [
    "FrameError",
    "Source",
    "SourceError",
    "SourceFailed",
    "SourceLost",
    "make_source",
    "open_source",
]


def _webcam(index: int, config: SourceConfig) -> Source:
    from edge.sources.webcam import WebcamSource

    return WebcamSource(index, config.width, config.height, config.fps)


def _picamera2(
    config: SourceConfig, drm_preview: bool, retries: bool, preview_fullscreen: bool
) -> Source:
    from edge.sources.picamera2 import Picamera2Source

    return Picamera2Source(
        config.width,
        config.height,
        config.fps,
        config.lores_width or 0,  # unset: the run decides (config.lores_width)
        drm_preview,
        retries,
        preview_fullscreen,
        config.lens_position,
    )


def make_source(
    config: SourceConfig,
    drm_preview: bool = False,
    retries: bool = True,
    preview_fullscreen: bool = True,
) -> Source:
    """The (unopened) source named by `config.name`; `auto` is resolved by `open_source`.

    `drm_preview`: the Pi camera also shows itself on HDMI (the DRM sink's
    base), filling the screen or at the camera's size (`preview_fullscreen`);
    other sources ignore both. `retries`: the Pi camera waits for a busy or
    late camera instead of failing at once.
    """
    name = config.name.strip()
    if name == "demo":
        if not DEMO_CLIP.is_file():
            raise SourceError(
                f"demo clip {DEMO_CLIP} is missing: restore it from the repository "
                "or regenerate it with `python scripts/make_demo_clip.py`"
            )
        return VideoSource(DEMO_CLIP, loop=config.loop)
    if name == "picamera2":
        return _picamera2(config, drm_preview, retries, preview_fullscreen)
    if name.isdigit():
        return _webcam(int(name), config)
    if name.lower().startswith(STREAM_PREFIXES):
        return VideoSource(name)
    path = Path(name).expanduser()
    if path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource(path)
    if path.is_file():
        return VideoSource(path, loop=config.loop)
    if path.suffix or "/" in name:
        raise SourceError(f"{name} not found: check the path")
    raise SourceError(f"unknown source {name!r}: use one of {', '.join(NAMES)}")


def is_network(config: SourceConfig) -> bool:
    """A stream URL: reached over a network, so slower to come back."""
    return config.name.strip().lower().startswith(STREAM_PREFIXES)


def is_live(config: SourceConfig) -> bool:
    """A camera or a stream: something that can be absent now and present later."""
    name = config.name.strip()
    return name in ("auto", "camera", "picamera2") or name.isdigit() or is_network(config)


def waits(config: SourceConfig) -> bool:
    """Whether a missing or lost camera is waited for: `[source] wait`, which
    defaults to yes when running as a service. `auto` outside a service has the
    demo clip to fall back on instead."""
    wait = config.wait if config.wait is not None else under_systemd()
    if config.name.strip() == "auto" and not under_systemd():
        return False
    return wait and is_live(config)


def under_systemd() -> bool:
    """Running as a service (systemd sets NOTIFY_SOCKET for Type=notify units)."""
    return bool(os.environ.get("NOTIFY_SOCKET"))


def open_source(
    config: SourceConfig, drm_preview: bool = False, preview_fullscreen: bool = True
) -> Source:
    """The named source, opened. `auto` tries the Pi camera, then each USB
    webcam, then the demo clip, and says in one log line which it took.

    Under systemd `auto` never takes the demo clip: a service that played it
    would look alive while watching nothing, then exit 0 and stay stopped.
    Without a camera it fails, and the unit restarts it until one appears.
    """
    from edge.sources.cameras import AnyCamera

    name = config.name.strip()
    if name not in ("auto", "camera"):
        return make_source(
            config, drm_preview, retries=not waits(config), preview_fullscreen=preview_fullscreen
        ).open()

    def make(candidate: str) -> Source:
        candidate_config = config.model_copy(update={"name": candidate})
        return make_source(candidate_config, drm_preview, False, preview_fullscreen)

    try:
        source = AnyCamera(make).open()
    except SourceError as exc:
        if name == "camera" or under_systemd():
            raise SourceError(f"{exc}: connect one") from None
        log.info("source auto: no camera found, using the demo clip %s", DEMO_CLIP.name)
        log.debug("camera probes: %s", exc)
        return make_source(config.model_copy(update={"name": "demo"})).open()
    log.info("source %s: using %s", name, source.description)
    return source
