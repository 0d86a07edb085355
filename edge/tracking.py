"""Per-face tracks across frames: stable ids and smoothed probabilities.

Faces are associated frame to frame by box overlap (IoU, greedy, best pairs
first: with a handful of faces that is as good as the Hungarian method), and
each track keeps an exponential moving average of its class probabilities so
the label does not flicker between two close classes from frame to frame.

Overlap alone would hand a track to whoever stands where its face was: a
person stepping in front of another, a scene cut, a new face in the same
place. Given the frame, each face also gets a small appearance descriptor (its
crop, 8x8 gray, normalised), and a pair whose crops do not look alike
(correlation under `min_similarity`) is not the same track: the new face
starts its own, so smoothing rarely mixes two people (how rarely is measured,
see `appearance`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from edge.frames import Face


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax1, bx1) - max(a[0], b[0]))
    ih = max(0.0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


DESCRIPTOR_SIDE = 8  # coarse: a few pixels of box jitter on a small face must not matter


def appearance(image: np.ndarray, box: Sequence[int]) -> np.ndarray | None:
    """The face crop as a zero-mean, unit-length 8x8 gray vector (None if empty).

    `scripts/tracker_similarity.py` measures it on the demo clip's
    detections and on PublicTest faces (benchmarks/results/dev-2core/
    tracker_similarity.json): `Tracker.min_similarity` is the midpoint of the
    same-face 1st percentile and the different-face 99th; 0.3 % of different-
    face pairs still reach it.
    """
    x, y, w, h = (int(v) for v in box)
    crop = image[max(0, y) : y + h, max(0, x) : x + w]
    if crop.size == 0:
        return None
    if crop.ndim == 3:
        crop = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    small = cv2.resize(crop, (DESCRIPTOR_SIDE, DESCRIPTOR_SIDE), interpolation=cv2.INTER_AREA)
    vector = small.astype(np.float32).ravel()
    vector -= vector.mean()
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 1e-6 else None


@dataclass
class Track:
    id: int
    box: tuple[int, int, int, int]
    probs: np.ndarray
    missed: int = 0
    descriptor: np.ndarray | None = None
    velocity: tuple[float, float] = (0.0, 0.0)  # pixels a frame, of the box's corner


class Tracker:
    """Assigns track ids and smooths probabilities.

    `alpha` is the weight of the newest frame in the moving average: 1.0
    turns smoothing off, 0.3 settles on a new expression in about 5 frames.
    A track survives `max_missed` frames without a match (a blink of the
    detector) before its id is retired.
    """

    def __init__(
        self,
        alpha: float = 0.4,
        iou_threshold: float = 0.3,
        max_missed: int = 5,
        min_similarity: float = 0.76,  # scripts/tracker_similarity.py's rule
    ):
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"smoothing alpha must be in (0, 1], got {alpha}")
        self.alpha = alpha
        self.min_similarity = min_similarity
        self.iou_threshold = iou_threshold
        self.max_missed = max_missed
        self.tracks: list[Track] = []
        self._next_id = 1

    def track(self, faces: Sequence[Face], image: np.ndarray | None = None) -> list[Face]:
        """The same faces with track ids and smoothed probabilities (and the
        label and confidence that follow from them). With the frame `image`,
        a face must also look like its track to continue it."""
        if not faces:
            self.update([], np.zeros((0, 0), np.float32))
            return []
        labels = tuple(faces[0].probs)
        probs = np.array([[face.probs[label] for label in labels] for face in faces], np.float32)
        descriptors = [appearance(image, face.box) for face in faces] if image is not None else None
        tracks = self.update([face.box for face in faces], probs, descriptors)
        return [
            Face.classified(face.box, face.score, labels, smoothed, track_id)
            for face, (track_id, smoothed) in zip(faces, tracks, strict=True)
        ]

    def update(
        self,
        boxes: Sequence[Sequence[int]],
        probs: np.ndarray,
        descriptors: Sequence[np.ndarray | None] | None = None,
    ) -> list[tuple[int, np.ndarray]]:
        """(track id, smoothed probabilities) for each box, in input order."""
        descriptors = descriptors or [None] * len(boxes)
        pairs = sorted(
            (
                (iou(track.box, box), t, d)
                for t, track in enumerate(self.tracks)
                for d, box in enumerate(boxes)
            ),
            reverse=True,
        )
        matched_tracks: set[int] = set()
        assignment: dict[int, Track] = {}
        for overlap, t, d in pairs:
            if overlap < self.iou_threshold:
                break
            if t in matched_tracks or d in assignment:
                continue
            if not self._looks_alike(self.tracks[t].descriptor, descriptors[d]):
                continue  # another face where this one was
            matched_tracks.add(t)
            assignment[d] = self.tracks[t]
        out = []
        seen: set[int] = set()
        for d, box in enumerate(boxes):
            track = assignment.get(d)
            if track is None:
                track = Track(self._next_id, tuple(box), np.asarray(probs[d], np.float32))
                track.descriptor = descriptors[d]
                self._next_id += 1
                self.tracks.append(track)
            else:
                track.probs = self.alpha * probs[d] + (1.0 - self.alpha) * track.probs
                steps = track.missed + 1  # frames since it was last seen
                track.velocity = (
                    (box[0] - track.box[0]) / steps,
                    (box[1] - track.box[1]) / steps,
                )
                track.box = tuple(box)
                track.missed = 0
                if descriptors[d] is not None:
                    track.descriptor = descriptors[d]  # faces change slowly: the latest look
            seen.add(track.id)
            out.append((track.id, track.probs))
        for track in self.tracks:
            if track.id not in seen:
                track.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        return out

    def missing(self) -> list[Track]:
        """Tracks the last update did not see but still keeps (a blink of the
        detector): privacy keeps their place obscured until they are dropped."""
        return [track for track in self.tracks if track.missed > 0]

    def _looks_alike(self, a: np.ndarray | None, b: np.ndarray | None) -> bool:
        if a is None or b is None:
            return True  # no picture to compare: overlap decides
        return float(np.dot(a, b)) >= self.min_similarity
