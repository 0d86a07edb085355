"""Throughput and latency figures: sliding-window FPS and per-stage percentiles.

One `Stats` object is fed by the pipeline's stages and read by the log line,
the `--stats` JSON lines, the final summary and the benchmark, so all of them
report the same numbers.

Memory does not grow with uptime: the periodic figures come from the last
`window` samples, and the final summary's percentiles from a DDSketch per
stage (Datadog's quantile sketch: 1 % relative accuracy in at most 2,048
buckets, whatever the number of samples), so a service running for months
holds the same few hundred kilobytes as one running for a minute.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque

import numpy as np
from ddsketch import LogCollapsingLowestDenseDDSketch

STAGES = ("capture", "detect", "classify", "render")


def percentiles(values, qs=(50, 95)) -> dict[str, float]:
    """{'p50': ..., 'p95': ...} of `values`, or zeros when there are none."""
    if len(values) == 0:
        return {f"p{q}": 0.0 for q in qs}
    result = np.percentile(np.asarray(values, dtype=float), qs)
    return {f"p{q}": round(float(v), 3) for q, v in zip(qs, result, strict=True)}


SKETCH_ACCURACY = 0.01  # relative error of a final percentile
SKETCH_BINS = 2048  # the most buckets a sketch keeps: bounded memory


class Sketch:
    """Percentiles and the maximum of a stream of positive values, in fixed memory."""

    def __init__(self) -> None:
        self._sketch = LogCollapsingLowestDenseDDSketch(SKETCH_ACCURACY, SKETCH_BINS)
        self.max = 0.0

    def add(self, value: float) -> None:
        self._sketch.add(max(0.0, float(value)))
        self.max = max(self.max, value)

    def __len__(self) -> int:
        return int(self._sketch.count)

    def percentiles(self, qs=(50, 95, 99)) -> dict[str, float]:
        if not len(self):
            return {f"p{q}": 0.0 for q in qs}
        return {f"p{q}": round(float(self._sketch.get_quantile_value(q / 100)), 3) for q in qs}


class RateMeter:
    """Events per second over a sliding window of monotonic timestamps.

    At most `max_events` timestamps are kept: beyond that rate the figure
    covers a shorter span, which is as accurate and bounds the memory.
    """

    def __init__(self, window_s: float = 5.0, max_events: int = 4096) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque(maxlen=max_events)

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
    """Counters and timings of one pipeline run; thread-safe, in fixed memory.

    Keeps the last `window` samples per stage for the periodic figures and a
    `Sketch` per stage for the final summary.
    """

    def __init__(self, window: int = 300) -> None:
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
        self._sketches = {name: Sketch() for name in (*STAGES, "latency")}
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
        self._sketches[name].add(value)

    def snapshot(self, final: bool = False) -> dict:
        """The figures as a JSON-ready dict; `final` covers the whole run (from the
        sketches, within 1 %), otherwise the last `window` frames."""
        with self._lock:
            elapsed = time.monotonic() - self.started
            if final:
                latency = self._sketches["latency"].percentiles((50, 95, 99))
                latency["max"] = round(self._sketches["latency"].max, 3)
                stage_ms = {name: self._sketches[name].percentiles() for name in STAGES}
            else:
                recent = self._recent["latency"]
                latency = percentiles(recent, (50, 95, 99))
                latency["max"] = round(max(recent, default=0.0), 3)
                stage_ms = {name: percentiles(self._recent[name]) for name in STAGES}
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
                "stage_ms": stage_ms,
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
