"""`python -m benchmarks --far`: what the far-face search costs where there is
nothing far to find, what it invents there, and how the default starts.

- **FPS, default against `[detector] tiles = 1`** (the whole-frame pass
  alone), side by side: `PAIRS` alternated pairs of fresh processes on the
  demo clip and on a clip of one person filling the frame
  (`benchmarks.workloads.make_near_face_clip`), as fast as they go. Reported:
  the medians, their ratio, and the median pair ratio with its
  distribution-free interval (`benchmarks.flip.median_interval`).
- **Paced like a 30 fps camera** on the near clip: FPS, frames dropped and
  CPU % of each setting, where a spare core can absorb the search.
- **Phantom tracks** on the near clip: tracks other than the person's, per
  minute of video, through the real analyzer and tracker (target 0).
- **Start-up and memory**: the real CLI (`python -m edge run` on the demo
  clip), timed from its launch to the first frame event written, its peak
  RSS, and how many of its output lines are not the project's own format.

Writes `far.json` and `far.md` into the results folder.
"""

from __future__ import annotations

import json
import logging
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

from benchmarks.flip import median_interval
from benchmarks.workloads import make_near_face_clip
from edge.config import DEMO_CLIP, DetectorConfig

log = logging.getLogger("benchmarks.far")
PAIRS = 5
NEAR_FRAMES = 450  # 15 s at 30 fps
OWN_LINE = re.compile(r"^\d\d:\d\d:\d\d (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: ")


def side_by_side(clip: str, in_child, pairs: int) -> dict:
    """Default and tiles = 1, alternated in fresh processes."""
    runs: dict[str, list[dict]] = {"default": [], "tiles_1": []}
    for pair in range(pairs):
        order = ("default", "tiles_1") if pair % 2 == 0 else ("tiles_1", "default")
        for mode in order:
            tiles = None if mode == "default" else 1
            runs[mode].append(in_child("threaded", clip, 0, tiles=tiles))
            log.info("far %s, pair %d: %.1f FPS", mode, pair + 1, runs[mode][-1]["fps"])
    fps = {mode: [r["fps"] for r in rows] for mode, rows in runs.items()}
    ratios = [d / t for d, t in zip(fps["default"], fps["tiles_1"], strict=True)]
    low, high, confidence = median_interval(ratios)
    return {
        "clip": Path(clip).name,
        "fps": fps,
        "fps_median": {mode: round(statistics.median(v), 1) for mode, v in fps.items()},
        "ratio": round(statistics.median(fps["default"]) / statistics.median(fps["tiles_1"]), 3),
        "pair_ratio_median": round(statistics.median(ratios), 3),
        "pair_ratio_interval": [round(low, 3), round(high, 3), round(confidence, 3)],
        "cpu_percent_median": {
            mode: round(statistics.median(r["cpu_percent"] for r in rows), 1)
            for mode, rows in runs.items()
        },
        "faces": {mode: rows[0]["faces"] for mode, rows in runs.items()},
    }


def paced(clip: str, in_child) -> dict:
    """Each setting once, the clip played at its 30 fps like a camera."""
    out = {}
    for mode, tiles in (("default", None), ("tiles_1", 1)):
        r = in_child("threaded", clip, 0, realtime=True, tiles=tiles)
        out[mode] = {k: r[k] for k in ("fps", "frames", "frames_skipped", "cpu_percent")}
        out[mode]["latency_ms_p95"] = r["latency_ms"]["p95"]
    return out


def phantoms(clip: str) -> dict:
    """Tracks the default finds on a clip of one person, per minute of video."""
    from edge.analysis import FaceAnalyzer
    from edge.config import ClassifierConfig
    from edge.tracking import Tracker

    capture = cv2.VideoCapture(clip)
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    tracks: dict[int, int] = {}
    frames = 0
    with FaceAnalyzer.from_config(DetectorConfig(), ClassifierConfig()) as analyzer:
        tracker = Tracker()
        while (read := capture.read())[0]:
            for face in tracker.track(analyzer.analyze(read[1]), read[1]):
                tracks[face.track] = tracks.get(face.track, 0) + 1
            frames += 1
    capture.release()
    minutes = frames / fps / 60
    person = max(tracks, key=tracks.get) if tracks else None
    return {
        "frames": frames,
        "tracks": len(tracks),
        "person_frames": tracks.get(person, 0),
        "phantom_tracks_per_minute": round((len(tracks) - (person is not None)) / minutes, 1),
    }


def start_up(python: str = sys.executable, frames: int = 450) -> dict:
    """The real CLI on the demo clip, run by `python` (a venv's, e.g. one
    without TensorFlow, as on a Pi): seconds from launch to the first frame
    event on disk, peak RSS, and its output lines that are not the project's."""
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('tensorflow') is None)"
    tensorflow = subprocess.run([python, "-c", probe], check=False).returncode == 0
    with tempfile.TemporaryDirectory() as tmp:
        events = Path(tmp) / "events.jsonl"
        command = [python, "-m", "edge", "run", "--source", str(DEMO_CLIP)]
        command += ["--display", "none", "--max-frames", str(frames), "--events", str(events)]
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        first = None
        while first is None and proc.poll() is None:
            if events.is_file() and '"type":"frame"' in events.read_text().replace(" ", ""):
                first = time.perf_counter() - t0
            else:
                time.sleep(0.005)
        output, _ = proc.communicate(timeout=300)
    lines = [line for line in output.splitlines() if line.strip()]
    return {
        "python": python,
        "tensorflow_installed": tensorflow,
        "first_frame_s": None if first is None else round(first, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        "output_lines": len(lines),
        "foreign_lines": [line for line in lines if not OWN_LINE.match(line)],
        "returncode": proc.returncode,
    }


# Run by the measured interpreter: resident MB added by each step of a start.
_IMPORT_COSTS = """
import json, sys
def rss():
    with open("/proc/self/status") as status:
        return int(status.read().split("VmRSS:")[1].split()[0]) / 1024
steps, last = {}, rss()
def step(name):
    global last
    now = rss(); steps[name] = round(now - last, 1); last = now
steps["python"] = round(last, 1)
import numpy; step("numpy")
import cv2; step("OpenCV (cv2)")
import pydantic; step("pydantic")
import edge.config; step("edge.config (its pydantic models)")
import edge.engine, edge.cli; step("the rest of edge")
from edge.config import ClassifierConfig, DetectorConfig
from edge.analysis import FaceAnalyzer
analyzer = FaceAnalyzer.from_config(DetectorConfig(), ClassifierConfig()).open()
step("LiteRT and the three models, loaded")
loaded = {name: name in sys.modules for name in ("matplotlib", "mediapipe")}
print(json.dumps({"steps": steps, "total": round(rss(), 1), **loaded}))
"""


def import_costs(python: str = sys.executable) -> dict:
    """Resident MB each step of a start adds, in `python`'s venv: what the
    peak is made of (and whether matplotlib or mediapipe came along)."""
    out = subprocess.run(
        [python, "-c", _IMPORT_COSTS], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def run(in_child, call_in_child, pairs: int = PAIRS, python: str = sys.executable) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        near = str(make_near_face_clip(Path(tmp) / "near.mp4", NEAR_FRAMES))
        log.info("far: start-up of the real CLI (%s)", python)
        start = call_in_child(start_up, python)
        start["import_costs"] = import_costs(python)
        result = {
            "near_clip": f"make_near_face_clip: {NEAR_FRAMES} frames, 640x360, 30 fps",
            "start_up": start,
            "unpaced": {
                "demo": side_by_side(str(DEMO_CLIP), in_child, pairs),
                "near": side_by_side(near, in_child, pairs),
            },
            "paced_30fps_near": paced(near, in_child),
            "phantoms_near": call_in_child(phantoms, near),
        }
    return result


def table(result: dict) -> str:
    lines = [
        "| clip | FPS default | FPS tiles = 1 | ratio of medians | pair ratios: median "
        "[interval] | CPU % default / tiles = 1 |",
        "|---|---:|---:|---:|---|---|",
    ]
    for name, r in result["unpaced"].items():
        low, high, confidence = r["pair_ratio_interval"]
        cpu = r["cpu_percent_median"]
        lines.append(
            f"| {name} ({r['clip']}) | {r['fps_median']['default']} | "
            f"{r['fps_median']['tiles_1']} | {r['ratio']} | {r['pair_ratio_median']} "
            f"[{low}, {high}] ({100 * confidence:.0f} %) | {cpu['default']:.0f} / "
            f"{cpu['tiles_1']:.0f} |"
        )
    p = result["paced_30fps_near"]
    ph = result["phantoms_near"]
    s = result["start_up"]
    lines += [
        "",
        f"Paced at 30 fps (near clip): default {p['default']['fps']} FPS, "
        f"{p['default']['frames_skipped']} dropped, {p['default']['cpu_percent']:.0f} % CPU; "
        f"tiles = 1 {p['tiles_1']['fps']} FPS, {p['tiles_1']['frames_skipped']} dropped, "
        f"{p['tiles_1']['cpu_percent']:.0f} % CPU.",
        f"Phantom tracks on the near clip: {ph['phantom_tracks_per_minute']} per minute "
        f"({ph['tracks']} track(s) in {ph['frames']} frames; the person in "
        f"{ph['person_frames']}).",
        f"Start-up (`python -m edge run`, demo clip, "
        f"{'with' if s['tensorflow_installed'] else 'no'} TensorFlow installed): first frame after "
        f"{s['first_frame_s']} s, peak RSS {s['peak_rss_mb']} MB, {s['output_lines']} "
        f"output lines, {len(s['foreign_lines'])} not in the project's format.",
    ]
    costs = s.get("import_costs")
    if costs:
        parts = ", ".join(f"{name} {mb:g}" for name, mb in costs["steps"].items())
        lines.append(
            f"What a start holds (resident MB each step adds, same venv): {parts}; "
            f"{costs['total']:g} MB in all before the first frame. matplotlib imported: "
            f"{'yes' if costs['matplotlib'] else 'no'}; mediapipe: "
            f"{'yes' if costs['mediapipe'] else 'no'}."
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # one start-up measurement in this interpreter's venv
    print(json.dumps(start_up(), indent=2))
