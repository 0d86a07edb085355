"""The Raspberry Pi camera through picamera2 (libcamera).

picamera2 is imported only when this source is opened: it exists only on a
Pi (Raspberry Pi OS's python3-picamera2), and the rest of the package must
import and test anywhere.

What picamera2 does that shapes this file (file names from its repository):
- `capture_request()` waits forever by default (`picamera2.py`,
  `dispatch_functions`); a number for `wait` bounds it and raises
  `TimeoutError`. Every capture here is bounded, so a stall becomes
  `SourceLost` and the pipeline's reopen runs instead of a silent hang.
- Frames are delivered by a thread (`previews/null_preview.py`), which dies
  for good when its preview raises, as the DRM preview does on a screen it
  cannot use. `stop()` then dispatches to that dead thread and waits forever,
  so closing is bounded too; a camera that cannot be closed ends the process
  (`SourceFailed`), and systemd starts a fresh one.
- `Picamera2()` opens a notification pipe before the camera, and `close()`
  returns early for a camera that never opened, leaking a descriptor per
  failed open; a camera waited for all night would run out. Failed opens are
  cleaned up here.
- A numeric `wait` and `cancel_all_and_flush()` exist only from 0.3.20
  (August 2024); before that `wait=3.0` waits forever. An older picamera2 is
  refused at open with one line.
- Autofocus is never turned on by picamera2 (a Camera Module 3 starts with
  its lens parked); it is here, where the camera has a focus motor.
- The DRM preview of older releases opens the card kms++ opens by default
  (the first with outputs); a Pi 5's DSI or composite screen is on another.
  Newer releases take `device=`; with an older one the preview is not started
  and the console sink draws the frames instead (edge.screen.preview_device).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import inspect
import logging
import os
import threading
import time

import cv2
import numpy as np

from edge.screen import preview_device, preview_window
from edge.sources.base import Capture, Source, SourceError, SourceFailed, SourceLost

log = logging.getLogger(__name__)

# The FrameRate control fixes the frame period (libcamera sets
# FrameDurationLimits to 1/fps at both ends, so a dark room shortens exposure
# instead of slowing frames): 3 s without a frame is a stall, not a dark room.
CAPTURE_TIMEOUT_S = 3.0
# A healthy close takes tens of milliseconds; past this it is waiting on a dead thread.
CLOSE_DEADLINE_S = 3.0


def _import_picamera2_module():
    # libcamera prints INFO and WARN lines of its own around ours; errors stay.
    os.environ.setdefault("LIBCAMERA_LOG_LEVELS", "*:ERROR")
    logging.getLogger("picamera2").setLevel(logging.WARNING)
    try:
        import picamera2
    except ImportError:
        raise SourceError(
            "picamera2 is not installed: on Raspberry Pi OS run `sudo apt install "
            "python3-picamera2` and create the venv with --system-site-packages"
        ) from None
    except ValueError as exc:
        if "size changed" not in str(exc) and "numpy" not in str(exc).lower():
            raise
        # Pi OS's python3-simplejpeg (which picamera2 imports) is compiled
        # against the system's NumPy; a NumPy of another major version in the
        # venv cannot load it (picamera2 issues #1088, #1211).
        import numpy

        raise SourceError(
            f"picamera2 cannot load with NumPy {numpy.__version__} in this venv ({exc}): "
            "Pi OS builds it for its own NumPy; reinstall with the tested set: "
            "`pip install -c constraints/pi-bookworm.txt -e .` (Bookworm; pi-trixie.txt "
            "on Trixie) or `sudo edge/systemd/install.sh`"
        ) from None
    if not hasattr(picamera2.Picamera2, "cancel_all_and_flush"):
        raise SourceError(
            f"picamera2 {_version()} is too old: bounded captures need 0.3.20 or later; "
            "`sudo apt update && sudo apt install python3-picamera2` (or rerun "
            "`sudo edge/systemd/install.sh`)"
        )
    return picamera2


def _version() -> str:
    try:
        return importlib.metadata.version("picamera2")
    except importlib.metadata.PackageNotFoundError:
        return "(version unknown)"


# libcamera's AfMode values (control_ids_core.yaml: AfModeManual, AfModeContinuous).
AF_MANUAL, AF_CONTINUOUS = 0, 2


def focus_controls(camera_controls: dict, lens_position: float | None) -> dict:
    """The focus a camera with a focus motor starts with: continuous autofocus,
    or the lens fixed at `lens_position` dioptres; nothing for a fixed-focus
    camera (AfMode not among its controls)."""
    if "AfMode" not in camera_controls:
        return {}
    if lens_position is None:
        return {"AfMode": AF_CONTINUOUS}
    return {"AfMode": AF_MANUAL, "LensPosition": float(lens_position)}


def sensor_time(metadata: dict) -> float | None:
    """When the frame's exposure began, in monotonic seconds.

    libcamera's SensorTimestamp (CLOCK_MONOTONIC, ns) marks the start of the
    readout, about the end of the exposure; picamera2 subtracts ExposureTime
    (us) for the start (`wait_for_timestamp_`), and so does this, so
    end-to-end latency runs from light to label. None when missing or
    implausible (more than 5 s from now), so a driver with another clock
    cannot produce absurd latencies.
    """
    ns = metadata.get("SensorTimestamp") if metadata else None
    if not ns:
        return None
    t = (ns - 1000 * (metadata.get("ExposureTime") or 0)) / 1e9
    return t if abs(time.monotonic() - t) < 5.0 else None


# Each format's array as picamera2 makes it (request.py `_make_array_shared`:
# the byte orders its manual gives, YUV with the chroma rows below the luma)
# and how OpenCV turns it into B, G, R. A Pi camera's ISP gives the RGB888
# asked for; a camera without one gets what libcamera adjusts the request to,
# which picamera2 writes back into the configuration (`_update_stream_config`):
# YUYV or MJPEG from a USB camera (the uvcvideo pipeline), NV12 from
# libcamera's Virtual camera (virtual.cpp `validate`).
TO_BGR = {
    "RGB888": None,  # B, G, R in memory: OpenCV's order already
    "BGR888": cv2.COLOR_RGB2BGR,
    "XRGB8888": cv2.COLOR_BGRA2BGR,
    "XBGR8888": cv2.COLOR_RGBA2BGR,
    "NV12": cv2.COLOR_YUV2BGR_NV12,
    "NV21": cv2.COLOR_YUV2BGR_NV21,
    "YUV420": cv2.COLOR_YUV2BGR_I420,
    "YUYV": cv2.COLOR_YUV2BGR_YUYV,
    "MJPEG": cv2.COLOR_RGB2BGR,  # picamera2 decodes it with PIL: R, G, B
}
# Formats whose first `height` rows are the gray (Y) image: the lores stream's.
PLANAR_YUV = ("YUV420", "YVU420", "NV12", "NV21")


def to_bgr(array: np.ndarray, stream: dict) -> np.ndarray:
    """A main-stream array from picamera2 as an OpenCV B, G, R image.

    `stream` is the request's configuration of that stream (format, size,
    stride), which holds what libcamera granted, not what was asked.
    """
    fmt = stream["format"]
    if fmt not in TO_BGR:
        raise SourceError(
            f"the camera delivers {fmt}, which this source does not convert; "
            f"it converts {', '.join(TO_BGR)}"
        )
    width, height = stream["size"]
    if fmt == "YUV420" and array.shape[1] != width:
        # Rows padded to the stride: Y rows, then U and V at half the stride.
        stride, flat = array.shape[1], array.reshape(-1)
        y = flat[: height * stride].reshape(height, stride)[:, :width]
        half = (height // 2) * (stride // 2)
        u = flat[height * stride : height * stride + half].reshape(height // 2, stride // 2)
        v = flat[height * stride + half : height * stride + 2 * half].reshape(
            height // 2, stride // 2
        )
        planes = [y.ravel(), u[:, : width // 2].ravel(), v[:, : width // 2].ravel()]
        array = np.concatenate(planes).reshape(height * 3 // 2, width)
    elif fmt == "YUYV":
        array = array[:, :width]  # (height, stride // 2, 2): padding sliced off
    code = TO_BGR[fmt]
    return array if code is None else cv2.cvtColor(array, code)


def describe_open_failure(exc: BaseException) -> str:
    """What went wrong opening the camera, and the fix, from picamera2's error.

    picamera2 wraps what failed in "Camera __init__ sequence did not
    complete", so the cause is looked for along the exception's context.
    """
    causes = []
    cause: BaseException | None = exc
    while cause is not None and len(causes) < 5:
        causes.append(cause)
        cause = cause.__cause__ or cause.__context__
    for cause in causes:
        if isinstance(cause, PermissionError):
            path = cause.filename or "the camera's devices"
            group = "render" if "renderD" in str(path) else "video"
            return (
                f"permission denied on {path}: add the user to the {group} group "
                f"(sudo usermod -aG {group} $USER, then log in again; the service has it)"
            )
    text = " / ".join(dict.fromkeys(str(c) or type(c).__name__ for c in causes))
    if "busy" in text.lower() or "acquire" in text.lower() or "did not complete" in text:
        return (
            f"the Pi camera did not open ({text}): another program may hold it "
            "(rpicam-hello, rpicam-vid, another emotion-edge): stop it"
        )
    return f"the Pi camera did not open ({text})"


def _construct(picamera2_module):
    """`Picamera2()`, without the descriptor a failed one leaks."""
    cls = picamera2_module.Picamera2
    camera = cls.__new__(cls)
    try:
        camera.__init__()
    except BaseException:
        # The pipe from `__init__` that `close()` skips for a camera that never opened.
        with contextlib.suppress(Exception):
            camera.notifymeread.close()
        with contextlib.suppress(Exception):
            os.close(camera.notifyme_w)
        camera.close = lambda: None  # so __del__ cannot close them a second time
        raise
    return camera


def frame_thread_alive(camera) -> bool:
    """Whether picamera2's frame-delivering thread still runs (True if unknown)."""
    thread = getattr(getattr(camera, "_preview", None), "thread", None)
    return thread is None or thread.is_alive()


class Picamera2Source(Source):
    """Pi-native capture: a main stream for display and cropping, and a small
    low-resolution stream (YUV420, its Y plane is the gray image) that faces
    are detected on, as picamera2's own face-detection examples do.

    `drm_preview` shows the main stream on HDMI through picamera2's DRM
    preview (no desktop, no CPU copy), filling the screen unless
    `preview_fullscreen` is off; the DRM sink draws the labels on top with
    `set_overlay`. `retries` reopens a busy or not yet present camera with
    backoff (at boot, or while another program releases it).
    """

    live = True
    description = "picamera2"
    RETRY_DELAYS_S = (1, 2, 4, 8)

    def __init__(
        self,
        width: int = 640,
        height: int = 480,
        fps: float = 30.0,
        lores_width: int = 320,
        drm_preview: bool = False,
        retries: bool = False,
        preview_fullscreen: bool = True,
        lens_position: float | None = None,
    ):
        super().__init__()
        self.size = (width, height)
        self.fps = fps
        # lores keeps the main stream's aspect ratio; even sizes for YUV420.
        self.lores = None
        if lores_width and lores_width < width:
            lores_height = round(height * lores_width / width / 2) * 2
            self.lores = (lores_width // 2 * 2, lores_height)
        self.drm_preview = drm_preview
        self.preview_problem: str | None = None  # why a DRM preview asked for did not start
        self.preview_fullscreen = preview_fullscreen
        self.lens_position = lens_position
        self.retries = retries
        self._opened = False
        self.camera = None

    def _open(self) -> None:
        picamera2_module = _import_picamera2_module()
        # Only the first open retries by itself: a reopen after a loss is retried
        # by the pipeline's waiting loop, which watches the stop event and pings
        # the watchdog, instead of sleeping here holding the lifecycle lock.
        delays = self.RETRY_DELAYS_S if self.retries and not self._opened else ()
        self._opened = True
        for attempt in range(len(delays) + 1):
            try:
                self.camera = self._start(picamera2_module)
                return
            except SourceError as exc:
                if attempt == len(delays):
                    raise
                log.warning("%s; retrying in %d s", exc, delays[attempt])
                time.sleep(delays[attempt])

    def _start(self, picamera2_module):
        # Older picamera2 raises IndexError for a missing camera, newer a
        # RuntimeError that says nothing; libcamera's list says it plainly.
        try:
            cameras = picamera2_module.Picamera2.global_camera_info()
        except Exception as exc:
            raise SourceError(describe_open_failure(exc)) from None
        if not cameras:
            raise SourceError(
                "no Pi camera detected (libcamera lists none): check the ribbon cable and "
                "its orientation, then `rpicam-hello --list-cameras`"
            )
        try:
            camera = _construct(picamera2_module)
        except Exception as exc:
            raise SourceError(describe_open_failure(exc)) from None
        try:
            streams = {"main": {"size": self.size, "format": "RGB888"}}
            if self.lores is not None:
                streams["lores"] = {"size": self.lores, "format": "YUV420"}
            controls = {"FrameRate": self.fps}
            controls.update(focus_controls(camera.camera_controls, self.lens_position))
            # RGB888 is B, G, R in memory: the order OpenCV expects.
            config = camera.create_preview_configuration(**streams, controls=controls)
            camera.configure(config)
            granted = camera.camera_config["main"]["format"]  # picamera2 writes back libcamera's
            if granted not in TO_BGR:
                raise SourceError(
                    f"it delivers {granted}, which this source does not convert "
                    f"(it converts {', '.join(TO_BGR)})"
                )
            if self.drm_preview:  # the preview starts before the camera
                self._start_preview(camera, picamera2_module)
            camera.start()
        except Exception as exc:
            self._close_bounded(camera)
            raise SourceError(
                describe_open_failure(exc).replace("did not open", "did not start")
            ) from None
        return camera

    def _start_preview(self, camera, picamera2_module) -> None:
        """picamera2's DRM preview on the connected screen, told which one
        where its default would miss it; not started (the console sink draws
        instead) where this picamera2 cannot be told."""
        window = preview_window(self.size, self.preview_fullscreen)
        place = dict(zip(("x", "y", "width", "height"), window, strict=True)) if window else {}
        if device := preview_device():
            preview_class = picamera2_module.Preview.DRM.value
            if "device" not in inspect.signature(preview_class.__init__).parameters:
                self.drm_preview = False
                self.preview_problem = (
                    f"the screen ({device}) is not on the card picamera2 {_version()}'s DRM "
                    "preview opens; upgrade python3-picamera2 for its own preview there"
                )
                log.info("%s: drawing frames on the console instead", self.preview_problem)
                return
            place["device"] = device
        camera.start_preview(picamera2_module.Preview.DRM, **place)

    def _read(self) -> Capture | None:
        camera = self.camera
        try:
            request = camera.capture_request(wait=CAPTURE_TIMEOUT_S)
        except TimeoutError:
            # The pending capture job would otherwise take the next frame.
            with contextlib.suppress(Exception):
                camera.cancel_all_and_flush()
            why = (
                "picamera2's frame thread stopped"
                + (
                    " (the HDMI preview failed: was the screen unplugged?)"
                    if self.drm_preview
                    else ""
                )
                if not frame_thread_alive(camera)
                else "the camera stalled"
            )
            raise SourceLost(
                f"no frame from the Pi camera in {CAPTURE_TIMEOUT_S:g} s: {why}"
            ) from None
        except Exception as exc:
            raise SourceLost(f"picamera2 stopped delivering frames: {exc}") from None
        try:
            config = getattr(request, "config", None) or {}
            image = request.make_array("main")
            if "main" in config:
                image = to_bgr(image, config["main"])
            gray = None
            if self.lores is not None and config.get("lores", {}).get("format") in PLANAR_YUV:
                # YUV420 rows are padded to the stride, and libcamera may adjust
                # the size asked for: slice with what the camera was configured to.
                width, height = (config.get("lores") or {}).get("size", self.lores)
                gray = request.make_array("lores")[:height, :width]  # the Y plane
            metadata = request.get_metadata()
        finally:
            request.release()  # buffers go back to libcamera, always
        return Capture(image, sensor_time(metadata), gray)

    def _close(self) -> None:
        camera, self.camera = self.camera, None
        if camera is not None:
            self._close_bounded(camera)

    def _close_bounded(self, camera) -> None:
        """Stop and close the camera, or give up on this process after CLOSE_DEADLINE_S."""
        failure: list[BaseException] = []

        def close() -> None:
            try:
                if not frame_thread_alive(camera):
                    # stop() would hand itself to the dead thread and wait forever;
                    # with no loop running, this thread may stop the camera itself.
                    camera.stop_()
                else:
                    camera.stop()
            except Exception as exc:
                failure.append(exc)
            finally:
                try:
                    camera.close()
                except Exception as exc:
                    failure.append(exc)

        closer = threading.Thread(target=close, name="picamera2-close", daemon=True)
        closer.start()
        closer.join(CLOSE_DEADLINE_S)
        if closer.is_alive():
            raise SourceFailed(
                f"the Pi camera did not close within {CLOSE_DEADLINE_S:g} s (picamera2 is "
                "stuck); it cannot be reopened in this process: exiting, so that the "
                "service restarts with a fresh camera"
            )
        if failure:
            log.debug("closing the Pi camera: %s", failure[0])
