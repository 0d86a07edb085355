"""The web page as a sink: every result goes to the hub, frames only while watched."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Self

import numpy as np

from edge.config import RunConfig
from edge.frames import Result
from edge.pause import PauseSwitch
from edge.sinks.base import Sink, SinkContext


def public_source(description: str) -> str:
    """What the page says is running, without the machine's folders or a
    stream's credentials: "video faces.mp4", "stream rtsp://cam.local", ..."""
    if "://" in description:
        scheme, _, rest = description.partition("://")
        host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
        return f"stream {scheme}://{host}"
    if "/" in description or "\\" in description:
        path = Path(description)
        kind = "photos" if path.suffix == "" else "video"
        return f"{kind} {path.name}"
    return description  # picamera2, webcam 0


def detector_description(config: RunConfig) -> str:
    """The detector as it runs: the model(s) and the far-face search."""
    detector = config.detector
    if detector.name != "mediapipe":
        return detector.name
    if detector.model:
        return f"mediapipe ({Path(detector.model).stem})"
    text = f"BlazeFace {detector.range} range"
    if detector.tiles > 1:
        text += f" + far faces (full range, {detector.tiles}x{detector.tiles} tiles)"
    return text


class WebSink(Sink):
    """Starts the web server when opened and feeds it the pipeline's results.

    The page's stream is drawn by the hub's own thread from the result (boxes
    and labels, no HUD), and only while a viewer is on it: the pipeline never
    draws or encodes for the page.
    """

    name = "web"

    def __init__(
        self,
        config: RunConfig,
        stats: Callable[[], dict],
        source: str,
        pause: PauseSwitch | None = None,
    ) -> None:
        super().__init__()
        from edge.web.hub import FrameHub
        from edge.web.server import WebServer

        info = {
            "source": public_source(source),
            "detector": detector_description(config),
            "model": config.classifier.model_name,
        }
        privacy = config.privacy
        self.hub = FrameHub(
            config.web.jpeg_quality, stats, privacy.faces, privacy.masks, config.web.stream_fps
        )
        self.server = WebServer(config, self.hub, info, pause)

    @classmethod
    def from_config(cls, context: SinkContext) -> Self | None:
        if not context.config.web.listen:
            return None
        return cls(context.config, context.stats, context.source_description, context.pause)

    @property
    def url(self) -> str:
        return self.server.url

    def _open(self) -> None:
        self.server.open()

    def _write(self, result: Result, annotated: np.ndarray | None) -> None:
        self.hub.publish(result)

    def _close(self) -> None:
        self.server.close()
