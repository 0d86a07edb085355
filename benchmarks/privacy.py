"""`python -m benchmarks --privacy`: how many true faces leave in clear under
`[privacy] faces = "blur"`, before and after failing closed, and what it costs.

Clips made from the demo clip, whose true face boxes are known
(assets/demo/faces.truth.json): `demo` as it is; `edge`, the picture shifted
right so each face runs off the frame's edge (the detector misses most
there); `far`, the picture at a quarter of its size walking in across a grey
room (the far search's case: a tile's find waits a frame to be confirmed).
Each runs through the real pipeline (tiles on, as for a far camera) once,
with `[privacy]`'s defaults, and the edge clip once more without the edge
band (`edge_band = 0`): what the band is for.

A true face is "in clear" when its inner half keeps a tenth or more of its
detail (scripts/privacy_detail.py's measure, as tests/test_privacy.py uses),
measured on the picture as privacy leaves it before anything is drawn
(`private_copy`): label text and boxes cannot count as a face. "Before" is
the same results rendered as the old rule did, each labelled face's box and
nothing else; "after" adds what now fails closed (`Result.hidden`, a stream's
concealed start). The costs: the share of the picture privacy changes (the
mean over frames, a stream's concealed start left out), and the pipeline's
offline FPS with privacy off and on, alternated in pairs.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import statistics
import tempfile
from pathlib import Path

import cv2
import numpy as np

from edge.config import DEMO_CLIP, RunConfig
from edge.engine import Pipeline
from edge.frames import Result
from edge.overlay import private_copy

log = logging.getLogger("benchmarks.privacy")
ROOT = Path(__file__).resolve().parent.parent
TRUTH = ROOT / "assets" / "demo" / "faces.truth.json"
MAX_DETAIL = 0.1

_spec = importlib.util.spec_from_file_location("privacy_detail", ROOT / "scripts/privacy_detail.py")
_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_script)
detail = _script.detail


def make_clip(kind: str, folder: Path) -> tuple[Path, dict[int, list]]:
    """A clip of `kind` and its true boxes per frame (those at least 24 px wide)."""
    truth = {f["frame"]: [face["box"] for face in f["faces"]] for f in _truth()["frames"]}
    cap = cv2.VideoCapture(str(DEMO_CLIP))
    fps = cap.get(cv2.CAP_PROP_FPS)
    path = folder / f"{kind}.mkv"
    writer, boxes, index = None, {}, 0
    while True:
        ok, image = cap.read()
        if not ok:
            break
        height, width = image.shape[:2]
        if kind == "demo":
            out, shift, scale = image, (0, 0), 1.0
        elif kind == "edge":  # faces run off the right edge by a third of their width
            dx = width // 3
            out = np.full_like(image, 90)
            out[:, dx:] = image[:, : width - dx]
            shift, scale = (dx, 0), 1.0
        else:  # far: a quarter size, walking in from the left over 90 frames
            scale = 0.25
            small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            out = np.full_like(image, 90)
            x = min(width - small.shape[1], round(index * 5))
            y = height // 2 - small.shape[0] // 2
            out[y : y + small.shape[0], x : x + small.shape[1]] = small
            shift = (x, y)
        writer = writer or cv2.VideoWriter(
            str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height)
        )
        writer.write(out)
        kept = []
        for bx, by, bw, bh in truth.get(index, []):
            x0, y0 = round(bx * scale) + shift[0], round(by * scale) + shift[1]
            x1 = min(width, x0 + round(bw * scale))
            y1 = min(height, y0 + round(bh * scale))
            if x1 - x0 >= 24 and y1 - y0 >= 24:
                kept.append((x0, y0, x1 - x0, y1 - y0))
        boxes[index] = kept
        index += 1
    writer.release()
    cap.release()
    return path, boxes


def _truth() -> dict:
    return json.loads(TRUTH.read_text())


def in_clear(original: np.ndarray, shown: np.ndarray, box) -> bool:
    base = detail(original, box)
    return base > 0 and detail(shown, box) >= MAX_DETAIL * base


def obscured_share(image: np.ndarray, shown: np.ndarray) -> float:
    """Share of the picture privacy changed: what the viewer loses."""
    return float(np.any(np.abs(image.astype(np.int16) - shown) > 2, axis=-1).mean())


def leak(clip: Path, boxes: dict[int, list], edge_band: float | None = None) -> dict:
    """Share of true faces in clear, before and after, on one run of `clip`
    (with `[privacy] edge_band` as given, else its default)."""
    privacy = {"faces": "blur"} if edge_band is None else {"faces": "blur", "edge_band": edge_band}
    config = RunConfig.model_validate(
        {
            "source": {"name": str(clip)},
            "output": {"display": "none"},
            "detector": {"tiles": 3},
            "privacy": privacy,
        }
    )
    results: list[Result] = []
    Pipeline(config, on_result=results.append).run()
    counts = {"faces": 0, "before": 0, "after": 0, "concealed_frames": 0}
    obscured: dict[str, list[float]] = {"before": [], "after": []}
    for result in results:
        image = result.frame.image
        counts["concealed_frames"] += result.concealed
        old = Result(result.frame, result.faces)  # the old rule: labelled boxes only
        before, after = private_copy(image, old, "blur"), private_copy(image, result, "blur")
        if not result.concealed:  # a stream's start is all of it by design
            obscured["before"].append(obscured_share(image, before))
            obscured["after"].append(obscured_share(image, after))
        for box in boxes.get(result.frame.index, []):
            counts["faces"] += 1
            counts["before"] += in_clear(image, before, box)
            counts["after"] += in_clear(image, after, box)
    faces = max(1, counts["faces"])
    return {
        **counts,
        "frames": len(results),
        "before_share": round(counts["before"] / faces, 4),
        "after_share": round(counts["after"] / faces, 4),
        "obscured_mean": {k: round(float(np.mean(v)), 4) for k, v in obscured.items()},
    }


def cost(in_child, clip: str, pairs: int) -> dict:
    """Offline FPS with privacy off and on, alternated."""
    fps: dict[str, list[float]] = {"show": [], "blur": []}
    for pair in range(pairs):
        for mode in ("show", "blur") if pair % 2 == 0 else ("blur", "show"):
            fps[mode].append(in_child("threaded", clip, 0, privacy_faces=mode)["fps"])
            log.info("privacy %s, pair %d: %.1f FPS", mode, pair + 1, fps[mode][-1])
    ratios = [on / off for on, off in zip(fps["blur"], fps["show"], strict=True)]
    return {
        "fps": fps,
        "fps_median": {mode: round(statistics.median(v), 1) for mode, v in fps.items()},
        "blur_vs_show_pairs": [round(r, 3) for r in ratios],
        "blur_vs_show_median": round(statistics.median(ratios), 3),
    }


def run(in_child, pairs: int = 5) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        clips = {}
        for kind in ("demo", "edge", "far"):
            path, boxes = make_clip(kind, Path(scratch))
            clips[kind] = leak(path, boxes)
            log.info("privacy %s: %s", kind, clips[kind])
            if kind == "edge":  # what the band is for: the same clip without it
                clips["edge, edge_band 0"] = leak(path, boxes, edge_band=0.0)
                log.info("privacy edge without the band: %s", clips["edge, edge_band 0"])
    return {
        "clips": clips,
        "target_share": 0.01,
        "cost": cost(in_child, str(DEMO_CLIP), pairs),
    }


def table(result: dict) -> str:
    lines = [
        "| clip | true faces | in clear before | in clear after "
        "| frames concealed at start | picture obscured before / after |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for kind, row in result["clips"].items():
        share = row.get("obscured_mean")
        obscured = (
            f"{100 * share['before']:.1f} % / {100 * share['after']:.1f} %" if share else "n/a"
        )
        lines.append(
            f"| {kind} | {row['faces']} | {100 * row['before_share']:.1f} % "
            f"({row['before']}) | {100 * row['after_share']:.1f} % ({row['after']}) | "
            f"{row['concealed_frames']} | {obscured} |"
        )
    cost = result["cost"]
    lines += [
        "",
        f"Target: under {100 * result['target_share']:.0f} % in clear on every clip. "
        f"Cost, the demo clip offline: {cost['fps_median']['show']:.1f} FPS without privacy, "
        f"{cost['fps_median']['blur']:.1f} with blur (median of pair ratios "
        f"{cost['blur_vs_show_median']:.3f}, {len(cost['blur_vs_show_pairs'])} pairs).",
    ]
    return "\n".join(lines) + "\n"
