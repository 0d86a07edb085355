"""Shared fixtures and the fakes for what this machine lacks (a Pi camera).

Everything else is real: real video files, real models, real OpenCV and
MediaPipe, the real CLI in a subprocess.
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "emotion_int8.tflite"
DEMO_CLIP = ROOT / "assets" / "demo" / "faces.mp4"
DEMO_TRUTH = ROOT / "assets" / "demo" / "faces.truth.json"
SHARED = ROOT.parent / "shared"


def demo_frame(index: int = 40) -> np.ndarray:
    """A BGR frame of the demo clip (frame 40 shows two faces)."""
    cap = cv2.VideoCapture(str(DEMO_CLIP))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, frame = cap.read()
    cap.release()
    assert ok, f"cannot read frame {index} of {DEMO_CLIP}"
    return frame


def demo_truth() -> dict:
    return json.loads(DEMO_TRUTH.read_text())


def run_cli(
    *args: str, timeout: float = 120, cwd: Path | None = None, env: dict | None = None
) -> subprocess.CompletedProcess:
    """The real `emotion-edge` command in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "edge", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd or ROOT,
        env={**os.environ, **(env or {})},
    )


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    """Exit code 2, an ERROR line naming the problem, and no traceback."""
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1, proc.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]


# -- fake picamera2 -------------------------------------------------------------


class FakeRequest:
    """picamera2's CompletedRequest: make_array, get_metadata, release."""

    def __init__(self, camera: FakePicamera2, arrays: dict[str, np.ndarray], metadata: dict):
        self._camera, self._arrays, self._metadata = camera, arrays, metadata
        self.released = False

    def make_array(self, name: str = "main") -> np.ndarray:
        assert not self.released, "make_array after release"
        return self._arrays[name].copy()

    def get_metadata(self) -> dict:
        return dict(self._metadata)

    def release(self) -> None:
        assert not self.released, "request released twice"
        self.released = True
        self._camera.calls.append("release")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


class FakePicamera2:
    """Mirrors the parts of picamera2.Picamera2 the project uses.

    Frames are the demo clip's, scaled to the configured size, in the layout
    picamera2 gives for format RGB888 (B, G, R order, as OpenCV expects).
    """

    instances: list[FakePicamera2] = []
    fail_open: Exception | None = None

    def __init__(self, camera_num: int = 0):
        if FakePicamera2.fail_open is not None:
            raise FakePicamera2.fail_open
        self.calls: list[str] = ["__init__"]
        self.config: dict | None = None
        self.started = False
        self.closed = False
        self.frame = 0
        self.overlay = None
        self._cap = cv2.VideoCapture(str(DEMO_CLIP))
        FakePicamera2.instances.append(self)

    @staticmethod
    def global_camera_info() -> list[dict]:
        return [{"Model": "imx708", "Num": 0}]

    def create_preview_configuration(self, main=None, lores=None, controls=None, **kwargs):
        self.calls.append("create_preview_configuration")
        main = {"size": (640, 480), "format": "XBGR8888", **(main or {})}
        config = {"use_case": "preview", "main": main, "controls": controls or {}}
        if lores is not None:
            config["lores"] = {"format": "YUV420", **lores}
        return config

    def configure(self, config: dict) -> None:
        assert not self.started, "configure while started"
        self.calls.append("configure")
        self.config = config

    def start(self, config=None, show_preview=False) -> None:
        assert self.config is not None, "start before configure"
        self.calls.append("start")
        self.started = True

    def _arrays(self) -> dict[str, np.ndarray]:
        ok, frame = self._cap.read()
        if not ok:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self._cap.read()
        main = self.config["main"]
        width, height = main["size"]
        image = cv2.resize(frame, (width, height))
        if main["format"] in ("XBGR8888", "XRGB8888"):
            image = cv2.cvtColor(image, cv2.COLOR_BGR2BGRA)
        arrays = {"main": image}
        if "lores" in self.config:
            lw, lh = self.config["lores"]["size"]
            gray = cv2.cvtColor(cv2.resize(frame, (lw, lh)), cv2.COLOR_BGR2GRAY)
            arrays["lores"] = np.vstack([gray, np.full((lh // 2, lw), 128, np.uint8)])
        return arrays

    def start_preview(self, preview=None, **kwargs) -> None:
        assert not self.started, "picamera2 starts the preview before the camera"
        self.calls.append(f"start_preview:{preview}")

    def set_overlay(self, overlay) -> None:
        if overlay is not None:
            assert overlay.dtype == np.uint8 and overlay.ndim == 3 and overlay.shape[2] == 4
        self.calls.append("set_overlay")
        self.overlay = overlay

    def capture_array(self, name: str = "main") -> np.ndarray:
        assert self.started, "capture before start"
        self.calls.append(f"capture_array:{name}")
        return self._arrays()[name]

    def capture_request(self) -> FakeRequest:
        assert self.started, "capture before start"
        self.calls.append("capture_request")
        self.frame += 1
        metadata = {"SensorTimestamp": time.monotonic_ns() - 5_000_000, "FrameDuration": 33333}
        return FakeRequest(self, self._arrays(), metadata)

    def captured_request(self):
        return self.capture_request()

    def stop(self) -> None:
        self.calls.append("stop")
        self.started = False

    def close(self) -> None:
        self.calls.append("close")
        self.closed = True
        self._cap.release()


@pytest.fixture
def fake_picamera2(monkeypatch):
    """A `picamera2` module with FakePicamera2 in sys.modules."""
    module = types.ModuleType("picamera2")
    module.Picamera2 = FakePicamera2
    module.Preview = types.SimpleNamespace(DRM="DRM", QTGL="QTGL", NULL="NULL")
    FakePicamera2.instances = []
    FakePicamera2.fail_open = None
    monkeypatch.setitem(sys.modules, "picamera2", module)
    return FakePicamera2


# -- a real network camera: MJPEG over HTTP on loopback ---------------------------


class MjpegCamera:
    """An IP camera as most are: `GET /stream.mjpg` answers multipart JPEG frames
    of the demo clip, looping, at `fps`. `start()` and `kill()` (which also drops
    every open connection, as a camera losing power does) can be repeated, always
    on the same port."""

    def __init__(self, fps: float = 30.0) -> None:
        cap = cv2.VideoCapture(str(DEMO_CLIP))
        self.frames = []
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            self.frames.append(cv2.imencode(".jpg", frame)[1].tobytes())
        cap.release()
        self.fps = fps
        with socket.socket() as probe:  # a free port, kept across restarts
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/stream.mjpg"
        self.served = 0
        self._server = None
        self._alive = None

    def start(self) -> None:
        camera, alive = self, threading.Event()
        alive.set()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                i = 0
                try:
                    while alive.is_set():
                        data = camera.frames[i % len(camera.frames)]
                        self.wfile.write(
                            b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                            + str(len(data)).encode()
                            + b"\r\n\r\n"
                            + data
                            + b"\r\n"
                        )
                        camera.served += 1
                        i += 1
                        time.sleep(1 / camera.fps)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._alive = alive
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def kill(self) -> None:
        if self._server is not None:
            self._alive.clear()  # open streams end: the client sees the connection close
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture
def mjpeg_camera():
    camera = MjpegCamera()
    yield camera
    camera.kill()


# -- systemd's notification socket ------------------------------------------------


@pytest.fixture
def systemd_socket(tmp_path):
    """A bound datagram socket, like systemd's $NOTIFY_SOCKET; yields (path, messages)."""
    path = str(tmp_path / "notify.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.settimeout(0.1)
    messages: list[tuple[float, str]] = []
    done = threading.Event()

    def receive():
        while not done.is_set():
            try:
                messages.append((time.monotonic(), server.recv(4096).decode()))
            except TimeoutError:
                continue

    thread = threading.Thread(target=receive, daemon=True)
    thread.start()
    yield path, messages
    done.set()
    thread.join()
    server.close()
