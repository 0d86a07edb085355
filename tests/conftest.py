"""Shared fixtures and the fakes for what this machine lacks (a Pi camera).

Everything else is real: real video files, real models, real OpenCV and
MediaPipe, the real CLI in a subprocess.
"""

from __future__ import annotations

import http.server
import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import cv2
import fake_picamera2 as fake_picamera2_module
import numpy as np
import pytest

from benchmarks.mosquitto import Mosquitto, free_tcp_port

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "emotion_int8.tflite"
DEMO_CLIP = ROOT / "assets" / "demo" / "faces.mp4"
DEMO_TRUTH = ROOT / "assets" / "demo" / "faces.truth.json"
# ../shared beside the checkout (EMOTION_EDGE_SHARED elsewhere, and for the test of its absence)
SHARED = Path(os.environ.get("EMOTION_EDGE_SHARED", ROOT.parent / "shared"))

# The training host's tests that import Keras at module level (host_training's
# config and distillation): not collected where the [train] extra is absent,
# as in the Pi's own sets (scripts/trixie-test.sh runs the suite on Trixie's).
collect_ignore = [] if importlib.util.find_spec("keras") else ["test_ferplus.py"]

# The tests that run the shipped model on real faces need ../shared's FER-2013
# files. A missing one is not a skip (CI would pass having checked nothing):
# the run stops at once, in one line, before any test runs.
SHARED_FILES = {
    "test_evaluate.py": ["datasets/fer2013/fer2013-train-publictest.tar.gz",
                         "datasets/fer2013/ferplus-votes.csv"],
    "test_ferplus.py": ["datasets/fer2013/ferplus-votes.csv"],
}  # fmt: skip


def missing_shared(modules: set[str]) -> list[str]:
    """The ../shared files the collected modules need and this machine lacks."""
    wanted = {name for module in modules for name in SHARED_FILES.get(module, [])}
    return sorted(name for name in wanted if not (SHARED / name).is_file())


def pytest_collection_modifyitems(session, config, items):
    missing = missing_shared({Path(item.fspath).name for item in items})
    if missing:
        pytest.exit(
            f"{SHARED / missing[0]} is missing ({len(missing)} ../shared file(s) the dataset "
            "tests need): put the shared folder beside the checkout, or deselect those tests "
            "with --deselect",
            returncode=4,
        )


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


# -- fake picamera2 (tests/fake_picamera2.py) --------------------------------


@pytest.fixture
def fake_picamera2(monkeypatch):
    """A `picamera2` module with FakePicamera2 in sys.modules."""
    cameras = fake_picamera2_module.install(monkeypatch)
    yield cameras
    cameras.power_off()


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


@pytest.fixture
def fake_screen(tmp_path, monkeypatch):
    """The kernel's and systemd's view of the screens, in a folder standing in
    for `/`: call it with what is plugged in and how the machine boots.

    `fake_screen(connected=True, compositor=None, desktop=None, session=None,
    layout="pi4")` lays out /sys/class/drm (a Pi 4: card0 render-only, card1
    with HDMI-A-1; "pi5-dsi": a Pi 5 whose only screen is DSI-1 on card2),
    the framebuffer of the screen's card (/sys/class/graphics/fb0, /dev/fb0),
    /proc (one process, and `compositor` when given, as a shell sees it; under
    the unit's ProtectProc=invisible no other user's process shows), the boot
    target with `desktop` as the enabled display manager, and an active logind
    `session` of that type. The kms++ stand-in (tests/fake_kms.py) gets the
    same cards. Returns the root.
    """
    import fake_kms

    import edge.screen

    def make(
        connected: bool = True,
        compositor: str | None = None,
        mode: str = "1920x1080",
        desktop: str | None = None,
        session: str | None = None,
        layout: str = "pi4",
        framebuffer: bool = True,
        console_mode: str | None = None,
    ) -> Path:
        root = tmp_path / "root"
        sys_drm = root / "sys/class/drm"
        sys_drm.mkdir(parents=True, exist_ok=True)
        cards = {"card0": {}, "card1": {"HDMI-A-1": connected, "HDMI-A-2": False}}
        if layout == "pi5-dsi":
            cards = {"card0": {}, "card1": {"HDMI-A-1": False, "HDMI-A-2": False}}
            cards["card2"] = {"DSI-1": connected}
        screen_card = None
        for card, connectors in cards.items():
            device = root / "sys/devices/platform" / f"gpu-{card}"
            device.mkdir(parents=True, exist_ok=True)
            (sys_drm / card).mkdir(exist_ok=True)
            link = sys_drm / card / "device"
            if not link.is_symlink():
                link.symlink_to(device)
            for name, plugged in connectors.items():
                folder = sys_drm / f"{card}-{name}"
                folder.mkdir(exist_ok=True)
                (folder / "status").write_text("connected\n" if plugged else "disconnected\n")
                (folder / "modes").write_text(f"{mode}\n1280x720\n" if plugged else "")
                if plugged:
                    screen_card = card
        fake_kms.SCREENS.cards = {
            f"/dev/dri/{card}": dict(connectors) for card, connectors in cards.items()
        }
        if framebuffer and screen_card:
            # The mode the console runs (video= on the kernel command line may
            # choose another than the preferred one, listed first).
            width, height = (int(v) for v in (console_mode or mode).split("x"))
            fb = root / "sys/class/graphics/fb0"
            fb.mkdir(parents=True, exist_ok=True)
            if not (fb / "device").is_symlink():
                (fb / "device").symlink_to(root / "sys/devices/platform" / f"gpu-{screen_card}")
            (fb / "virtual_size").write_text(f"{width},{height}\n")
            (fb / "bits_per_pixel").write_text("32\n")
            (fb / "stride").write_text(f"{width * 4}\n")
            (root / "dev").mkdir(exist_ok=True)
            (root / "dev/fb0").write_bytes(bytes(width * 4 * height))
        (root / "proc/1").mkdir(parents=True, exist_ok=True)
        (root / "proc/1/comm").write_text("systemd\n")
        if compositor:
            (root / "proc/812").mkdir(exist_ok=True)
            (root / "proc/812/comm").write_text(f"{compositor}\n")
        lib = root / "lib/systemd/system"
        lib.mkdir(parents=True, exist_ok=True)
        etc = root / "etc/systemd/system"
        etc.mkdir(parents=True, exist_ok=True)
        if not (lib / "default.target").is_symlink():  # Debian's own default
            (lib / "default.target").symlink_to("graphical.target")
        target = etc / "default.target"
        if target.is_symlink():
            target.unlink()
        # Pi OS Lite (and raspi-config's "console") boots to multi-user.target.
        target.symlink_to(f"/lib/systemd/system/{'graphical' if desktop else 'multi-user'}.target")
        if desktop:
            manager = etc / "display-manager.service"
            if not manager.is_symlink():
                manager.symlink_to(f"/lib/systemd/system/{desktop}.service")
        if session:
            sessions = root / "run/systemd/sessions"
            sessions.mkdir(parents=True, exist_ok=True)
            (sessions / "2").write_text(f"UID=1000\nUSER=pi\nACTIVE=1\nTYPE={session}\n")
        monkeypatch.setattr(edge.screen, "ROOT", root)
        monkeypatch.delenv("DISPLAY", raising=False)
        monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
        return root

    return make


# -- a real MQTT broker (Debian's mosquitto: benchmarks/mosquitto.py) -----------


@pytest.fixture
def mosquitto(tmp_path):
    """A started broker; `mosquitto.stop()` / `.start()` restart it mid-test."""
    import shutil

    if shutil.which("mosquitto") is None:
        pytest.skip("mosquitto not installed (apt install mosquitto mosquitto-clients)")
    broker = Mosquitto(tmp_path / "broker", free_tcp_port())
    broker.start()
    yield broker
    broker.stop()


# -- crafted image headers (the upload tests') ------------------------------------


def png_claiming(data: bytes, width: int, height: int) -> bytes:
    """A PNG whose header (its checksum intact) claims width x height pixels."""
    ihdr = data[12:16] + width.to_bytes(4, "big") + height.to_bytes(4, "big") + data[24:29]
    return data[:12] + ihdr + zlib.crc32(ihdr).to_bytes(4, "big") + data[33:]


def jpeg_claiming(data: bytes, side: int) -> bytes:
    """A JPEG whose frame header (SOF0) claims side x side pixels: libjpeg
    decodes that size, filling in the data that is not there."""
    patched = bytearray(data)
    at = patched.index(b"\xff\xc0")
    patched[at + 5 : at + 9] = side.to_bytes(2, "big") * 2  # height, width
    return bytes(patched)


def sof(width: int, height: int) -> bytes:
    """A baseline JPEG frame header (SOF0) for a 3-component width x height picture."""
    return (
        b"\xff\xc0\x00\x11\x08"
        + height.to_bytes(2, "big")
        + width.to_bytes(2, "big")
        + b"\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    )
