"""picamera2 as it really behaves, for a machine without a Pi camera.

The project's Pi code has only ever met this stand-in, so it has to tell the
truth. Where it can, it *is* picamera2: the previews that deliver frames and
draw on the screen (previews/null_preview.py, previews/drm_preview.py) and
the job queue (job.py) are the real package's code, picamera2 0.3.38 from
PyPI, unpacked beside the venv by `make test` (not importable as `picamera2`
there), run over stubbed kms++ (tests/fake_kms.py) and libcamera. So the
frame thread, its death when a preview raises, the overlay plane reserved on
the first rendered frame ("Overlays not supported on this device" before
it: picamera2 issue #1252) and the DRM device choice are picamera2's own.

`FakePicamera2` stands in for `Picamera2` itself (which needs libcamera),
each method copied from picamera2.py in behaviour and message:

- `__init__` opens the notification pipe before it looks for the camera;
  with no camera or a busy one it raises "Camera __init__ sequence did not
  complete." (cause chained), and `close()` returns early for a camera that
  never opened, so the pipe leaks (`__init__`, `close`).
- A "sensor" thread completes a request every `frame_interval_s` while a
  buffer is free: `buffer_count` buffers in all, each held until every user
  released its request (request.py `CompletedRequest.acquire/release`, the
  negative ref-count error). A request the application never releases keeps
  its buffer, and frames stop once all are held, as with libcamera.
- `process_requests` runs in the preview's thread on each completion, runs
  queued jobs, then renders the newest request (`process_requests`).
  `capture_request(wait=...)` queues a job (`dispatch_functions`): without a
  number it waits forever (here: an AssertionError after FOREVER_S), with
  one it raises TimeoutError. `cancel_all_and_flush()` cancels queued jobs.
- `stop()` hands itself to the frame thread and waits (`stop`, a dead
  thread: forever); `stop_()` does not. `stop_preview()` joins the preview's
  thread (null_preview.py `stop`).
- YUV420 arrays have rows padded to the stride (request.py `make_array`),
  and libcamera may adjust a requested size, which picamera2 writes back into
  the configuration (`configure_`).
- libcamera adjusts a format it cannot give, and picamera2 writes the
  granted one back (`_update_stream_config`): `grant_formats` plays a camera
  without an ISP (libcamera's Virtual camera grants NV12 only: virtual.cpp
  `validate`). Arrays have picamera2's shapes for each format (request.py
  `_make_array_shared`): NV12 as (h * 3 / 2, w), XBGR8888 as R, G, B, X.
- `camera_controls` lists AfMode and LensPosition only for cameras with a
  focus motor (imx708, Camera Module 3); picamera2 never sets AfMode itself.
"""

from __future__ import annotations

import contextlib
import enum
import importlib
import os
import sys
import threading
import time
import types
from pathlib import Path

import cv2
import fake_kms
import numpy as np

DEMO_CLIP = Path(__file__).resolve().parent.parent / "assets" / "demo" / "faces.mp4"
REAL_PICAMERA2 = Path(sys.prefix) / "picamera2-real" / "picamera2"
STRIDE_ALIGN = 64  # bytes; the Pi ISPs' row alignment
FOREVER_S = 30.0  # "forever" in a test: long enough to fail it, short enough to end

# camera_controls as picamera2 reports them: name -> (min, max, default).
BASE_CONTROLS = {
    "FrameDurationLimits": (33333, 120000, None),
    "ExposureTime": (26, 112015443, 20000),
    "AnalogueGain": (1.0, 16.0, None),
}
FOCUS_CONTROLS = {"AfMode": (0, 2, 0), "LensPosition": (0.0, 15.0, 1.0), "AfTrigger": (0, 1, 0)}
CONTROLS = {"imx708": {**BASE_CONTROLS, **FOCUS_CONTROLS}, "imx219": dict(BASE_CONTROLS)}


def nv12(image: np.ndarray) -> np.ndarray:
    """A B, G, R image as NV12 in picamera2's shape: the Y rows, then the
    interleaved U, V rows, (h * 3 / 2, w)."""
    height, width = image.shape[:2]
    i420 = cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420)
    quarter = height * width // 4
    chroma = i420[height:].reshape(-1)
    u = chroma[:quarter].reshape(height // 2, width // 2)
    v = chroma[quarter:].reshape(height // 2, width // 2)
    uv = np.stack([u, v], axis=-1).reshape(height // 2, width)
    return np.vstack([i420[:height], uv])


def real_modules(monkeypatch) -> types.ModuleType:
    """The real picamera2 package's previews and job queue, over stubbed kms
    and libcamera; returns the `picamera2` package module (its __init__,
    which needs libcamera, is not run)."""
    if not (REAL_PICAMERA2 / "previews" / "drm_preview.py").is_file():
        raise RuntimeError(
            f"the real picamera2 is not unpacked at {REAL_PICAMERA2}: run `make test`, "
            "which installs it there"
        )
    libcamera = types.ModuleType("libcamera")

    class Transform:  # libcamera.Transform(hflip=0, vflip=0)
        def __init__(self, hflip: int = 0, vflip: int = 0, transpose: int = 0):
            self.hflip, self.vflip, self.transpose = hflip, vflip, transpose

    libcamera.Transform = Transform
    monkeypatch.setitem(sys.modules, "libcamera", libcamera)
    package = types.ModuleType("picamera2")
    package.__path__ = [str(REAL_PICAMERA2)]
    previews = types.ModuleType("picamera2.previews")
    previews.__path__ = [str(REAL_PICAMERA2 / "previews")]
    monkeypatch.setitem(sys.modules, "picamera2", package)
    monkeypatch.setitem(sys.modules, "picamera2.previews", previews)
    package.previews = previews
    for name in (
        "picamera2.job",
        "picamera2.previews.null_preview",
        "picamera2.previews.drm_preview",
    ):
        monkeypatch.delitem(sys.modules, name, raising=False)
    package.job = importlib.import_module("picamera2.job")
    previews.null_preview = importlib.import_module("picamera2.previews.null_preview")
    previews.drm_preview = importlib.import_module("picamera2.previews.drm_preview")
    # /dev/dri/card* as the kms stub lays them out; a fresh device manager per test.
    drm = previews.drm_preview
    monkeypatch.setattr(
        drm, "glob", types.SimpleNamespace(glob=lambda _: sorted(fake_kms.SCREENS.cards))
    )
    drm.DrmPreview._manager = drm.DrmManager()
    return package


class Preview(enum.Enum):
    """picamera2.Preview: members whose values are the preview classes."""

    NULL = "NULL"
    DRM = "DRM"


class FakeStream:
    def __init__(self, config: dict):
        size = types.SimpleNamespace(width=config["size"][0], height=config["size"][1])
        self.configuration = types.SimpleNamespace(
            pixel_format=config["format"], size=size, stride=config.get("stride", 0)
        )


class FakeBuffer:
    def __init__(self, index: int):
        self.planes = [types.SimpleNamespace(fd=1000 + index)]
        self.metadata = types.SimpleNamespace(status="Success")


class FakeCompletedRequest:
    """picamera2's CompletedRequest: ref-counted, its buffer back to the camera at 0."""

    def __init__(self, camera: FakePicamera2, buffer: int, arrays: dict, metadata: dict):
        self._camera, self.buffer = camera, buffer
        self._arrays, self._metadata = arrays, metadata
        self.config = {
            k: dict(v) if isinstance(v, dict) else v for k, v in camera.camera_config.items()
        }
        self.stream_map = camera.stream_map
        stream = camera.stream_map[camera.display_stream_name or "main"]
        self.request = types.SimpleNamespace(buffers={stream: FakeBuffer(buffer)})
        self.configure_count = camera.configure_count
        self.display = False
        self.ref_count = 1
        self.lock = threading.Lock()

    def acquire(self) -> None:
        with self.lock:
            if self.ref_count == 0:
                raise RuntimeError("CompletedRequest: acquiring lock with ref_count 0")
            self.ref_count += 1

    def release(self) -> None:
        with self.lock:
            self.ref_count -= 1
            if self.ref_count < 0:
                raise RuntimeError("CompletedRequest: lock now has negative ref_count")
            if self.ref_count == 0:
                self._camera._buffer_returned(self.buffer)

    @property
    def released(self) -> bool:
        return self.ref_count == 0

    def make_array(self, name: str = "main") -> np.ndarray:
        if self.ref_count == 0:
            raise AssertionError("make_array on a released request: its buffer is reused")
        return self._arrays[name].copy()

    def get_metadata(self) -> dict:
        return dict(self._metadata)


class FakePicamera2:
    """Mirrors picamera2.Picamera2 where the project uses it (see the module doc).

    Frames are the demo clip's, scaled to the configured size, in the layout
    picamera2 gives for format RGB888 (B, G, R order, as OpenCV expects).
    Class attributes set the scene: the cameras libcamera lists, an error for
    the next opens, a libcamera size adjustment, the frame rate.
    """

    instances: list[FakePicamera2] = []
    cameras: list[dict] = [{"Model": "imx708", "Num": 0}]
    fail_open: Exception | None = None
    adjust_lores: tuple[int, int] | None = None  # the size libcamera grants instead
    grant_formats: tuple[str, ...] | None = None  # the formats libcamera grants (None: any)
    frame_interval_s = 0.004  # a fast sensor: the tests are not about its rate
    start_stalled = False  # new cameras deliver nothing until `stalled` is cleared

    def __init__(self, camera_num: int = 0):
        self.calls: list[str] = ["__init__"]
        self.is_open = False
        self._preview = None
        self._event_loop_running = False
        self._preview_stopped = threading.Event()
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
        self.camera_controls = dict(CONTROLS.get(FakePicamera2.cameras[camera_num]["Model"], {}))
        self.camera_config: dict | None = None
        self.stream_map: dict = {}
        self.display_stream_name = None
        self.configure_count = 0
        self.stop_count = 0
        self.started = False
        self.closed = False
        self.stalled = FakePicamera2.start_stalled  # no frames delivered (a loose cable)
        self.frame = 0
        self.cancelled = 0
        self.overlay = None
        self.lock = threading.Lock()
        self._requestslock = threading.Lock()
        self._requests: list[FakeCompletedRequest] = []
        self.completed_requests: list[FakeCompletedRequest] = []
        self._job_list: list = []
        self._max_queue_len = 1
        self._busy_buffers: set[int] = set()
        self._fail_processing: Exception | None = None
        self._sensor: threading.Thread | None = None
        self._cap = cv2.VideoCapture(str(DEMO_CLIP))
        FakePicamera2.instances.append(self)

    @property
    def config(self) -> dict | None:
        return self.camera_config

    @staticmethod
    def global_camera_info() -> list[dict]:
        return list(FakePicamera2.cameras)

    def create_preview_configuration(
        self, main=None, lores=None, controls=None, buffer_count=4, display="main", **kwargs
    ):
        self.calls.append("create_preview_configuration")
        main = {"size": (640, 480), "format": "XBGR8888", **(main or {})}
        config = {"use_case": "preview", "main": main, "controls": dict(controls or {})}
        config["buffer_count"], config["display"] = buffer_count, display
        if lores is not None:
            config["lores"] = {"format": "YUV420", **lores}
        return config

    def configure(self, config: dict) -> None:
        if self.started:
            raise RuntimeError("Camera must be stopped before configuring")
        self.calls.append("configure")
        if "lores" in config and FakePicamera2.adjust_lores is not None:
            config["lores"]["size"] = FakePicamera2.adjust_lores
        for name in ("main", "lores"):
            granted = FakePicamera2.grant_formats
            if name in config and granted and config[name]["format"] not in granted:
                config[name]["format"] = granted[0]
            if name in config:
                width = config[name]["size"][0]
                fmt = config[name]["format"]
                bytes_per_pixel = {"RGB888": 3, "BGR888": 3, "XBGR8888": 4, "XRGB8888": 4}.get(
                    fmt, 1
                )
                stride = -(-width * bytes_per_pixel // STRIDE_ALIGN) * STRIDE_ALIGN
                config[name]["stride"] = stride
        self.camera_config = config
        self.stream_map = {n: FakeStream(config[n]) for n in ("main", "lores") if n in config}
        self.display_stream_name = config["display"]
        self.configure_count += 1

    def set_controls(self, controls: dict) -> None:
        self.calls.append("set_controls")
        self.camera_config["controls"].update(controls)

    # -- previews: picamera2.py attach_preview, start_preview, detach_preview, stop_preview

    def attach_preview(self, preview) -> None:
        if self._preview:
            raise RuntimeError("Preview is already running")
        self._preview = preview
        self._event_loop_running = True

    def start_preview(self, preview=None, **kwargs) -> None:
        if self._event_loop_running:
            raise RuntimeError("An event loop is already running")
        if preview is False or preview is None:
            preview = Preview.NULL
        self.calls.append(f"start_preview:{preview.name}")
        self.preview_kwargs = kwargs
        preview = preview.value(**kwargs)
        self._preview_stopped.clear()
        preview.start(self)

    def detach_preview(self) -> None:
        self._preview = None
        self._event_loop_running = False
        self._preview_stopped.set()

    def stop_preview(self) -> None:
        if self._preview is None:
            raise RuntimeError("No preview specified.")
        try:
            self._preview.stop()
            self._preview_stopped.wait()
        except Exception as e:
            raise RuntimeError("Unable to stop preview.") from e

    def start(self, config=None, show_preview=False) -> None:
        if self.camera_config is None:
            raise RuntimeError("Camera has not been configured")
        if show_preview is not None and not self._event_loop_running:
            self.start_preview(show_preview)
        self.calls.append("start")
        self.started = True
        self._sensor = threading.Thread(target=self._sense, name="fake-libcamera", daemon=True)
        self._sensor.start()

    # -- libcamera: a request completed per frame while a buffer is free -----

    def _sense(self) -> None:
        while self.started:
            time.sleep(FakePicamera2.frame_interval_s)
            if self.stalled or not self.started:
                continue
            with self._requestslock:
                free = [
                    b
                    for b in range(self.camera_config["buffer_count"])
                    if b not in self._busy_buffers
                ]
                if not free:
                    continue  # every buffer is held: no frame until one is released
                self._busy_buffers.add(free[0])
                self._requests.append(FakeCompletedRequest(self, free[0], *self._capture()))
            # Nobody reads once the frame thread is dead or the camera closed.
            with contextlib.suppress(OSError):
                os.write(self.notifyme_w, b"\x00")

    def _buffer_returned(self, buffer: int) -> None:
        with self._requestslock:
            self._busy_buffers.discard(buffer)

    def _capture(self) -> tuple[dict, dict]:
        ok, frame = self._cap.read()
        if not ok:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self._cap.read()
        main = self.camera_config["main"]
        width, height = main["size"]
        image = cv2.resize(frame, (width, height))
        if main["format"] == "XRGB8888":  # B, G, R, X
            image = cv2.cvtColor(image, cv2.COLOR_BGR2BGRA)
        elif main["format"] == "XBGR8888":  # R, G, B, X
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGBA)
        elif main["format"] == "NV12":
            image = nv12(image)
        arrays = {"main": image}
        if "lores" in self.camera_config:
            lw, lh = self.camera_config["lores"]["size"]
            stride = self.camera_config["lores"]["stride"]
            yuv = np.full((lh * 3 // 2, stride), 255, np.uint8)  # padding is not image
            yuv[:lh, :lw] = cv2.cvtColor(cv2.resize(frame, (lw, lh)), cv2.COLOR_BGR2GRAY)
            yuv[lh:, : lw // 2 * 2] = 128
            arrays["lores"] = yuv
        self.frame += 1
        metadata = {
            "SensorTimestamp": time.monotonic_ns() - 5_000_000,
            "ExposureTime": 10_000,
            "FrameDuration": 33333,
        }
        return arrays, metadata

    def process_requests(self, display) -> None:
        """picamera2.py `process_requests`, less encoders and callbacks."""
        if self._fail_processing is not None:
            error, self._fail_processing = self._fail_processing, None
            raise error
        with self._requestslock:
            requests, self._requests = self._requests, []
        with self.lock:
            for req in requests:
                req.acquire()
            self.completed_requests += requests
            display_request = None
            if requests:
                display_request = requests[-1]
                display_request.acquire()
                display_request.display = True
            finished_jobs = []
            while self._job_list:
                if self._job_list[0].execute():
                    finished_jobs.append(self._job_list.pop(0))
                else:
                    break
            for req in requests:
                req.release()
            while len(self.completed_requests) > self._max_queue_len:
                self.completed_requests.pop(0).release()
        if display_request is not None:
            if display_request.configure_count == self.configure_count:
                display.render_request(display_request)
            display_request.release()
        for job in finished_jobs:
            job.signal()

    def _run_process_requests(self) -> None:
        os.write(self.notifyme_w, b"\x00")

    def dispatch_functions(self, functions, wait, signal_function=None, immediate=False):
        """picamera2.py `dispatch_functions`, with the real Job."""
        from picamera2.job import Job

        if wait is None:
            wait = signal_function is None
        timeout = None if wait is True else wait
        if timeout is None and wait:
            timeout = FOREVER_S
            forever = True
        else:
            forever = False
        with self.lock:
            only_job = not self._job_list
            job = Job(functions, signal_function)
            self._job_list.append(job)
            if only_job and (self.completed_requests or immediate):
                self._run_process_requests()
        if not wait:
            return job
        try:
            return job.get_result(timeout=timeout)
        except TimeoutError:
            if forever:
                raise AssertionError(
                    f"{functions[0]} waited with no timeout: on a real Pi this waits forever"
                ) from None
            raise

    def capture_request_(self):
        if not self.completed_requests:
            return (False, None)
        return (True, self.completed_requests.pop(0))

    def capture_request(self, wait=None, signal_function=None, flush=None):
        self.calls.append("capture_request")
        return self.dispatch_functions([self.capture_request_], wait, signal_function)

    def cancel_all_and_flush(self) -> None:
        self.calls.append("cancel_all_and_flush")
        self.cancelled += 1
        with self.lock:
            for job in self._job_list:
                job.cancel()
            self._job_list = []

    def set_overlay(self, overlay) -> None:
        if self._preview is None:
            raise RuntimeError("No preview specified.")
        if overlay is not None and (overlay.ndim != 3 or overlay.shape[2] != 4):
            raise RuntimeError("Overlay must be a 4-channel image")
        self._preview.set_overlay(overlay)
        self.calls.append("set_overlay")
        self.overlay = overlay  # what the preview accepted (it keeps a framebuffer of it)

    # -- what goes wrong -----------------------------------------------------

    def kill_frame_thread(self) -> None:
        """The frame thread raises (as when a preview's render fails) and dies."""
        thread = self._preview.thread
        self._fail_processing = RuntimeError("Failed to reserve DRM plane")
        self._run_process_requests()
        thread.join(5)
        assert not thread.is_alive()

    def stop_(self, request=None):
        if self.started:
            self.stop_count += 1
            self.calls.append("stop")
            self.started = False
            if self._sensor is not None:
                self._sensor.join()
            with self._requestslock:
                unseen, self._requests = self._requests, []
            for r in unseen:
                r.release()
            while self.completed_requests:
                self.completed_requests.pop(0).release()
        return (True, None)

    def stop(self) -> None:
        if not self.started:
            return
        if self._preview is not None and self._event_loop_running:
            self.dispatch_functions([self.stop_], wait=True, immediate=True)
        else:
            self.stop_()

    def close(self) -> None:
        if self._preview:
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

    @classmethod
    def power_off(cls) -> None:
        """End every camera's threads, closed or not (a test's teardown): a camera
        a test left open would otherwise keep decoding frames for the rest of the run."""
        for camera in cls.instances:
            camera.started = False
            if camera._sensor is not None:
                camera._sensor.join()
            if camera._preview is not None:
                camera._preview._abort.set()

    def held_buffers(self) -> int:
        """Buffers held by requests not yet released (the preview keeps one)."""
        with self._requestslock:
            return len(self._busy_buffers)


def install(monkeypatch, screens: fake_kms.Screens | None = None) -> type[FakePicamera2]:
    """Put a `picamera2` module with FakePicamera2 and the real previews in sys.modules."""
    fake_kms.install(monkeypatch, screens)
    module = real_modules(monkeypatch)
    previews = module.previews

    class RealPreview(enum.Enum):  # picamera2.Preview's members, the real classes
        NULL = previews.null_preview.NullPreview
        DRM = previews.drm_preview.DrmPreview

    monkeypatch.setattr(sys.modules[__name__], "Preview", RealPreview)
    module.Picamera2 = FakePicamera2
    module.Preview = RealPreview
    FakePicamera2.instances = []
    FakePicamera2.cameras = [{"Model": "imx708", "Num": 0}]
    FakePicamera2.fail_open = None
    FakePicamera2.adjust_lores = None
    FakePicamera2.grant_formats = None
    FakePicamera2.start_stalled = False
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
