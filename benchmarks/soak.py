"""`python -m benchmarks --soak MINUTES`: does a long run stay flat?

The real pipeline on a looping clip paced like a camera (`--loop
--realtime`), headless, writing events as a service does, for N minutes.
Every few seconds it samples the process's resident memory; every frame's
end-to-end latency goes into one sketch for the first 10 % of the run and
one for the last 10 %. It reports the RSS slope after warm-up (MB per hour,
a least-squares fit), and FPS and p99 latency in the first against the last
10 %: a leak shows as a slope, a slow degradation as a last 10 % worse than
the first.

Paced at the clip's 15 fps, a pipeline that can do far more shows the same
FPS at both ends however much slower it has become. So the run also reads
the file unpaced (`Pipeline.unpaced_for`) for a burst right after the first
10 % and right before the last: the frames processed per second there are
what the pipeline can do, and they can move. Writes `soak.json` and
`soak.png` beside the other results.
"""

from __future__ import annotations

import logging
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from edge.config import RunConfig
from edge.frames import Result
from edge.stats import Sketch

log = logging.getLogger("benchmarks.soak")
SAMPLE_S = 5.0
EDGE = 0.10  # the first and last share of the run that are compared
BURST_S = 30.0  # an unpaced burst's length, at most; 5 % of a short run


def rss_mb() -> float:
    """The resident set size now (not the peak), in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KB elsewhere
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1e6


class Window:
    """Frames and latencies of the results that arrive between two times."""

    def __init__(self, start: float, end: float) -> None:
        self.start, self.end = start, end
        self.frames = 0
        self.latency = Sketch()

    def add(self, now: float, result: Result) -> None:
        if self.start <= now < self.end:
            self.frames += 1
            self.latency.add(result.latency_ms)

    def figures(self, span_s: float | None = None) -> dict:
        return {
            "fps": round(self.frames / (span_s or self.end - self.start), 2),
            "frames": self.frames,
            "latency_ms": self.latency.percentiles((50, 95, 99)),
        }


def soak(clip: str, minutes: float, sample_s: float = SAMPLE_S) -> dict:
    """Run the pipeline for `minutes` and return the figures (see the module doc)."""
    from edge.engine import Pipeline

    duration = minutes * 60
    with tempfile.TemporaryDirectory() as tmp:
        config = RunConfig.model_validate(
            {
                "source": {"name": clip, "loop": True, "realtime": True},
                "output": {"display": "none", "events": f"{tmp}/events.jsonl"},
                "run": {"duration": duration},
            }
        )
        burst = min(BURST_S, 0.05 * duration)
        # From the first result on: the first and last 10 % (paced), and the
        # unpaced bursts just after the first and just before the last.
        windows: list[Window] = []
        started = threading.Event()

        def on_result(result: Result) -> None:
            now = time.monotonic()
            if not windows:
                first_end, last_start = now + EDGE * duration, now + (1 - EDGE) * duration
                windows.extend(
                    [
                        Window(now, first_end),
                        Window(last_start, now + 2 * duration),
                        Window(first_end, first_end + burst),
                        Window(last_start - burst, last_start),
                    ]
                )
                started.set()
            for window in windows:
                window.add(now, result)

        pipeline = Pipeline(config, on_result=on_result)
        samples: list[tuple[float, float, int]] = []
        done = threading.Event()

        def sample() -> None:
            started.wait()
            if not windows:
                return  # the run ended before its first result
            t0 = windows[0].start
            while not done.wait(sample_s):
                samples.append((time.monotonic() - t0, rss_mb(), pipeline.stats.processed))

        def unpace() -> None:
            started.wait()
            for window in windows[2:]:
                if done.wait(window.start - time.monotonic()):
                    return
                pipeline.unpaced_for(burst)

        threading.Thread(target=unpace, daemon=True).start()
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        summary = pipeline.run()
        started.set()
        done.set()
        sampler.join()
        events_mb = Path(f"{tmp}/events.jsonl").stat().st_size / 1e6
    t = np.array([s[0] for s in samples])
    rss = np.array([s[1] for s in samples])
    warm = t >= EDGE * duration  # after warm-up: the model and buffers are allocated
    slope = float(np.polyfit(t[warm] / 3600, rss[warm], 1)[0]) if warm.sum() >= 2 else None
    return {
        "minutes": minutes,
        "clip": clip,
        "frames": summary["frames_processed"],
        "frames_skipped": summary["frames_skipped"],
        "events_mb": round(events_mb, 1),
        "rss_mb": {
            "after_warmup": round(float(rss[warm][0]), 1) if warm.any() else None,
            "end": round(float(rss[-1]), 1) if len(rss) else None,
            "max": round(float(rss.max()), 1) if len(rss) else None,
            "slope_mb_per_hour": None if slope is None else round(slope, 2),
        },
        "first_10_percent": windows[0].figures(),
        "last_10_percent": windows[1].figures(EDGE * duration),
        "unpaced_burst_s": round(burst, 1),
        "unpaced_start": windows[2].figures(),
        "unpaced_end": windows[3].figures(),
        "samples": [[round(a, 1), round(b, 2), c] for a, b, c in samples],
    }


def plot(result: dict, path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed: no soak plot")
        return None
    samples = np.array(result["samples"], float)
    if not len(samples):
        return None
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=110)
    ax.plot(samples[:, 0] / 60, samples[:, 1], color="#4a7fb5")
    ax.set_xlabel("minutes")
    ax.set_ylabel("resident memory, MB")
    slope = result["rss_mb"]["slope_mb_per_hour"]
    ax.set_title(
        f"Soak: {result['frames']:,} frames in {result['minutes']:g} min\n"
        f"RSS slope after warm-up {slope:+.2f} MB/h",
        fontsize=10,
    )
    ax.grid(alpha=0.3)
    low = max(0.0, samples[:, 1].min() - 50)
    ax.set_ylim(low, samples[:, 1].max() + 50)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
