"""`camera` (and `auto`): the Pi camera, else the first USB webcam, chosen
again from the whole list each time the camera is lost.

On a Pi, /dev/video0 is not a webcam but the CSI receiver (unicam, or rp1-cfe
on a Pi 5), with the ISP's nodes after it: OpenCV can open such a node and
then fail every read. So only UVC webcams (driver `uvcvideo` in sysfs, the
capture node of each) and virtual cameras (v4l2loopback: OBS's virtual
camera, a feed from ffmpeg or GStreamer; sysfs lists them under
/sys/devices/virtual; `make pi-vm-check` uses one) are candidates, and a
camera lost mid-run is looked for again among all candidates, the Pi camera
first: a picamera2 that failed once at start (busy, a NumPy mismatch fixed
by a restart of what held it) is not given up for good.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path

from edge.sources.base import Capture, Source, SourceError

log = logging.getLogger(__name__)

# Where the kernel lists V4L2 devices; tests point it at a folder of their own.
SYS_VIDEO4LINUX = Path("/sys/class/video4linux")


def webcams(sys_v4l: Path | None = None) -> list[int] | None:
    """The /dev/videoN numbers of UVC webcams' capture nodes, then of virtual
    cameras, each in order; None where sysfs does not list V4L2 devices (not
    Linux): webcam 0 is then the platform's first camera."""
    sys_v4l = sys_v4l or SYS_VIDEO4LINUX
    if not sys_v4l.is_dir():
        return None
    uvc, virtual = [], []
    for node in sys_v4l.glob("video*"):
        if not re.fullmatch(r"video\d+", node.name):
            continue
        number = int(node.name[5:])
        if "virtual" in node.resolve().parts:  # /sys/devices/virtual/video4linux/videoN
            virtual.append(number)
            continue
        driver = (node / "device" / "driver").resolve().name
        try:
            # A UVC camera has two nodes: frames (index 0) and metadata (index 1).
            index = (node / "index").read_text().strip()
        except OSError:
            index = "0"
        if driver == "uvcvideo" and index == "0":
            uvc.append(number)
    return sorted(uvc) + sorted(virtual)


def camera_candidates() -> list[str]:
    """What `camera` tries, in order: the Pi camera, each UVC webcam, each virtual camera."""
    found = webcams()
    return ["picamera2", *(str(n) for n in (found if found is not None else [0]))]


class AnyCamera(Source):
    """The first candidate that opens; on `reopen` (after a loss) the whole
    list again. Everything else (the Pi camera's `camera`, `drm_preview`,
    `size`, ...) is the chosen source's."""

    live = True

    def __init__(self, make: Callable[[str], Source]) -> None:
        super().__init__()
        self._make = make
        self.current: Source | None = None

    @property
    def description(self) -> str:
        return self.current.description if self.current is not None else "camera"

    def _open(self) -> None:
        reasons = []
        candidates = camera_candidates()
        for candidate in candidates:
            try:
                source = self._make(candidate).open()
            except SourceError as exc:
                reasons.append(f"{candidate}: {exc}")
                continue
            if self.current is not None and source.description != self.current.description:
                log.info("camera: now using %s", source.description)
            self.current = source
            return
        self.current = None
        webcams = "" if any(c.isdigit() for c in candidates) else "; no USB webcam"
        raise SourceError("no camera found (" + "; ".join(reasons) + webcams + ")")

    def _read(self) -> Capture | None:
        return self.current.read()

    def _close(self) -> None:
        if self.current is not None:
            self.current.close()

    def __getattr__(self, name: str):
        current = self.__dict__.get("current")
        if current is None or name.startswith("_"):
            raise AttributeError(name)
        return getattr(current, name)
