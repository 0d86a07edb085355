"""A fake `picamera2` that behaves as the real one does where it hurts.

The project's Pi code has only ever met this fake, so the fake has to tell
the truth: each behaviour below is the real library's, with the place in
picamera2's source (github.com/raspberrypi/picamera2, 0.3.2x) that does it,
and each has a test of how the pipeline reacts (tests/test_picamera2.py).

- `Picamera2()` opens a notification pipe before it looks for the camera;
  with no camera or a busy one it raises "Camera __init__ sequence did not
  complete." (the cause is chained), and `close()` returns early for a camera
  that never opened, so the pipe's descriptors leak (picamera2.py `__init__`,
  `close`).
- Frames come from a thread the preview runs (previews/null_preview.py
  `thread_func`); if the preview raises (the DRM preview on a screen it cannot
  use: previews/drm_preview.py "Failed to reserve DRM plane") that thread
  dies. `capture_request()` then waits for a job nobody runs: forever without
  `wait`, `TimeoutError` after `wait` seconds (picamera2.py
  `dispatch_functions`, job.py `get_result`). `stop()` dispatches to the same
  dead thread and waits forever (picamera2.py `stop`); `stop_()` does not.
- YUV420 arrays have rows padded to the stride (request.py `make_array`:
  shape (h * 3 / 2, stride)), and libcamera may adjust a requested size, which
  picamera2 writes back into the configuration (picamera2.py `configure_`).
- `set_overlay` needs a preview (picamera2.py: "No preview specified."),
  a started one that has shown a frame, and an overlay plane, which some
  outputs lack (previews/drm_preview.py `set_overlay`, `render_drm`).
"""

from __future__ import annotations

import os
import sys
import threading
import time
import types
from pathlib import Path

import cv2
import numpy as np

DEMO_CLIP = Path(__file__).resolve().parent.parent / "assets" / "demo" / "faces.mp4"
STRIDE_ALIGN = 64  # bytes; the Pi ISPs' row alignment
FOREVER_S = 30.0  # "forever" in a test: long enough to fail it, short enough to end


class Preview:
    """picamera2.Preview."""

    NULL = "NULL"
    DRM = "DRM"
    QT = "QT"
    QTGL = "QTGL"


class FakePreview:
    """A preview with a frame thread that can die, as the real one's does."""

    def __init__(self, kind: str, kwargs: dict):
        self.kind, self.kwargs = kind, kwargs
        self._die = threading.Event()
        self.thread = threading.Thread(target=self._die.wait, name="fake-frame-thread", daemon=True)
        self.thread.start()
        self.shown_frame = False

    def kill(self) -> None:
        self._die.set()
        self.thread.join()

    def stop(self) -> None:
        self._die.set()


class FakeRequest:
    """picamera2's CompletedRequest: config, make_array, get_metadata, release."""

    def __init__(self, camera: FakePicamera2, arrays: dict[str, np.ndarray], metadata: dict):
        self._camera, self._arrays, self._metadata = camera, arrays, metadata
        self.config = {
            k: dict(v) if isinstance(v, dict) else v for k, v in camera.camera_config.items()
        }
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
    Class attributes set the scene: the cameras libcamera lists, an error
    for the next opens, a libcamera size adjustment, overlay planes.
    """

    instances: list[FakePicamera2] = []
    cameras: list[dict] = [{"Model": "imx708", "Num": 0}]
    fail_open: Exception | None = None
    adjust_lores: tuple[int, int] | None = None  # the size libcamera grants instead
    overlay_planes = True

    def __init__(self, camera_num: int = 0):
        self.calls: list[str] = ["__init__"]
        self.is_open = False
        self._preview: FakePreview | None = None
        self.notifyme_r, self.notifyme_w = os.pipe2(os.O_NONBLOCK)
        self.notifymeread = os.fdopen(self.notifyme_r, "rb")
        try:
            if not FakePicamera2.cameras:
                raise IndexError("list index out of range")
            if FakePicamera2.fail_open is not None:
                raise FakePicamera2.fail_open
        except Exception:
            raise RuntimeError("Camera __init__ sequence did not complete.")  # noqa: B904
        self.is_open = True
        self.camera_config: dict | None = None
        self.started = False
        self.closed = False
        self.frame = 0
        self.overlay = None
        self.preview_kwargs: dict | None = None
        self.cancelled = 0
        self.stalled = False
        self._cap = cv2.VideoCapture(str(DEMO_CLIP))
        FakePicamera2.instances.append(self)

    @property
    def config(self) -> dict | None:
        return self.camera_config

    @staticmethod
    def global_camera_info() -> list[dict]:
        return list(FakePicamera2.cameras)

    def create_preview_configuration(self, main=None, lores=None, controls=None, **kwargs):
        self.calls.append("create_preview_configuration")
        main = {"size": (640, 480), "format": "XBGR8888", **(main or {})}
        config = {"use_case": "preview", "main": main, "controls": controls or {}}
        config["buffer_count"] = 4
        if lores is not None:
            config["lores"] = {"format": "YUV420", **lores}
        return config

    def configure(self, config: dict) -> None:
        assert not self.started, "configure while started"
        self.calls.append("configure")
        if "lores" in config and FakePicamera2.adjust_lores is not None:
            config["lores"]["size"] = FakePicamera2.adjust_lores
        self.camera_config = config

    def start_preview(self, preview=None, **kwargs) -> None:
        assert not self.started, "picamera2 starts the preview before the camera"
        assert self._preview is None, "An event loop is already running"
        self.calls.append(f"start_preview:{preview}")
        self.preview_kwargs = kwargs
        self._preview = FakePreview(preview or Preview.NULL, kwargs)

    def start(self, config=None, show_preview=False) -> None:
        assert self.camera_config is not None, "start before configure"
        if self._preview is None:  # start() runs a NULL preview's loop by default
            self._preview = FakePreview(Preview.NULL, {})
        self.calls.append("start")
        self.started = True

    # -- what goes wrong -----------------------------------------------------

    def kill_frame_thread(self) -> None:
        """The preview raised in its thread (a DRM commit refused, say)."""
        self._preview.kill()

    def _frames_flow(self) -> bool:
        return self.started and not self.stalled and self._preview.thread.is_alive()

    def _arrays(self) -> dict[str, np.ndarray]:
        ok, frame = self._cap.read()
        if not ok:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self._cap.read()
        main = self.camera_config["main"]
        width, height = main["size"]
        image = cv2.resize(frame, (width, height))
        if main["format"] in ("XBGR8888", "XRGB8888"):
            image = cv2.cvtColor(image, cv2.COLOR_BGR2BGRA)
        arrays = {"main": image}
        if "lores" in self.camera_config:
            lw, lh = self.camera_config["lores"]["size"]
            stride = -(-lw // STRIDE_ALIGN) * STRIDE_ALIGN
            yuv = np.full((lh * 3 // 2, stride), 255, np.uint8)  # padding is not image
            yuv[:lh, :lw] = cv2.cvtColor(cv2.resize(frame, (lw, lh)), cv2.COLOR_BGR2GRAY)
            yuv[lh:, : lw // 2 * 2] = 128
            arrays["lores"] = yuv
        return arrays

    def capture_request(self, wait=None, signal_function=None, flush=None) -> FakeRequest:
        assert self.started, "capture before start"
        self.calls.append("capture_request")
        if not self._frames_flow():
            if wait is None or wait is True:
                raise AssertionError(
                    "capture_request() without a timeout: on a real Pi this waits forever"
                )
            time.sleep(wait)
            raise TimeoutError
        self.frame += 1
        if self._preview is not None:
            self._preview.shown_frame = True
        metadata = {
            "SensorTimestamp": time.monotonic_ns() - 5_000_000,
            "ExposureTime": 10_000,
            "FrameDuration": 33333,
        }
        return FakeRequest(self, self._arrays(), metadata)

    def cancel_all_and_flush(self) -> None:
        self.calls.append("cancel_all_and_flush")
        self.cancelled += 1

    def set_overlay(self, overlay) -> None:
        if self._preview is None:
            raise RuntimeError("No preview specified.")
        if overlay is not None:
            assert overlay.dtype == np.uint8 and overlay.ndim == 3 and overlay.shape[2] == 4
        if self._preview.kind == Preview.DRM:
            if not self._preview.shown_frame:
                raise RuntimeError("Preview must be started before setting an overlay")
            if not FakePicamera2.overlay_planes and overlay is not None:
                raise RuntimeError("Failed to reserve DRM overlay plane")
        self.calls.append("set_overlay")
        self.overlay = overlay

    def stop_(self) -> None:
        if self.started:
            self.calls.append("stop")
            self.started = False

    def stop(self) -> None:
        if not self.started:
            return
        if self._preview is not None and not self._preview.thread.is_alive():
            threading.Event().wait(FOREVER_S)  # dispatched to a dead thread
            raise AssertionError("stop() with a dead frame thread: a real Pi hangs here")
        self.stop_()

    def stop_preview(self) -> None:
        if self._preview is None:
            raise RuntimeError("No preview specified.")
        self._preview.stop()
        self._preview = None

    def close(self) -> None:
        if self._preview is not None:
            self.stop_preview()
        if not self.is_open:
            return  # the real one too: the notification pipe stays open
        self.stop()
        self.calls.append("close")
        self.is_open = False
        self.closed = True
        self._cap.release()
        self.notifymeread.close()
        os.close(self.notifyme_w)


def install(monkeypatch) -> type[FakePicamera2]:
    """Put a fresh `picamera2` module with FakePicamera2 in sys.modules."""
    module = types.ModuleType("picamera2")
    module.Picamera2 = FakePicamera2
    module.Preview = Preview
    FakePicamera2.instances = []
    FakePicamera2.cameras = [{"Model": "imx708", "Num": 0}]
    FakePicamera2.fail_open = None
    FakePicamera2.adjust_lores = None
    FakePicamera2.overlay_planes = True
    monkeypatch.setitem(sys.modules, "picamera2", module)
    return FakePicamera2


def install_broken(monkeypatch, tmp_path: Path) -> None:
    """A `picamera2` whose import fails as it does beside the wrong NumPy major."""
    package = tmp_path / "broken" / "picamera2"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        'raise ValueError("numpy.dtype size changed, may indicate binary incompatibility. '
        'Expected 96 from C header, got 88 from PyObject")\n'
    )
    monkeypatch.delitem(sys.modules, "picamera2", raising=False)
    monkeypatch.syspath_prepend(str(package.parent))
