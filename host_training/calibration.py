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
