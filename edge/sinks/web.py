"""The web page as a sink: every result goes to the hub, frames only while watched."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Self

import numpy as np

from edge.config import RunConfig
from edge.frames import Result
from edge.sinks.base import Sink, SinkContext


class WebSink(Sink):
    """Starts the web server when opened and feeds it the pipeline's results.

    `needs_image` is true only while a viewer is on the stream, so without
    viewers the pipeline neither draws nor encodes frames for the page.
    """

    name = "web"

    def __init__(self, config: RunConfig, stats: Callable[[], dict], source: str) -> None:
        super().__init__()
        from edge.web.hub import FrameHub
        from edge.web.server import WebServer

        detector = config.detector
        info = {
            "source": source,
            "detector": detector.name
            + (f" ({detector.model_path.stem})" if detector.name == "mediapipe" else ""),
            "model": Path(config.classifier.model).name,
        }
        self.hub = FrameHub(config.web.jpeg_quality, stats)
        self.server = WebServer(config, self.hub, info)

    @classmethod
    def from_config(cls, context: SinkContext) -> Self | None:
        if not context.config.web.listen:
            return None
        return cls(context.config, context.stats, context.source_description)

    @property
    def needs_image(self) -> bool:  # type: ignore[override]
        return self.hub.watching

    @property
    def url(self) -> str:
        return self.server.url

    def _open(self) -> None:
        self.server.open()

    def _write(self, result: Result, annotated: np.ndarray | None) -> None:
        self.hub.publish(result, annotated)

    def _close(self) -> None:
        self.server.close()
