"""Throughput and latency figures: sliding-window FPS and per-stage percentiles.

One `Stats` object is fed by the pipeline's stages and read by the log line,
the `--stats` JSON lines, the final summary and the benchmark, so all of them
report the same numbers.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque

import numpy as np

STAGES = ("capture", "detect", "classify", "render")


def percentiles(values, qs=(50, 95)) -> dict[str, float]:
    """{'p50': ..., 'p95': ...} of `values`, or zeros when there are none."""
    if len(values) == 0:
        return {f"p{q}": 0.0 for q in qs}
    result = np.percentile(np.asarray(values, dtype=float), qs)
    return {f"p{q}": round(float(v), 3) for q, v in zip(qs, result, strict=True)}


class RateMeter:
    """Events per second over a sliding window of monotonic timestamps."""

    def __init__(self, window_s: float = 5.0) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque()

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._times.append(now)
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()

    def rate(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()
        if len(self._times) < 2:
            return 0.0
        span = max(now, self._times[-1]) - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0


class Stats:
    """Counters and timings of one pipeline run; thread-safe.

    Keeps the last `window` samples per stage for the periodic figures and
    every sample for the final summary (a float per frame: a day at 30 FPS
    is 20 MB, and the summary is what a benchmark reads).
    """

    def __init__(self, window: int = 300, keep_all: bool = True) -> None:
        self._lock = threading.Lock()
        self.started = time.monotonic()
        self.captured = 0
        self.processed = 0
        self.decode_errors = 0
        self.faces = 0
        self.labels: Counter[str] = Counter()
        self.capture_rate = RateMeter()
        self.process_rate = RateMeter()
        self._recent = {name: deque(maxlen=window) for name in (*STAGES, "latency")}
        self._all: dict[str, list[float]] | None = (
            {name: [] for name in (*STAGES, "latency")} if keep_all else None
        )
        self.skipped = 0

    def captured_frame(self, capture_ms: float) -> None:
        with self._lock:
            self.captured += 1
            self.capture_rate.tick()
            self._add("capture", capture_ms)

    def decode_error(self) -> None:
        with self._lock:
            self.decode_errors += 1

    def processed_frame(self, stage_ms: dict[str, float], latency_ms: float, labels) -> None:
        with self._lock:
            self.processed += 1
            self.process_rate.tick()
            for name, ms in stage_ms.items():
                if name != "capture":
                    self._add(name, ms)
            self._add("latency", latency_ms)
            self.faces += len(labels)
            self.labels.update(labels)

    def _add(self, name: str, value: float) -> None:
        self._recent[name].append(value)
        if self._all is not None:
            self._all[name].append(value)

    def snapshot(self, final: bool = False) -> dict:
        """The figures as a JSON-ready dict; `final` uses every sample of the run."""
        with self._lock:
            samples = self._all if (final and self._all is not None) else self._recent
            elapsed = time.monotonic() - self.started
            latency = percentiles(samples["latency"], (50, 95, 99))
            latency["max"] = round(max(samples["latency"], default=0.0), 3)
            return {
                "elapsed_s": round(elapsed, 3),
                "frames_captured": self.captured,
                "frames_processed": self.processed,
                "frames_skipped": self.skipped,
                "decode_errors": self.decode_errors,
                "camera_fps": round(
                    self.captured / elapsed if final and elapsed else self.capture_rate.rate(), 2
                ),
                "processed_fps": round(
                    self.processed / elapsed if final and elapsed else self.process_rate.rate(),
                    2,
                ),
                "stage_ms": {
                    name: percentiles(samples[name], (50, 95, 99) if final else (50, 95))
                    for name in STAGES
                },
                "latency_ms": latency,
                "faces": self.faces,
                "labels": dict(self.labels.most_common()),
            }


def format_line(snap: dict) -> str:
    """The periodic log line: short enough to read in a journal."""
    stages = " ".join(
        f"{name} {snap['stage_ms'][name]['p50']:.1f}/{snap['stage_ms'][name]['p95']:.1f}"
        for name in STAGES
    )
    lat = snap["latency_ms"]
    return (
        f"fps camera {snap['camera_fps']:.1f} processed {snap['processed_fps']:.1f} "
        f"skipped {snap['frames_skipped']} | ms p50/p95 {stages} | "
        f"latency {lat['p50']:.1f}/{lat['p95']:.1f} max {lat['max']:.1f} | faces {snap['faces']}"
    )
