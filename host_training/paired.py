"""Two models' right/wrong answers on the same faces, compared paired: the
difference with a bootstrap interval, and McNemar's exact test on the faces
where they disagree. Shared by host_training.compare (crops) and
host_training.pipeline_check (the whole pipeline)."""

from __future__ import annotations

import math

import numpy as np

BOOTSTRAP = 2000


def paired_difference(
    shipped: np.ndarray, candidate: np.ndarray, rounds: int = BOOTSTRAP, seed: int = 0
) -> dict:
    """How much more often `candidate` is right than `shipped` on the same
    faces (boolean arrays, one entry per face), with its 95 % bootstrap
    interval and McNemar's exact p."""
    shipped, candidate = np.asarray(shipped, bool), np.asarray(candidate, bool)
    if shipped.shape != candidate.shape or shipped.ndim != 1 or not len(shipped):
        raise ValueError("two equal, non-empty lists of right/wrong answers, one per face")
    n = len(shipped)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, n, size=(rounds, n))
    diffs = candidate[picks].mean(axis=1) - shipped[picks].mean(axis=1)
    low, high = np.percentile(diffs, [2.5, 97.5])
    gained = int((candidate & ~shipped).sum())  # right now, wrong before
    lost = int((shipped & ~candidate).sum())
    return {
        "faces": n,
        "shipped": round(float(shipped.mean()), 4),
        "candidate": round(float(candidate.mean()), 4),
        "difference": round(float(candidate.mean() - shipped.mean()), 4),
        "interval_95": [round(float(low), 4), round(float(high), 4)],
        "gained": gained,
        "lost": lost,
        "mcnemar_p": round(mcnemar_p(gained, lost), 4),
    }


def mcnemar_p(gained: int, lost: int) -> float:
    """Exact two-sided McNemar p: the chance of a split at least this uneven
    among the faces where the two disagree, were each as likely either way."""
    n = gained + lost
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(gained, lost) + 1)) / 2**n
    return min(1.0, 2 * tail)
