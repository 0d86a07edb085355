"""The web page's server, over real HTTP on loopback, beside a real pipeline."""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid

import cv2
import numpy as np
import pytest
from conftest import (
    DEMO_CLIP,
    MODEL,
    assert_one_line_error,
    demo_frame,
    jpeg_claiming,
    png_claiming,
    run_cli,
    sof,
)

from edge.config import ConfigError, RunConfig, load_config
from edge.engine import Pipeline
from edge.sinks import SinkError
from edge.web.hub import FrameHub
from edge.web.server import WebServer
from edge.web.uploads import UploadError, decode_upload, image_size

LABELS = set(json.loads(MODEL.with_suffix(".json").read_text())["labels"])


def web_config(**web) -> RunConfig:
    return RunConfig.model_validate(
        {
            # looping: the module's tests share one server for as long as they take
            "source": {"name": str(DEMO_CLIP), "realtime": True, "loop": True},
            "output": {"display": "none"},
            "web": {"listen": "127.0.0.1:0", **web},
        }
    )


class LivePipeline:
    """A real pipeline on the demo clip, played in real time, on a thread."""

    def __init__(self, config: RunConfig) -> None:
        self.pipeline = Pipeline(config)
        self.thread = threading.Thread(target=self.pipeline.run, daemon=True)

    def __enter__(self) -> LivePipeline:
        self.thread.start()
        try:
            self._wait_for_frames()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait_for_frames(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            web = self.pipeline.find_sink("web")
            if web is not None:
                self.url = web.url
                if self.stats()["frames_processed"] > 0:
                    return
            time.sleep(0.1)
        raise AssertionError("the pipeline's web server did not come up in 30 s")

    def __exit__(self, *exc) -> None:
        self.pipeline.stop()
        self.thread.join(10)
        assert not self.thread.is_alive()

    @property
    def hub(self) -> FrameHub:
        return self.pipeline.find_sink("web").hub

    def get(self, path: str, headers: dict | None = None):
        token = self.pipeline.config.web.token
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        request = urllib.request.Request(
            self.url + path.lstrip("/"), headers={**auth, **(headers or {})}
        )
        return urllib.request.urlopen(request, timeout=10)

    def stats(self) -> dict:
        with self.get("api/stats") as response:
            return json.load(response)


@pytest.fixture(scope="module")
def live():
    with LivePipeline(web_config(max_upload_mb=1.0)) as running:
        yield running


def post(url: str, body: bytes, content_type: str, headers: dict | None = None):
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": content_type, **(headers or {})}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers.get_content_type(), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get_content_type(), error.read()


def multipart(field: str, filename: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def read_parts(response, count: int) -> list[tuple[dict, bytes]]:
    """The first `count` parts of a multipart/x-mixed-replace stream."""
    parts = []
    while len(parts) < count:
        line = response.readline()
        if not line.strip():
            continue
        assert line.strip() == b"--frame", line
        headers = {}
        while (line := response.readline().strip()) != b"":
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        parts.append((headers, response.read(int(headers["content-length"]))))
    return parts


def face_photo() -> bytes:
    return cv2.imencode(".jpg", demo_frame(40))[1].tobytes()


# -- the live page --------------------------------------------------------------


def test_page_names_what_is_running(live):
    with live.get("/") as response:
        page = response.read().decode()
    assert '<img id="stream"' in page and 'id="upload"' in page
    stats = live.stats()
    assert stats["source"] == "video faces.mp4"  # its kind and name, not this machine's folders
    assert stats["detector"] == "BlazeFace short range + far faces (full range, 3x3 tiles)"
    assert stats["model"] == MODEL.name


def test_what_the_page_says_is_running_hides_folders_and_credentials():
    from edge.config import RunConfig
    from edge.sinks.web import detector_description, public_source

    assert public_source("/home/pi/clips/lobby.mp4") == "video lobby.mp4"
    assert public_source("/srv/photos/staff") == "photos staff"
    assert public_source("rtsp://admin:secret@10.0.0.5:554/live") == "stream rtsp://10.0.0.5:554"
    assert public_source("picamera2") == "picamera2"
    tiles_off = RunConfig.model_validate({"detector": {"tiles": 1, "range": "full"}})
    assert detector_description(tiles_off) == "BlazeFace full range"
    haar = RunConfig.model_validate({"detector": {"name": "haar"}})
    assert detector_description(haar) == "haar"


def test_stream_yields_changing_jpeg_frames_and_counts_the_viewer(live):
    assert live.stats()["viewers"] == 0
    with live.get("stream.mjpg") as response:
        assert response.headers["Content-Type"] == "multipart/x-mixed-replace; boundary=frame"
        parts = read_parts(response, 3)
        assert live.stats()["viewers"] == 1
    images = []
    for headers, data in parts:
        assert headers["content-type"] == "image/jpeg"
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and image.shape == (480, 640, 3)
        images.append(image)
    assert any(np.abs(a.astype(int) - b).mean() > 0.5 for a, b in itertools.pairwise(images))
    deadline = time.monotonic() + 5
    while live.stats()["viewers"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert live.stats()["viewers"] == 0


def test_frames_are_encoded_only_while_someone_watches(live):
    before = live.hub.encoded
    processed = live.stats()["frames_processed"]
    time.sleep(0.6)
    assert live.stats()["frames_processed"] > processed  # frames flow...
    assert live.hub.encoded == before  # ...and none is encoded for nobody
    with live.get("stream.mjpg") as response:
        read_parts(response, 2)
    assert live.hub.encoded >= before + 2


def test_the_stream_encodes_at_most_stream_fps_and_sends_the_newest_frame():
    from edge.frames import Frame, Result

    hub = FrameHub(stream_fps=5)
    sent: list[bytes] = []
    hub.on_jpeg = lambda seq, data: sent.append(data)
    hub.add_viewer()
    hub.start()
    started = time.monotonic()
    index = 0
    try:
        while time.monotonic() - started < 1.5:  # published far faster than 5 a second
            image = np.full((48, 64, 3), index % 250, np.uint8)
            hub.publish(Result(Frame(image, index, 0.0), []))
            index += 1
            time.sleep(0.002)
        newest = (index - 1) % 250

        def shown() -> int:
            last = cv2.imdecode(np.frombuffer(sent[-1], np.uint8), cv2.IMREAD_GRAYSCALE)
            return int(np.median(last))

        deadline = time.monotonic() + 10  # the last one published is the next sent
        while not (sent and abs(shown() - newest) <= 2) and time.monotonic() < deadline:
            time.sleep(0.05)
        elapsed = time.monotonic() - started
    finally:
        hub.close()
    assert index > 50 and abs(shown() - newest) <= 2  # the newest, not a stale one
    assert 1 <= hub.encoded <= 5 * elapsed + 2, (hub.encoded, elapsed)  # however fast this is


def test_a_stalled_viewer_misses_frames_and_holds_up_nobody_else():
    with LivePipeline(web_config()) as live:
        host, port = live.url.removeprefix("http://").strip("/").split(":")
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect((host, int(port)))
        stalled.sendall(f"GET /stream.mjpg HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        with stalled:
            encoded, processed = live.hub.encoded, live.stats()["frames_processed"]
            # It reads nothing: its buffers fill, and the server waits on it alone. The
            # pipeline goes on: 30 more frames (2 s of the clip), however slow this machine.
            deadline = time.monotonic() + 60
            while live.stats()["frames_processed"] - processed < 30:
                assert time.monotonic() < deadline, "the pipeline stopped behind a stalled viewer"
                time.sleep(0.1)
            with live.get("stream.mjpg") as response:
                assert len(read_parts(response, 5)) == 5  # another viewer is served
            encoded = live.hub.encoded - encoded
            stalled.setblocking(False)
            received = b""
            with contextlib.suppress(BlockingIOError):
                while chunk := stalled.recv(1 << 16):
                    received += chunk
        # what it got is what fitted in the buffers; the frames in between were dropped
        assert received.count(b"--frame") <= encoded - 10, (received.count(b"--frame"), encoded)


def test_stats_schema(live):
    stats = live.stats()
    assert stats["fps"] > 0 and stats["frames_processed"] > 0
    assert set(stats["latency_ms"]) == {"p50", "p95"}
    assert 0 < stats["latency_ms"]["p50"] <= stats["latency_ms"]["p95"]
    assert {"detect", "classify"} <= set(stats["stage_ms"])
    assert isinstance(stats["faces"], int)
    assert set(stats["labels_last_minute"]) <= LABELS
    assert all(isinstance(n, int) and n > 0 for n in stats["labels_last_minute"].values())


def test_events_push_stats_once_a_second(live):
    with live.get("api/events") as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        payloads = []
        while len(payloads) < 2:
            line = response.readline().decode().strip()
            if line.startswith("data: "):
                payloads.append(json.loads(line.removeprefix("data: ")))
    assert payloads[1]["frames_processed"] > payloads[0]["frames_processed"]


def test_latest_is_an_event_in_the_events_file_schema(live):
    with live.get("api/latest") as response:
        event = json.load(response)
    assert event["type"] == "frame" and isinstance(event["frame"], int)
    assert event["latency_ms"] > 0
    for face in event["faces"]:
        assert set(face) == {"box", "score", "label", "confidence", "probs", "track"}
        assert face["label"] in LABELS and set(face["probs"]) == LABELS


# -- photo upload ---------------------------------------------------------------


def test_analyze_finds_the_faces_of_a_photo(live):
    body, content_type = multipart("image", "faces.jpg", face_photo())
    status, kind, data = post(live.url + "api/analyze", body, content_type)
    assert status == 200 and kind == "application/json"
    result = json.loads(data)
    assert (result["width"], result["height"]) == (640, 480)
    assert len(result["faces"]) == 2  # frame 40 of the demo clip shows two faces
    for face in result["faces"]:
        assert face["label"] in LABELS and 0 < face["confidence"] <= 1


def test_analyze_inline_gives_faces_and_picture_in_one_answer(live):
    body, content_type = multipart("image", "faces.jpg", face_photo())
    status, _, data = post(live.url + "api/analyze?annotate=inline", body, content_type)
    result = json.loads(data)
    assert status == 200 and len(result["faces"]) == 2
    prefix = "data:image/jpeg;base64,"
    assert result["annotated"].startswith(prefix)
    jpeg = base64.b64decode(result["annotated"].removeprefix(prefix))
    assert cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).shape == (480, 640, 3)


def test_analyze_raw_body_and_annotated_jpeg(live):
    status, kind, data = post(live.url + "api/analyze?annotate=1", face_photo(), "image/jpeg")
    assert status == 200 and kind == "image/jpeg"
    annotated = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    original = demo_frame(40)
    assert annotated.shape == original.shape
    assert np.abs(annotated.astype(int) - original).mean() > 0.5  # boxes were drawn


@pytest.mark.parametrize(
    ("payload", "status", "needle"),
    [
        (b"", 400, "empty upload"),
        (b"hello, not a picture", 415, "not a JPEG, PNG, BMP or WebP image"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 64, 415, "damaged"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 8 + (b"\x00\x01\x00\x00" * 2), 415, "damaged"),
        (b"\xff\xd8\xff" + b"\x00" * 1_100_000, 413, "at most 1 MB"),
    ],
    ids=["empty", "text", "truncated-jpeg", "png-without-its-chunk", "oversized"],
)
def test_bad_uploads_get_a_4xx_with_a_clear_message(live, payload, status, needle):
    for body, content_type in (multipart("image", "x.jpg", payload), (payload, "image/jpeg")):
        got, kind, data = post(live.url + "api/analyze", body, content_type)
        assert (got, kind) == (status, "application/json"), data
        assert needle in json.loads(data)["error"]


def test_form_without_an_image_field(live):
    body, content_type = multipart("photo", "x.jpg", face_photo())
    status, _, data = post(live.url + "api/analyze", body, content_type)
    assert status == 400 and "`image`" in json.loads(data)["error"]


def test_image_size_is_read_from_every_accepted_header():
    image = np.zeros((123, 321, 3), np.uint8)
    lossless_webp = [cv2.IMWRITE_WEBP_QUALITY, 101]  # the VP8L header
    for ext, params in (
        (".jpg", []),
        (".png", []),
        (".bmp", []),
        (".webp", []),
        (".webp", lossless_webp),
    ):
        data = cv2.imencode(ext, image, params)[1].tobytes()
        kind = {".jpg": "jpeg"}.get(ext, ext[1:])
        assert image_size(data, kind) == (321, 123), ext
        assert decode_upload(data).shape == (123, 321, 3)


def test_large_photos_are_scaled_down_before_analysis():
    data = cv2.imencode(".jpg", np.zeros((3000, 4000, 3), np.uint8))[1].tobytes()
    assert decode_upload(data).shape == (1440, 1920, 3)
    with pytest.raises(UploadError, match="too large") as raised:
        decode_upload(png_bomb())
    assert raised.value.status == 413


def png_bomb(side: int = 20000) -> bytes:
    """A tiny PNG whose header (checksum intact) claims side x side pixels."""
    return png_claiming(
        cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes(), side, side
    )


def jpeg_bomb(side: int = 12000) -> bytes:
    """A small JPEG that libjpeg decodes side x side (its frame header says
    so; the missing data is filled in), behind one fill byte (0xFF) that a
    hand-written marker walker misreads as a segment, landing on a fake
    16x16 frame header placed where that misreading points."""
    small = cv2.imencode(".jpg", np.full((64, 64, 3), 128, np.uint8))[1].tobytes()
    data = bytearray(jpeg_claiming(small, side))
    at = data.index(b"\xff\xc0")
    data[at:at] = b"\xff"  # a fill byte before the marker, as JPEG allows
    jump = at + 2 + int.from_bytes(data[at + 2 : at + 4], "big")  # where a walker lands
    data += bytes(max(0, jump - len(data))) + sof(16, 16)  # after the end: libjpeg never reads it
    return bytes(data)


def test_a_fill_byte_cannot_hide_a_jpeg_bomb():
    bomb = jpeg_bomb()
    assert len(bomb) < 60_000  # small enough to pass any upload limit
    assert image_size(bomb, "jpeg") == (12000, 12000)
    with pytest.raises(UploadError, match="too large") as raised:
        decode_upload(bomb)
    assert raised.value.status == 413


# -- access ---------------------------------------------------------------------


TOKEN = "s3cret-token-of-24-chars"


@pytest.fixture
def token_server():
    config = web_config(token=TOKEN)
    server = WebServer(config, FrameHub(), {"source": "test"}).open()
    yield server
    server.close()


@pytest.fixture
def server():
    """The server alone, no token (the default loopback set-up)."""
    server = WebServer(web_config(), FrameHub(), {"source": "test"}).open()
    yield server
    server.close()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # the 3xx itself is the answer under test


def fetch(url: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {})) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_token_is_required_on_every_request(token_server):
    url = token_server.url
    for path in ("", "api/stats", "api/latest", "stream.mjpg", "static/app.js"):
        status, _, body = fetch(url + path)
        assert status == 401, path
        assert "token" in json.loads(body)["error"]
        assert fetch(url + path + "?token=wrong")[0] == 401
    assert fetch(url + f"api/stats?token={TOKEN}")[0] == 200
    assert fetch(url + "api/stats", {"Authorization": f"Bearer {TOKEN}"})[0] == 200
    # the page's address with the token: into a cookie, and out of the address bar
    status, headers, _ = fetch(url + f"?token={TOKEN}")
    assert status == 303 and headers["Location"] == "/"
    assert "HttpOnly" in headers["Set-Cookie"] and "SameSite=Strict" in headers["Set-Cookie"]
    cookie = headers["Set-Cookie"].split(";")[0]
    assert fetch(url, {"Cookie": cookie})[0] == 200
    assert fetch(url + "static/app.js", {"Cookie": cookie})[0] == 200
    body, content_type = multipart("image", "x.jpg", face_photo())
    assert post(url + "api/analyze", body, content_type)[0] == 401


def test_a_browser_without_the_token_gets_a_page_saying_how(token_server):
    status, headers, body = fetch(token_server.url, {"Accept": "text/html,*/*"})
    assert status == 401 and headers["Content-Type"].startswith("text/html")
    assert b"/?token=TOKEN" in body and b"{" not in body


@pytest.mark.parametrize("token", [" ", "        \t       ", "short", "with a space in the middle"])
def test_a_blank_short_or_spaced_token_is_refused_in_one_line(token):
    with pytest.raises(ConfigError, match="at least 16 characters with no spaces.*secrets"):
        load_config(None, {"web.listen": "0.0.0.0:8080", "web.token": token})
    proc = run_cli("run", "--source", "demo", "--display", "none", "--web", "8080",
                   "--web-token", token)  # fmt: skip
    assert_one_line_error(proc, "at least 16 characters", "token_urlsafe")


# -- a browser on another site ----------------------------------------------------------


def raw_request(port: int, request: bytes) -> tuple[int, dict, bytes]:
    """One HTTP request written by hand (a Host no client library would send)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), headers, body


def test_a_rebinding_host_is_refused_and_the_servers_names_answer(server):
    port = server.port
    get = "GET /api/stats HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n"
    status, headers, body = raw_request(port, get.format("attacker.example:8080").encode())
    assert status == 421 and "[web] hosts" in json.loads(body)["error"]
    assert headers["X-Frame-Options"] == "DENY"
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}",
                 f"{socket.gethostname()}.local:{port}"):  # fmt: skip
        assert raw_request(port, get.format(host).encode())[0] == 200, host
    assert raw_request(port, get.format("").encode())[0] in (400, 421)


def test_names_in_web_hosts_are_answered():
    config = web_config(hosts=["pi.lan"])
    server = WebServer(config, FrameHub(), {"source": "test"}).open()
    try:
        get = b"GET /api/stats HTTP/1.1\r\nHost: PI.lan:80\r\nConnection: close\r\n\r\n"
        assert raw_request(server.port, get)[0] == 200
    finally:
        server.close()


def test_another_site_cannot_pause_or_analyse(server):
    url = server.url
    body = json.dumps({"paused": True, "x": "="}).encode()
    # a cross-site form can send text/plain; a fetch from another page names its origin
    assert post(url + "api/pause", body, "text/plain")[0] == 415
    for headers in ({"Origin": "http://evil.example"}, {"Origin": "null"},
                    {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"}):  # fmt: skip
        status, _, answer = post(url + "api/pause", body, "application/json", headers)
        assert status == 403 and "other sites" in json.loads(answer)["error"], headers
        photo, content_type = multipart("image", "x.jpg", face_photo())
        assert post(url + "api/analyze", photo, content_type, headers)[0] == 403
    assert (
        fetch(url + "api/stats")[0] == 200 and not json.loads(fetch(url + "api/stats")[2])["paused"]
    )
    # the page itself, and tools that are not browsers, still can
    same = {"Origin": url.rstrip("/"), "Sec-Fetch-Site": "same-origin"}
    assert post(url + "api/pause", json.dumps({"paused": True}).encode(), "application/json",
                same)[0] == 200  # fmt: skip
    assert post(url + "api/pause", json.dumps({"paused": False}).encode(),
                "application/json")[0] == 200  # fmt: skip


def test_every_answer_carries_the_security_headers(server):
    for path in ("", "static/app.js", "api/stats", "api/latest", "no/such/page"):
        _, headers, _ = fetch(server.url + path)
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"], path
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "no-referrer"


def test_the_streams_labels_are_readable_on_a_phone():
    """A 640x480 stream shown 390 px wide: the letters at least 11 px tall there."""
    from edge.overlay import label_height
    from edge.web.hub import STREAM_TEXT_SCALE

    assert label_height((480, 640), STREAM_TEXT_SCALE) * 390 / 640 >= 11
    assert label_height((480, 640)) * 390 / 640 < 11  # the recording's size would not be


def test_a_network_address_needs_a_token():
    with pytest.raises(ConfigError, match="reachable from the network.*--web-token"):
        load_config(None, {"web.listen": "0.0.0.0:8080"})
    good = {"web.listen": "0.0.0.0:8080", "web.token": TOKEN}
    assert load_config(None, good).web.token == TOKEN
    for listen in ("8080", ":8080", "localhost:8080", "[::1]:8080", "127.0.0.2:8080"):
        assert load_config(None, {"web.listen": listen}).web.listen == listen
    with pytest.raises(ConfigError, match="expected HOST:PORT or PORT"):
        load_config(None, {"web.listen": "http://pi:80a"})


def test_cli_refuses_a_network_address_without_a_token():
    proc = run_cli("run", "--source", "demo", "--display", "none", "--web", "0.0.0.0:8080")
    assert_one_line_error(proc, "reachable from the network", "--web-token")


def test_cli_takes_the_token_from_the_option_or_the_environment(monkeypatch):
    from edge.cli import WEB_TOKEN_ENV, _overrides, build_parser

    args = build_parser().parse_args(["run", "--web", "0.0.0.0:8080"])
    monkeypatch.delenv(WEB_TOKEN_ENV, raising=False)
    assert "web.token" not in _overrides(args)
    monkeypatch.setenv(WEB_TOKEN_ENV, "from-env-" + TOKEN)
    assert _overrides(args) == {"web.listen": "0.0.0.0:8080", "web.token": "from-env-" + TOKEN}
    args = build_parser().parse_args(["run", "--web", "0.0.0.0:8080", "--web-token", TOKEN])
    assert _overrides(args)["web.token"] == TOKEN


def test_port_in_use_is_a_clear_start_up_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = web_config()
        config.web.listen = f"127.0.0.1:{port}"
        server = WebServer(config, FrameHub(), {})
        with pytest.raises(SinkError, match=f"127.0.0.1:{port}.*choose another port"):
            server.open()
