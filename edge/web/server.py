"""The web server's own thread and event loop, beside the pipeline's threads.

aiohttp serves every viewer from one thread: a stream is a coroutine waiting
for the next JPEG, not a thread per client, which suits a Pi's four cores
that the pipeline needs. Binding happens in `open`, so a port in use or a
missing token is a start-up error, not a surprise later.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from aiohttp import web

from edge.config import RunConfig
from edge.lifecycle import Lifecycle
from edge.pause import PauseSwitch
from edge.sinks.base import SinkError
from edge.web.address import parse_listen
from edge.web.app import FRAMES, make_app
from edge.web.hub import FrameHub
from edge.web.uploads import PhotoAnalyzer

log = logging.getLogger(__name__)

START_TIMEOUT_S = 10.0


class WebServer(Lifecycle):
    """Serves the page for `hub` on `config.web.listen` until closed."""

    description = "web server"

    def __init__(
        self, config: RunConfig, hub: FrameHub, info: dict, pause: PauseSwitch | None = None
    ) -> None:
        super().__init__()
        self.pause = pause
        self.host, self.port = parse_listen(config.web.listen)  # checked by WebConfig
        self.config = config
        self.hub = hub
        self.info = info
        self.analyzer = PhotoAnalyzer(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def _open(self) -> None:
        self.analyzer.open()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="web", daemon=True)
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        try:
            future.result(START_TIMEOUT_S)
        except OSError as exc:
            self._stop_loop()
            self.analyzer.close()
            raise SinkError(
                f"cannot serve the web page on {self.host}:{self.port} ({exc.strerror or exc}): "
                "choose another port with --web HOST:PORT"
            ) from None
        self.hub.start()
        log.info("web page: %s", self.url)

    async def _start(self) -> None:
        web_config = self.config.web
        app = make_app(
            self.hub,
            self.analyzer,
            self.info,
            token=web_config.token,
            max_upload=int(web_config.max_upload_mb * 1_000_000),
            faces=self.config.privacy.faces,
            pause=self.pause,
            notice=self.config.privacy.notice,
            hosts=web_config.hosts,
        )
        board = app[FRAMES]
        loop = asyncio.get_running_loop()
        self.hub.on_jpeg = lambda seq, data: loop.call_soon_threadsafe(board.post, seq, data)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]  # the real one when asked for port 0

    def _close(self) -> None:
        self.hub.on_jpeg = None
        if self._runner is not None:
            future = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
            try:
                future.result(5.0)
            except (TimeoutError, RuntimeError) as exc:
                log.warning("web server did not stop cleanly: %s", exc)
        self._stop_loop()
        self.hub.close()
        self.analyzer.close()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=2)
        if not self._thread.is_alive():
            self._loop.close()
