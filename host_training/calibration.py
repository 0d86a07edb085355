"""Confidences that mean what they say: a held-out split, ECE and a temperature.

The overlay, the events and MQTT show the model's top probability as its
confidence. Whether 0.8 means "right four times in five" is measured here
against the FER+ crowd: a face's confidence is compared with the share of
its ten annotators who chose the same emotion (the chance that one annotator
drawn at random agrees), on faces held out from the fine-tune.

The held-out faces are picked by a hash of their file name, not by a random
draw, so every run and every evaluation agrees on them without a file that
lists them (`in_calibration_split`).
"""

from __future__ import annotations

import hashlib

import numpy as np

from edge.classifier import with_temperature

BINS = 10
"""Equal-width confidence bins for the expected calibration error."""


def in_calibration_split(files: np.ndarray, fraction: float) -> np.ndarray:
    """Boolean mask: the faces whose file name hashes into the first `fraction`.

    Stable across runs, machines and orderings; about `fraction` of each class.
    """
    if fraction <= 0:
        return np.zeros(len(files), dtype=bool)
    scale = 2**32
    cut = int(fraction * scale)
    return np.array(
        [int.from_bytes(hashlib.sha1(str(f).encode()).digest()[:4], "big") < cut for f in files],
        dtype=bool,
    )


def expected_calibration_error(probs: np.ndarray, crowd: np.ndarray, bins: int = BINS) -> float:
    """ECE against the crowd: faces binned by confidence (the top probability);
    in each bin, the gap between the mean confidence and the mean share of
    annotators who chose the predicted emotion; the gaps weighted by bin size.
    `crowd`: (N, classes) vote distributions in the same label order."""
    confidence = probs.max(axis=1)
    agreed = crowd[np.arange(len(probs)), probs.argmax(axis=1)]
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    gap = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            gap += members.sum() * abs(confidence[members].mean() - agreed[members].mean())
    return float(gap / max(1, len(probs)))


def reliability(probs: np.ndarray, crowd: np.ndarray, bins: int = BINS) -> list[dict]:
    """Per confidence bin: faces, mean confidence, mean crowd agreement."""
    confidence = probs.max(axis=1)
    agreed = crowd[np.arange(len(probs)), probs.argmax(axis=1)]
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    rows = []
    for b in range(bins):
        members = which == b
        if members.any():
            rows.append(
                {
                    "bin": [round(float(edges[b]), 2), round(float(edges[b + 1]), 2)],
                    "faces": int(members.sum()),
                    "confidence": round(float(confidence[members].mean()), 4),
                    "agreement": round(float(agreed[members].mean()), 4),
                }
            )
    return rows


def fit_temperature(probs: np.ndarray, crowd: np.ndarray) -> float:
    """The T in [0.25, 4] that minimises the cross-entropy against the crowd's
    distributions (golden-section search on log T: the loss is unimodal)."""

    def loss(log_t: float) -> float:
        p = with_temperature(probs, float(np.exp(log_t)))
        return float(-(crowd * np.log(np.clip(p, 1e-9, 1.0))).sum(axis=1).mean())

    lo, hi = np.log(0.25), np.log(4.0)
    ratio = (np.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    for _ in range(60):
        if loss(a) < loss(b):
            hi = b
        else:
            lo = a
        a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    return round(float(np.exp((lo + hi) / 2)), 3)
