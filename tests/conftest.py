"""Shared fixtures and the fakes for what this machine lacks (a Pi camera).

Everything else is real: real video files, real models, real OpenCV and
MediaPipe, the real CLI in a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
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
        import time

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
