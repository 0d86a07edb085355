"""`python -m benchmarks --flip`: what `[classifier] flip_average` costs the pipeline.

Flip averaging classifies each face and its mirror image and averages the
two (1.1 points on PublicTest for the shipped model). The classifier is a
small part of a frame, so it is worth having by default if the whole
pipeline barely slows: the rule is at most 5 % fewer frames a second.

The threaded pipeline runs the demo clip as fast as it goes, off and on in
alternating order (off-on, on-off, ...) in fresh processes, so drift in the
machine's load falls on both alike. Reported: median FPS of each, their
ratio, the median of the per-pair ratios with a distribution-free 90+ %
confidence interval (order statistics of the pair ratios, sign test), and
the classify stage's p50, whose difference over the frame time is a second,
far less noisy estimate of the loss.

The rule states what the run can resolve: flip averaging is the default
when the interval's lower end is at least 1 - MAX_LOSS ("resolved"); when the
interval reaches below it the run cannot tell, and says so ("unresolved: the
spread is wider than the loss looked for"), and the stage-cost estimate
decides. Writes `flip.json` and `flip.md` into the results folder.
"""

from __future__ import annotations

import logging
import math
import statistics

log = logging.getLogger("benchmarks.flip")
MAX_LOSS = 0.05  # the most of the pipeline's FPS flip averaging may cost to be the default
PAIRS = 9  # the median's interval is then from the 2nd to the 8th ratio: 96 % (sign test)


def median_interval(values: list[float]) -> tuple[float, float, float]:
    """(low, high, confidence) of a distribution-free interval for the median:
    the k-th smallest and k-th largest values, k the largest with >= 90 %
    coverage (at n = 5 only the extremes, 94 %)."""
    ordered, n = sorted(values), len(values)

    def coverage(k: int) -> float:
        return 1 - 2 * sum(math.comb(n, i) for i in range(k)) / 2**n

    k = 1
    while k + 1 <= n // 2 and coverage(k + 1) >= 0.90:
        k += 1
    return ordered[k - 1], ordered[n - k], coverage(k)


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
    low, high, confidence = median_interval(pair_ratios)
    frame_ms = 1000 / statistics.median(fps["off"])
    stage_loss = (classify["on"] - classify["off"]) / (frame_ms + classify["on"] - classify["off"])
    if low >= 1 - MAX_LOSS:
        verdict = "resolved: met"
    elif high < 1 - MAX_LOSS:
        verdict = "resolved: not met"
    else:
        verdict = "unresolved: the spread is wider than the loss looked for"
    return {
        "clip": clip,
        "pairs": pairs,
        "fps": fps,
        "fps_median": {mode: round(statistics.median(v), 1) for mode, v in fps.items()},
        "classify_ms_p50": {mode: round(v, 2) for mode, v in classify.items()},
        "faces": {mode: rows[0]["faces"] for mode, rows in runs.items()},
        "on_vs_off_fps": round(ratio, 3),
        "on_vs_off_fps_pairs_median": round(statistics.median(pair_ratios), 3),
        "pair_ratios": [round(r, 3) for r in pair_ratios],
        "pairs_interval": [round(low, 3), round(high, 3)],
        "pairs_interval_confidence": round(confidence, 3),
        "stage_cost_loss": round(stage_loss, 4),
        "max_loss": MAX_LOSS,
        "verdict": verdict,
        "nearly_free": verdict == "resolved: met"
        or (verdict.startswith("unresolved") and stage_loss <= MAX_LOSS),
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
        f"side-by-side pairs; {100 * result['pairs_interval_confidence']:.0f} % interval "
        f"{result['pairs_interval'][0]:.3f} to {result['pairs_interval'][1]:.3f}). "
        f"The rule for the default: at least {1 - result['max_loss']:.2f}: "
        f"{result['verdict']}. Stage-cost estimate of the loss: "
        f"{100 * result['stage_cost_loss']:.1f} % of the frame time. "
        f"Default: {'on' if result['nearly_free'] else 'off'}.",
    ]
    return "\n".join(lines) + "\n"
