"""The web application: the page, the MJPEG stream, live stats and the photo API.

    GET  /                 the page (plain HTML and JS from edge/web/static)
    GET  /stream.mjpg      the annotated frames, multipart/x-mixed-replace
    GET  /api/stats        the pipeline's figures plus labels over the last minute
    GET  /api/events       the same figures pushed once a second (server-sent events)
    GET  /api/latest       the last frame's faces, in the events-file schema
    POST /api/analyze      a photo (multipart field `image`, or the raw body) -> faces;
                           `?annotate=1` answers with the annotated JPEG instead,
                           `?annotate=inline` adds it to the JSON as a data URL

Every answer that is an error is JSON `{"error": "..."}` with a 4xx status.
With a token set, every request must carry it: `Authorization: Bearer TOKEN`,
`?token=TOKEN`, or the cookie the page gets when opened as `/?token=TOKEN`
(which then redirects to `/`). What a browser on another site may not do
(rebinding, forged posts, framing) is edge/web/guard.py's.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import json
import logging
import socket
from pathlib import Path

import cv2
from aiohttp import web

from edge.overlay import annotate
from edge.pause import PauseSwitch
from edge.web.guard import make_guard
from edge.web.hub import FrameHub
from edge.web.uploads import PhotoAnalyzer, UploadError

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
BOUNDARY = "frame"
EVENTS_INTERVAL_S = 1.0
SEND_BUFFER = 128 * 1024  # bytes the kernel may queue per viewer (it doubles this)
WAIT_S = 0.5  # how long a stream waits for a frame before checking for shutdown


class JpegBoard:
    """The newest JPEG, on the event loop; every stream waits here for the next one.

    Not a `LatestSlot`: that hands each item to one consumer thread, while
    this is read by many viewers, each at its own pace (a viewer remembers
    the `seq` it sent last and takes whatever is newest when it is ready),
    and it is awaited by coroutines, which must not block the loop.
    """

    def __init__(self) -> None:
        self.seq = 0  # the hub numbers frames from 1
        self.data = b""
        self._changed = asyncio.Event()

    def post(self, seq: int, data: bytes) -> None:
        self.seq, self.data = seq, data
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_newer(self, seq: int, timeout: float) -> bool:
        if self.seq != seq:
            return True
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except TimeoutError:
            return False
        return True


HUB = web.AppKey("hub", FrameHub)
ANALYZER = web.AppKey("analyzer", PhotoAnalyzer)
INFO = web.AppKey("info", dict)
TOKEN = web.AppKey("token", str)
MAX_UPLOAD = web.AppKey("max_upload", int)
FRAMES = web.AppKey("frames", JpegBoard)
CLOSING = web.AppKey("closing", asyncio.Event)
FACES = web.AppKey("faces", str)
NOTICE = web.AppKey("notice", str)
PAUSE = web.AppKey("pause", PauseSwitch)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


@web.middleware
async def errors_as_json(request: web.Request, handler):
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error(exc.status, exc.reason if exc.text is None else exc.text.strip())


COOKIE = "emotion_edge_token"


def given_token(request: web.Request) -> str:
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        return auth.removeprefix("Bearer ").strip()
    return request.query.get("token") or request.cookies.get(COOKIE, "")


NO_TOKEN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>emotion-edge: token needed</title></head>
<body><h1>This page needs its token</h1>
<p>Open it once as <code>/?token=TOKEN</code>, with the token from the
device's configuration (<code>[web] token</code>); this browser then keeps it
in a cookie and the address bar shows it no more.</p></body></html>
"""


@web.middleware
async def require_token(request: web.Request, handler):
    """With a token set, no request is answered without it; a person opening
    the page in a browser gets a page saying how, not JSON."""
    token = request.app[TOKEN]
    if token and not hmac.compare_digest(given_token(request).encode(), token.encode()):
        if request.path == "/" and "text/html" in request.headers.get("Accept", ""):
            return web.Response(text=NO_TOKEN_PAGE, status=401, content_type="text/html")
        return _error(401, "missing or wrong token: open the page as /?token=TOKEN")
    return await handler(request)


async def index(request: web.Request) -> web.StreamResponse:
    token = request.app[TOKEN]
    if token and "token" in request.query:
        # Into the cookie and out of the address bar (history, proxy logs,
        # screenshots): the page's own requests then carry it.
        redirect = web.HTTPSeeOther("/", headers={"Cache-Control": "no-store"})
        redirect.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/")
        raise redirect
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})


async def stream(request: web.Request) -> web.StreamResponse:
    hub, board = request.app[HUB], request.app[FRAMES]
    response = web.StreamResponse(
        headers={
            "Content-Type": f"multipart/x-mixed-replace; boundary={BOUNDARY}",
            "Cache-Control": "no-store",
        }
    )
    sock = request.transport.get_extra_info("socket") if request.transport else None
    if sock is not None:
        # A viewer that cannot keep up should fall behind by a frame or two,
        # not by the seconds of video a default (autotuned, MBs) buffer holds.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
    await response.prepare(request)
    hub.add_viewer()
    log.info("stream viewer connected (%d watching)", hub.viewers)
    seq = board.seq  # wait for a fresh frame: the board's may be from an earlier viewer
    try:
        while not request.app[CLOSING].is_set():
            if not await board.wait_newer(seq, WAIT_S):
                continue
            seq, data = board.seq, board.data
            # A slow viewer waits here alone; others and the pipeline carry on,
            # and it gets the newest frame when it is ready again.
            await response.write(
                b"--" + BOUNDARY.encode() + b"\r\nContent-Type: image/jpeg\r\n"
                b"Content-Length: " + str(len(data)).encode() + b"\r\n\r\n" + data + b"\r\n"
            )
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        hub.remove_viewer()
        log.info("stream viewer left (%d watching)", hub.viewers)
    return response


def stats_payload(app: web.Application) -> dict:
    hub = app[HUB]
    snap = hub.snapshot()
    latest = hub.latest_event() or {}
    return {
        **app[INFO],
        "fps": snap.get("processed_fps", 0.0),
        "camera_fps": snap.get("camera_fps", 0.0),
        "latency_ms": {k: snap.get("latency_ms", {}).get(k, 0.0) for k in ("p50", "p95")},
        "stage_ms": snap.get("stage_ms", {}),
        "faces": hub.faces_now,
        "labels_last_minute": hub.labels_last_minute(),
        # the faces in view now, for the page's per-person timeline
        "tracks": [
            {"track": f["track"], "label": f["label"], "confidence": round(f["confidence"], 3)}
            for f in latest.get("faces", [])
        ],
        "frames_processed": snap.get("frames_processed", 0),
        "frames_skipped": snap.get("frames_skipped", 0),
        "viewers": hub.viewers,
        "paused": app[PAUSE].paused,
        "notice": app[NOTICE],
    }


async def pause_analysis(request: web.Request) -> web.Response:
    """`{"paused": true|false}`: pause or resume analysis (token-protected like
    everything else); answers the new state."""
    try:
        body = await request.json()
        paused = body["paused"]
        if not isinstance(paused, bool):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        return _error(400, 'send {"paused": true} or {"paused": false} as JSON')
    request.app[PAUSE].set(paused, f"the web API, client {request.remote}")
    return web.json_response({"paused": request.app[PAUSE].paused})


async def stats(request: web.Request) -> web.Response:
    return web.json_response(stats_payload(request.app))


async def events(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
    )
    await response.prepare(request)
    try:
        while not request.app[CLOSING].is_set():
            payload = json.dumps(stats_payload(request.app), separators=(",", ":"))
            await response.write(f"data: {payload}\n\n".encode())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(request.app[CLOSING].wait(), EVENTS_INTERVAL_S)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    return response


async def latest(request: web.Request) -> web.Response:
    event = request.app[HUB].latest_event()
    if event is None:
        return _error(404, "no frame processed yet: try again in a moment")
    return web.json_response(event)


async def _read_upload(request: web.Request) -> bytes:
    """The photo's bytes, held in memory and never more than the limit."""
    limit = request.app[MAX_UPLOAD]
    too_large = UploadError(413, f"upload too large: at most {limit / 1e6:.0f} MB")
    if request.content_length is not None and request.content_length > limit + 65536:
        raise too_large
    if request.content_type == "multipart/form-data":
        reader = await request.multipart()
        async for part in reader:
            if part.name != "image":
                continue
            data = bytearray()
            while chunk := await part.read_chunk(65536):
                data += chunk
                if len(data) > limit:
                    raise too_large
            return bytes(data)
        raise UploadError(400, "no `image` field in the form: send the photo as field `image`")
    try:
        data = await request.read()  # bounded by the app's client_max_size
    except web.HTTPRequestEntityTooLarge:
        raise too_large from None
    if len(data) > limit:
        raise too_large
    return data


async def analyze(request: web.Request) -> web.Response:
    if request.app[PAUSE].paused:
        return _error(409, "analysis is paused: resume it (the page's button) to analyse photos")
    analyzer = request.app[ANALYZER]
    try:
        data = await _read_upload(request)
        loop = asyncio.get_running_loop()
        result, ms = await loop.run_in_executor(analyzer.executor, analyzer.analyze, data)
    except UploadError as exc:
        return _error(exc.status, str(exc))
    image = result.frame.image
    mode = request.query.get("annotate", "")
    if mode in ("1", "true", "yes", "inline"):
        shown = annotate(image, result, faces=request.app[FACES], notice=request.app[NOTICE])
        _, jpeg = cv2.imencode(".jpg", shown, [cv2.IMWRITE_JPEG_QUALITY, 90])
        if mode != "inline":
            return web.Response(body=jpeg.tobytes(), content_type="image/jpeg")
    body = {
        "width": int(image.shape[1]),
        "height": int(image.shape[0]),
        "ms": round(ms, 1),
        "faces": [face.to_json() for face in result.faces],
    }
    if mode == "inline":  # the page: table and picture from one analysis
        body["annotated"] = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()
    return web.json_response(body)


def make_app(
    hub: FrameHub,
    analyzer: PhotoAnalyzer,
    info: dict,
    token: str = "",
    max_upload: int = 10_000_000,
    faces: str = "show",
    pause: PauseSwitch | None = None,
    notice: str = "",
    hosts: tuple[str, ...] | list[str] = (),
) -> web.Application:
    """The application; `info` names what is running (source, detector, model);
    `hosts`, names it answers to besides its addresses, localhost and the hostname."""
    app = web.Application(
        middlewares=[make_guard(hosts), errors_as_json, require_token],
        client_max_size=max_upload + 65536,
    )
    app[HUB], app[ANALYZER], app[INFO], app[TOKEN] = hub, analyzer, info, token
    app[MAX_UPLOAD] = max_upload
    app[FACES] = faces  # [privacy] faces: an annotated answer is an image that leaves too
    app[NOTICE] = notice  # [privacy] notice: on the page and on every picture
    app[PAUSE] = pause or PauseSwitch()
    app[FRAMES] = JpegBoard()
    app[CLOSING] = asyncio.Event()

    async def closing(app: web.Application) -> None:
        app[CLOSING].set()  # open streams end within WAIT_S

    app.on_shutdown.append(closing)
    app.router.add_get("/", index)
    app.router.add_get("/stream.mjpg", stream)
    app.router.add_get("/api/stats", stats)
    app.router.add_get("/api/events", events)
    app.router.add_get("/api/latest", latest)
    app.router.add_post("/api/analyze", analyze)
    app.router.add_post("/api/pause", pause_analysis)
    app.router.add_static("/static/", STATIC)
    return app
