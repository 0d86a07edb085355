"""The pipeline with the web page on: throughput and CPU with 0 and N stream viewers.

Viewers read `/stream.mjpg` as a browser does, from threads of a separate
process, so their own CPU time is not charged to the pipeline; it is
reported beside it (`viewers_cpu_percent`), since on one machine they share
its cores, where a Pi's viewers are phones and laptops. The figures
cover only the span when every viewer is receiving frames (for 0 viewers, the
same span after warm-up), so start-up and connection time are left out.
"""

from __future__ import annotations

import multiprocessing
import resource
import threading
import time
import urllib.request

from edge.config import RunConfig

WARMUP_FRAMES = 10


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _viewer(url: str, received, index: int, stop) -> None:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            while not stop.is_set():
                line = response.readline()
                if not line:
                    return
                if line.startswith(b"Content-Length:"):
                    response.readline()
                    response.read(int(line.split(b":")[1]))
                    received[index] += 1
    except OSError:
        return


def _audience(url: str, viewers: int, received, stop, cpu) -> None:
    """The viewers' process: one thread per viewer; its CPU seconds kept in `cpu`."""
    threads = [
        threading.Thread(target=_viewer, args=(url, received, i, stop), daemon=True)
        for i in range(viewers)
    ]
    for thread in threads:
        thread.start()
    while not stop.wait(0.1):
        cpu.value = _cpu_s()


def with_viewers(clip: str, viewers: int, realtime: bool = False) -> dict:
    """One run of the threaded pipeline with the web page and `viewers` viewers."""
    from edge.engine import Pipeline

    config = RunConfig.model_validate(
        {
            "source": {"name": clip, "realtime": realtime},
            "output": {"display": "none", "stats_interval": 3600},
            "web": {"listen": "127.0.0.1:0"},
        }
    )
    # The window ends at the last result, not when run() returns: closing the
    # web server waits for each connected stream to notice (up to its 0.5 s
    # poll), which is not processing and would count against the viewers.
    last_result = [0.0]
    pipeline = Pipeline(config, on_result=lambda _: last_result.__setitem__(0, time.monotonic()))
    summary: dict = {}
    runner = threading.Thread(target=lambda: summary.update(pipeline.run()))
    runner.start()
    while (web := pipeline.find_sink("web")) is None:
        if not runner.is_alive():
            raise RuntimeError("the pipeline stopped before its web page was up")
        time.sleep(0.01)
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    received = context.Array("l", max(1, viewers))
    audience_cpu = context.Value("d", 0.0)
    audience = context.Process(
        target=_audience, args=(web.url + "stream.mjpg", viewers, received, stop, audience_cpu)
    )
    audience.start()
    # From the viewers' first frames, and once their process has started up
    # (its imports are not what watching costs).
    while (
        pipeline.stats.processed < WARMUP_FRAMES
        or not all(received[:viewers])
        or audience_cpu.value == 0.0
    ):
        if not runner.is_alive():
            raise RuntimeError("the clip ended before the viewers were connected")
        time.sleep(0.005)
    t0, frames0, cpu0 = time.monotonic(), pipeline.stats.processed, _cpu_s()
    encoded0 = web.hub.encoded
    received0 = list(received[:viewers])
    viewers_cpu0 = audience_cpu.value
    runner.join()
    viewers_cpu = audience_cpu.value - viewers_cpu0
    stop.set()
    audience.join(10)
    elapsed = last_result[0] - t0
    frames = summary["frames_processed"] - frames0
    return {
        "viewers": viewers,
        "realtime": realtime,
        "fps": round(frames / elapsed, 2),
        "frames": frames,
        "latency_ms_p50": summary["latency_ms"]["p50"],
        "cpu_percent": round(100 * (_cpu_s() - cpu0) / elapsed, 1),
        "viewers_cpu_percent": round(100 * viewers_cpu / elapsed, 1),
        "encoded_fps": round((web.hub.encoded - encoded0) / elapsed, 2),
        "viewer_fps": [
            round((r - r0) / elapsed, 2)
            for r, r0 in zip(received[:viewers], received0, strict=True)
        ],
    }


def compare(clip: str, counts=(0, 3), repeats: int = 2, realtime: bool = False) -> dict:
    """Median figures per viewer count, runs interleaved (0, 3, 0, 3, ...)."""
    runs: dict[int, list[dict]] = {n: [] for n in counts}
    for _ in range(repeats):
        for n in counts:
            runs[n].append(with_viewers(clip, n, realtime))
    result: dict = {}
    if len(counts) == 2:  # each repeat's ratio, the runs side by side
        low, high = counts
        result["pair_ratios"] = [
            round(b["fps"] / a["fps"], 3) for a, b in zip(runs[low], runs[high], strict=True)
        ]
    for n, items in runs.items():
        items.sort(key=lambda r: r["fps"])
        result[str(n)] = items[len(items) // 2]
        result[str(n)]["fps_runs"] = [r["fps"] for r in items]
    return result
