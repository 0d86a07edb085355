"""`python -m benchmarks --console`: what drawing frames on the console's
screen (edge/sinks/console.py) costs per frame.

picamera2's DRM preview puts the Pi camera's picture on HDMI with no CPU
copy; every other source is drawn by the console sink, which scales each
annotated frame to the screen, converts it to the framebuffer's format and
copies it in. This times exactly that, on the demo clip's frames, for a
screen of the frame's own size (640x480: no scaling) and a 1080p screen,
32 bits per pixel, into a file in memory standing in for /dev/fb0 (the copy
into a real framebuffer is a write to memory too). Sizes alternate frame by
frame so drift in the machine's load falls on both alike. Reported: median
and p90 milliseconds per frame. Writes `console.json` and `console.md`.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import cv2

from edge import screen
from edge.frames import Frame, Result
from edge.sinks.console import ConsoleSink

SCREENS = {"640x480": (640, 480), "1920x1080": (1920, 1080)}
DEPTHS = (32, 16)  # bits per pixel: XRGB8888, RGB565


def run(clip: str, frames: int = 300) -> dict:
    images = []
    cap = cv2.VideoCapture(clip)
    while len(images) < frames:
        ok, image = cap.read()
        if not ok:
            break
        images.append(image)
    cap.release()
    folder = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        sinks = {}
        for name, (width, height) in SCREENS.items():
            for bpp in DEPTHS:
                stride = width * bpp // 8
                device = Path(tmp) / f"fb-{name}-{bpp}"
                device.write_bytes(bytes(stride * height))
                fb = screen.Framebuffer(device, (width, height), bpp, stride)
                sinks[f"{name}, {bpp} bpp"] = ConsoleSink(fb).open()
        times: dict[str, list[float]] = {case: [] for case in sinks}
        for index, image in enumerate(images):
            result = Result(Frame(image, index, 0.0), [])
            cases = list(sinks)
            for case in cases if index % 2 == 0 else reversed(cases):
                start = time.perf_counter()
                sinks[case].write(result, image)
                times[case].append((time.perf_counter() - start) * 1000)
        for sink in sinks.values():
            sink.close()
    frame_size = f"{images[0].shape[1]}x{images[0].shape[0]}"
    return {
        "clip": Path(clip).name,
        "frames": len(images),
        "frame_size": frame_size,
        "bits_per_pixel": list(DEPTHS),
        "ms_per_frame": {
            name: {
                "p50": round(statistics.median(values), 3),
                "p90": round(statistics.quantiles(values, n=10)[-1], 3),
            }
            for name, values in times.items()
        },
    }


def table(result: dict) -> str:
    rows = [
        "| screen, depth | ms per frame, median | p90 |",
        "|---|---:|---:|",
        *(
            f"| {name} | {v['p50']:.2f} | {v['p90']:.2f} |"
            for name, v in result["ms_per_frame"].items()
        ),
    ]
    return (
        f"Console sink: {result['frames']} frames of {result['clip']} "
        f"({result['frame_size']})\n\n" + "\n".join(rows) + "\n"
    )
