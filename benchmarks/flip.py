"""`python -m benchmarks --flip`: what `[classifier] flip_average` costs the pipeline.

Flip averaging classifies each face and its mirror image and averages the
two (1.1 points on PublicTest for the shipped model). The classifier is a
small part of a frame, so it is worth having by default if the whole
pipeline barely slows: the rule is at most 5 % fewer frames a second.

The threaded pipeline runs the demo clip as fast as it goes, off and on in
alternating order (off-on, on-off, ...) in fresh processes, so drift in the
machine's load falls on both alike. Reported: median FPS of each, their
ratio, the median of the per-pair ratios, and the classify stage's p50.
Writes `flip.json` and `flip.md` into the results folder.
"""

from __future__ import annotations

import logging
import statistics

log = logging.getLogger("benchmarks.flip")
MAX_LOSS = 0.05  # the most of the pipeline's FPS flip averaging may cost to be the default


def run(clip: str, in_child, pairs: int = 5) -> dict:
    """`pairs` runs with flip averaging off and on each; `in_child` runs one
    configuration in a fresh process (benchmarks.__main__.in_child)."""
    runs: dict[str, list[dict]] = {"off": [], "on": []}
    for pair in range(pairs):
        order = ("off", "on") if pair % 2 == 0 else ("on", "off")
        for mode in order:
            runs[mode].append(in_child("threaded", clip, 0, flip_average=mode == "on"))
            log.info("flip %s, pair %d: %.1f FPS", mode, pair + 1, runs[mode][-1]["fps"])
    fps = {mode: [r["fps"] for r in rows] for mode, rows in runs.items()}
    classify = {
        mode: statistics.median(r["stage_ms"]["classify"]["p50"] for r in rows)
        for mode, rows in runs.items()
    }
    ratio = statistics.median(fps["on"]) / statistics.median(fps["off"])
    pair_ratios = [on / off for on, off in zip(fps["on"], fps["off"], strict=True)]
    return {
        "clip": clip,
        "pairs": pairs,
        "fps": fps,
        "fps_median": {mode: round(statistics.median(v), 1) for mode, v in fps.items()},
        "classify_ms_p50": {mode: round(v, 2) for mode, v in classify.items()},
        "faces": {mode: rows[0]["faces"] for mode, rows in runs.items()},
        "on_vs_off_fps": round(ratio, 3),
        "on_vs_off_fps_pairs_median": round(statistics.median(pair_ratios), 3),
        "max_loss": MAX_LOSS,
        "nearly_free": statistics.median(pair_ratios) >= 1 - MAX_LOSS,
    }


def table(result: dict) -> str:
    fps, classify = result["fps_median"], result["classify_ms_p50"]
    lines = [
        "| flip_average | FPS (median) | classify p50 (ms per frame) |",
        "|---|---:|---:|",
        f"| off | {fps['off']:.1f} | {classify['off']:.2f} |",
        f"| on | {fps['on']:.1f} | {classify['on']:.2f} |",
        "",
        f"On vs off: {result['on_vs_off_fps']:.3f} of the FPS (medians), "
        f"{result['on_vs_off_fps_pairs_median']:.3f} (median of {result['pairs']} "
        f"side-by-side pairs). The rule for the default: at least {1 - result['max_loss']:.2f}: "
        f"{'met' if result['nearly_free'] else 'not met'}.",
    ]
    return "\n".join(lines) + "\n"
