"""The console's screen for any source: annotated frames written into the
framebuffer (/dev/fbN) that Pi OS keeps with `vc4-kms-v3d`.

picamera2's DRM preview shows only the Pi camera; a USB webcam, a network
camera or a video file on a console-only Pi would show nothing on HDMI. The
kernel's fbdev emulation of the DRM card is the simplest screen there is: a
memory map of the picture the console shows. Each frame is scaled to the
screen (letterboxed), converted to the framebuffer's pixel format and copied
in; `python -m benchmarks --console` measures what that costs per frame.

Only where no desktop owns the screen (edge.screen): a compositor would draw
over it. The console's own text (a login prompt) may show through until the
first frame; it is cleared when the sink closes.
"""

from __future__ import annotations

import mmap
from typing import Self

import cv2
import numpy as np

from edge import screen
from edge.frames import Result
from edge.sinks.base import Sink, SinkContext, SinkError

# The framebuffer's layout for each depth: vc4's fbdev is XRGB8888 (bytes B, G,
# R, X) at 32 bpp and RGB565 at 16 (framebuffer_depth in config.txt).
CONVERSIONS = {32: (cv2.COLOR_BGR2BGRA, 4), 16: (cv2.COLOR_BGR2BGR565, 2)}


def placement(
    frame: tuple[int, int], screen_size: tuple[int, int], fullscreen: bool
) -> tuple[int, int, int, int]:
    """(x, y, width, height) of a frame on the screen: scaled to fit with its
    aspect ratio kept (fullscreen), else at its own size, centred either way."""
    (fw, fh), (sw, sh) = frame, screen_size
    scale = min(sw / fw, sh / fh) if fullscreen else min(1.0, sw / fw, sh / fh)
    width, height = max(1, round(fw * scale)), max(1, round(fh * scale))
    return ((sw - width) // 2, (sh - height) // 2, width, height)


class ConsoleSink(Sink):
    needs_image = True
    name = "console"

    def __init__(self, framebuffer: screen.Framebuffer, fullscreen: bool = True) -> None:
        super().__init__()
        if framebuffer.bits_per_pixel not in CONVERSIONS:
            raise SinkError(
                f"{framebuffer.device} is {framebuffer.bits_per_pixel} bits per pixel; "
                "only 16 and 32 are drawn: set framebuffer_depth=32 in config.txt"
            )
        self.framebuffer = framebuffer
        self.fullscreen = fullscreen
        self._file = None
        self._map: mmap.mmap | None = None
        self._pixels: np.ndarray | None = None  # rows of the screen, stride bytes each
        self._place: tuple[tuple[int, int], tuple[int, int, int, int]] | None = None
        self.frames = 0

    @classmethod
    def from_config(cls, context: SinkContext) -> Self | None:
        if context.display != "console":
            return None
        framebuffer = screen.framebuffer()
        if framebuffer is None:
            raise SinkError(
                "--display console: the screen's card has no framebuffer (/dev/fb*): keep "
                "dtoverlay=vc4-kms-v3d's fbdev emulation on, or use --display drm with the "
                "Pi camera, or --display none and the web page (--web PORT)"
            )
        return cls(framebuffer, context.config.output.fullscreen is not False)

    @property
    def description(self) -> str:
        return f"console screen ({self.framebuffer.device})"

    def _open(self) -> None:
        fb = self.framebuffer
        length = fb.stride * fb.size[1]
        try:
            self._file = open(fb.device, "r+b", buffering=0)  # noqa: SIM115 (kept open)
            self._map = mmap.mmap(self._file.fileno(), length)
        except PermissionError:
            self._release()
            raise SinkError(
                f"permission denied on {fb.device}: add the user to the video group "
                "(sudo usermod -aG video $USER, then log in again; the service has it)"
            ) from None
        except (OSError, ValueError) as exc:
            self._release()
            raise SinkError(f"cannot draw on {fb.device} ({exc}): use --display none") from None
        self._pixels = np.frombuffer(self._map, np.uint8).reshape(fb.size[1], fb.stride)
        self._pixels[:] = 0

    def _write(self, result: Result, annotated: np.ndarray | None) -> None:
        if annotated is None:
            return
        height, width = annotated.shape[:2]
        if self._place is None or self._place[0] != (width, height):
            place = placement((width, height), self.framebuffer.size, self.fullscreen)
            self._pixels[:] = 0  # the bars around a picture of another shape
            self._place = ((width, height), place)
        x, y, w, h = self._place[1]
        if (w, h) != (width, height):
            annotated = cv2.resize(annotated, (w, h), interpolation=cv2.INTER_LINEAR)
        code, depth = CONVERSIONS[self.framebuffer.bits_per_pixel]
        pixels = cv2.cvtColor(annotated, code)
        self._pixels[y : y + h, x * depth : (x + w) * depth] = pixels.reshape(h, w * depth)
        self.frames += 1

    def _close(self) -> None:
        if self._pixels is not None:
            self._pixels[:] = 0  # give the console back blank, not a frozen frame
        self._release()

    def _release(self) -> None:
        self._pixels = None
        if self._map is not None:
            self._map.close()
            self._map = None
        if self._file is not None:
            self._file.close()
            self._file = None
