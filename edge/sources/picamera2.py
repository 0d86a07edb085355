"""The Raspberry Pi camera through picamera2 (libcamera).

picamera2 is imported only when this source is opened: it exists only on a
Pi (Raspberry Pi OS's python3-picamera2), and the rest of the package must
import and test anywhere.
"""

from __future__ import annotations

import logging
import time

from edge.sources.base import Capture, Source, SourceError, SourceLost

log = logging.getLogger(__name__)


def _import_picamera2_module():
    try:
        import picamera2
    except ImportError:
        raise SourceError(
            "picamera2 is not installed: on Raspberry Pi OS run `sudo apt install "
            "python3-picamera2` and create the venv with --system-site-packages"
        ) from None
    return picamera2


def sensor_time(metadata: dict) -> float | None:
    """The frame's SensorTimestamp (ns, CLOCK_MONOTONIC) in monotonic seconds.

    None when missing or implausible (more than 5 s away from now), so a
    driver with another clock cannot produce absurd latencies.
    """
    ns = metadata.get("SensorTimestamp") if metadata else None
    if not ns:
        return None
    t = ns / 1e9
    return t if abs(time.monotonic() - t) < 5.0 else None


class Picamera2Source(Source):
    """Pi-native capture: a main stream for display and cropping, and a small
    low-resolution stream (YUV420, its Y plane is the gray image) that faces
    are detected on, as picamera2's own face-detection examples do.

    `drm_preview` shows the main stream on HDMI through picamera2's DRM
    preview (no desktop, no CPU copy); the DRM sink draws the labels on top
    with `set_overlay`. `retries` reopens a busy or not yet present camera with
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
        try:
            camera = picamera2_module.Picamera2()
        except (IndexError, RuntimeError) as exc:
            # picamera2 raises IndexError when no camera is attached and
            # RuntimeError when another process holds it.
            raise SourceError(
                f"no usable Pi camera ({exc or type(exc).__name__}): check the ribbon cable "
                "and that no other program (rpicam-hello, another service) holds the camera"
            ) from None
        try:
            streams = {"main": {"size": self.size, "format": "RGB888"}}
            if self.lores is not None:
                streams["lores"] = {"size": self.lores, "format": "YUV420"}
            # RGB888 is B, G, R in memory: the order OpenCV expects.
            config = camera.create_preview_configuration(
                **streams, controls={"FrameRate": self.fps}
            )
            camera.configure(config)
            if self.drm_preview:  # the preview starts before the camera
                camera.start_preview(picamera2_module.Preview.DRM)
            camera.start()
        except Exception as exc:
            camera.close()
            raise SourceError(f"Pi camera did not start: {exc}") from None
        return camera

    def _read(self) -> Capture | None:
        try:
            request = self.camera.capture_request()
        except Exception as exc:
            raise SourceLost(f"picamera2 stopped delivering frames: {exc}") from None
        try:
            image = request.make_array("main")
            gray = None
            if self.lores is not None:
                width, height = self.lores
                gray = request.make_array("lores")[:height, :width]  # the Y plane
            metadata = request.get_metadata()
        finally:
            request.release()  # buffers go back to libcamera, always
        return Capture(image, sensor_time(metadata), gray)

    def _close(self) -> None:
        if self.camera is not None:
            try:
                self.camera.stop()
            finally:
                self.camera.close()
                self.camera = None
