"""`python -m benchmarks --batch`: many videos through `emotion-edge analyze`
with 1, 2, ... N local Dask workers, side by side on the same clips.

The clips are the demo clip itself, copied (`VIDEOS` of them: a study's
videos are many and alike). Each worker count runs the real command in a
fresh process, into a fresh folder, and the counts are alternated over the
rounds so a busy machine slows each alike; the figure is the median
wall time per count, and the speed-up the median of each round's ratio to
one worker.
"""

from __future__ import annotations

import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from edge.batch import local_workers
from edge.config import DEMO_CLIP
from edge.sources.video import VideoSource

log = logging.getLogger("benchmarks.batch")
VIDEOS = 8


def _once(videos: Path, out: Path, workers: int) -> float:
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge",
            "analyze",
            str(videos),
            "--out",
            str(out),
            "--workers",
            str(workers),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "TQDM_DISABLE": "1"},
    )
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"analyze with {workers} worker(s) failed: {proc.stderr[-2000:]}")
    return elapsed


def run(rounds: int = 3, videos: int = VIDEOS) -> dict:
    counts = sorted({1, 2, local_workers()})
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "videos"
        folder.mkdir()
        for n in range(videos):
            shutil.copy(DEMO_CLIP, folder / f"participant{n:02d}{DEMO_CLIP.suffix}")
        seconds: dict[int, list[float]] = {n: [] for n in counts}
        for r in range(rounds):
            for n in counts if r % 2 == 0 else counts[::-1]:
                seconds[n].append(_once(folder, Path(scratch) / "out", n))
                log.info("batch: %d worker(s), round %d: %.1f s", n, r + 1, seconds[n][-1])
    speedups = {
        n: round(statistics.median(a / b for a, b in zip(seconds[1], s, strict=True)), 2)
        for n, s in seconds.items()
    }
    return {
        "videos": videos,
        "frames_per_video": _frames(DEMO_CLIP),
        "cores": local_workers(),
        "rounds": rounds,
        "seconds": {str(n): [round(s, 2) for s in v] for n, v in seconds.items()},
        "median_s": {str(n): round(statistics.median(v), 2) for n, v in seconds.items()},
        "speedup_vs_1": {str(n): s for n, s in speedups.items()},
    }


def _frames(clip: Path) -> int:
    with VideoSource(clip) as source:
        return source.frame_count


def table(result: dict) -> str:
    lines = [
        "| workers | median wall time | speed-up vs 1 (median of rounds) |",
        "|---:|---:|---:|",
    ]
    for n, median in result["median_s"].items():
        lines.append(f"| {n} | {median:.1f} s | {result['speedup_vs_1'][n]:.2f}x |")
    lines += [
        "",
        f"{result['videos']} videos of {result['frames_per_video']} frames each, "
        f"`emotion-edge analyze FOLDER --workers N` (whole command, cluster start "
        f"included), {result['rounds']} alternated rounds, {result['cores']} cores.",
    ]
    return "\n".join(lines) + "\n"
