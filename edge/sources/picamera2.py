"""The Raspberry Pi camera through picamera2 (libcamera).

picamera2 is imported only when this source is opened: it exists only on a
Pi (Raspberry Pi OS's python3-picamera2), and the rest of the package must
import and test anywhere.
"""

from __future__ import annotations

import time

from edge.sources.base import Capture, Source, SourceError, SourceLost


def _import_picamera2():
    try:
        from picamera2 import Picamera2
    except ImportError:
        raise SourceError(
            "picamera2 is not installed: on Raspberry Pi OS run `sudo apt install "
            "python3-picamera2` and create the venv with --system-site-packages"
        ) from None
    return Picamera2


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
    live = True

    def __init__(self, width: int = 640, height: int = 480, fps: float = 30.0) -> None:
        super().__init__()
        self.size = (width, height)
        self.fps = fps
        self.description = "picamera2"
        self.camera = None

    def _open(self) -> None:
        picamera2_class = _import_picamera2()
        try:
            camera = picamera2_class()
        except (IndexError, RuntimeError) as exc:
            # picamera2 raises IndexError when no camera is attached and
            # RuntimeError when another process holds it.
            raise SourceError(
                f"no usable Pi camera ({exc or type(exc).__name__}): check the ribbon cable "
                "and that no other program (rpicam-hello, another service) holds the camera"
            ) from None
        try:
            # RGB888 is B, G, R in memory: the order OpenCV expects.
            config = camera.create_preview_configuration(
                main={"size": self.size, "format": "RGB888"},
                controls={"FrameRate": self.fps},
            )
            camera.configure(config)
            camera.start()
        except Exception as exc:
            camera.close()
            raise SourceError(f"Pi camera did not start: {exc}") from None
        self.camera = camera

    def _read(self) -> Capture | None:
        try:
            request = self.camera.capture_request()
        except Exception as exc:
            raise SourceLost(f"picamera2 stopped delivering frames: {exc}") from None
        try:
            image = request.make_array("main")
            metadata = request.get_metadata()
        finally:
            request.release()  # buffers go back to libcamera, always
        return image, sensor_time(metadata)

    def _close(self) -> None:
        if self.camera is not None:
            try:
                self.camera.stop()
            finally:
                self.camera.close()
                self.camera = None
