"""`python -m benchmarks --ensemble`: what `[classifier] models = [a, b]` costs.

An ensemble of two int8 models runs the classifier twice per face (each with
flip averaging). The issue's rule for making one the default: at most 10 %
of the pipeline's FPS, besides its accuracy (docs/training.md). The cost
depends on the members' architecture, not their weights, so this measures
the shipped model against the shipped model with a committed model of the
same architecture (`host_training/teachers/cnn-swa2.tflite`), in alternated
fresh processes on the demo clip. Writes `ensemble.json` and `ensemble.md`.
"""

from __future__ import annotations

import logging
import statistics

from benchmarks.flip import median_interval
from edge.config import MODELS_DIR, REPO_ROOT

log = logging.getLogger("benchmarks.ensemble")
PAIRS = 5
MAX_LOSS = 0.10
PARTNER = REPO_ROOT / "host_training" / "teachers" / "cnn-swa2.tflite"


def run(clip: str, in_child, pairs: int = PAIRS) -> dict:
    shipped = str(MODELS_DIR / "emotion_int8.tflite")
    members = {"one": None, "two": [shipped, str(PARTNER)]}
    runs: dict[str, list[dict]] = {"one": [], "two": []}
    for pair in range(pairs):
        for mode in ("one", "two") if pair % 2 == 0 else ("two", "one"):
            runs[mode].append(in_child("threaded", clip, 0, models=members[mode]))
            log.info("ensemble %s, pair %d: %.1f FPS", mode, pair + 1, runs[mode][-1]["fps"])
    fps = {mode: [r["fps"] for r in rows] for mode, rows in runs.items()}
    ratios = [two / one for two, one in zip(fps["two"], fps["one"], strict=True)]
    low, high, confidence = median_interval(ratios)
    return {
        "clip": clip,
        "pairs": pairs,
        "partner": PARTNER.name,
        "fps": fps,
        "fps_median": {mode: round(statistics.median(v), 1) for mode, v in fps.items()},
        "classify_ms_p50": {
            mode: round(statistics.median(r["stage_ms"]["classify"]["p50"] for r in rows), 2)
            for mode, rows in runs.items()
        },
        "two_vs_one_fps": round(statistics.median(fps["two"]) / statistics.median(fps["one"]), 3),
        "pair_ratio_median": round(statistics.median(ratios), 3),
        "pair_ratio_interval": [round(low, 3), round(high, 3), round(confidence, 3)],
        "max_loss": MAX_LOSS,
    }


def table(result: dict) -> str:
    fps, classify = result["fps_median"], result["classify_ms_p50"]
    low, high, confidence = result["pair_ratio_interval"]
    return (
        "\n".join(
            [
                "| `[classifier]` | FPS (median) | classify p50 (ms per frame) |",
                "|---|---:|---:|",
                f"| `model` (the shipped one) | {fps['one']:.1f} | {classify['one']:.2f} |",
                f"| `models` = the shipped one and {result['partner']} | {fps['two']:.1f} | "
                f"{classify['two']:.2f} |",
                "",
                f"Two models vs one: {result['two_vs_one_fps']:.3f} of the FPS (medians); "
                f"{result['pair_ratio_median']:.3f} (median of {result['pairs']} alternated pairs; "
                f"{100 * confidence:.0f} % interval {low:.3f} to {high:.3f}); the default's "
                f"rule allows at least {1 - result['max_loss']:.2f}.",
            ]
        )
        + "\n"
    )
