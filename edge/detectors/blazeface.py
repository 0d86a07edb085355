"""BlazeFace, MediaPipe's face detection models, run on the LiteRT interpreter
the emotion classifier already uses.

Why not the mediapipe package's FaceDetector: it loads a 128 MB native
library and a calculator graph per model, more memory than a Pi appliance
should spend on it (docs/benchmarks.md, "Far faces, start-up and memory"
has the figures before and after); it also imports matplotlib through its
vision package, and its native logging cannot be turned down. The models
are the same files; the steps around them are MediaPipe's FaceDetectorGraph's,
with its settings
(mediapipe/tasks/cc/vision/face_detector/face_detector_graph.cc):

- the image is letterboxed into the model's square input (keep_aspect_ratio,
  BORDER_ZERO) and scaled to [-1, 1];
- SSD anchors (SsdAnchorsCalculator): 128 px models use strides 8, 16, 16, 16
  with interpolated scales (896 anchors), 192 px models stride 4 (2,304);
- boxes decoded as TensorsToDetectionsCalculator does (reverse_output_order,
  fixed anchor size, scores through a sigmoid clipped at +-100);
- weighted non-maximum suppression at IoU 0.3 (NonMaxSuppressionCalculator's
  WEIGHTED algorithm);
- boxes projected back out of the letterbox, into image pixels.

`tests/test_blazeface.py` checks the boxes against the mediapipe package's
on real frames, where it is installed (the dev extras).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.classifier import make_interpreter

MIN_SUPPRESSION_IOU = 0.3
"""FaceDetectorOptions.min_suppression_threshold's default."""


@dataclass(frozen=True)
class AnchorScheme:
    """SsdAnchorsCalculatorOptions for one input size (min_scale 0.1484375,
    max_scale 0.75, offsets 0.5, aspect ratio 1, fixed anchor size)."""

    strides: tuple[int, ...]
    interpolated_scale: bool


ANCHOR_SCHEMES = {
    128: AnchorScheme((8, 16, 16, 16), True),  # short range: 896 anchors
    192: AnchorScheme((4,), False),  # full range: 2,304 anchors
}


def ssd_anchors(size: int, scheme: AnchorScheme) -> np.ndarray:
    """Anchor centres (N, 2) as x, y in [0, 1], in the model's output order.

    With a fixed anchor size only the centres matter; each grid cell repeats
    its centre once per anchor the stride's layers define (one per aspect
    ratio, plus one with `interpolated_scale`).
    """
    centres = []
    strides = scheme.strides
    layer = 0
    while layer < len(strides):
        per_cell = 0
        last = layer
        while last < len(strides) and strides[last] == strides[layer]:
            per_cell += 2 if scheme.interpolated_scale else 1
            last += 1
        grid = int(np.ceil(size / strides[layer]))
        for y in range(grid):
            for x in range(grid):
                centres += [((x + 0.5) / grid, (y + 0.5) / grid)] * per_cell
        layer = last
    return np.asarray(centres, dtype=np.float32)


def logit(score: float) -> float:
    """The score threshold as the model's raw output (before its sigmoid)."""
    score = min(max(score, 1e-6), 1 - 1e-6)
    return float(np.log(score / (1 - score)))


def in_pixels(clusters: list[tuple], side: float, left: float, top: float) -> list[tuple]:
    """(x0, y0, x1, y1, score) in the model's square, as (x, y, w, h, score)
    in the image's pixels: the square is `side` wide, its corner at (left, top)."""
    return [
        (x0 * side + left, y0 * side + top, (x1 - x0) * side, (y1 - y0) * side, score)
        for x0, y0, x1, y1, score in clusters
    ]


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[tuple]:
    """MediaPipe's weighted non-maximum suppression: the best remaining box and
    every box overlapping it by more than `iou` become one box, their
    score-weighted mean, with the best one's score. `boxes`: (N, 4) as x0, y0,
    x1, y1. Returns [(x0, y0, x1, y1, score)], best first."""
    order = np.argsort(-scores, kind="stable")
    boxes, scores = boxes[order], scores[order]
    kept = []
    remaining = np.arange(len(scores))
    while remaining.size:
        top = boxes[remaining[0]]
        rest = boxes[remaining]
        ix = np.clip(np.minimum(top[2], rest[:, 2]) - np.maximum(top[0], rest[:, 0]), 0, None)
        iy = np.clip(np.minimum(top[3], rest[:, 3]) - np.maximum(top[1], rest[:, 1]), 0, None)
        inter = ix * iy
        area = (top[2] - top[0]) * (top[3] - top[1])
        areas = (rest[:, 2] - rest[:, 0]) * (rest[:, 3] - rest[:, 1])
        overlap = inter / np.maximum(area + areas - inter, 1e-9)
        together = overlap > iou
        together[0] = True
        weights = scores[remaining[together]]
        mean = (rest[together] * weights[:, None]).sum(axis=0) / weights.sum()
        kept.append((*mean.tolist(), float(scores[remaining[0]])))
        remaining = remaining[~together]
    return kept


class BlazeFace:
    """One BlazeFace model: `detect(bgr)` gives [(x, y, w, h, score)] in pixels.

    Not thread-safe (the interpreter is not): each detector owns its own.
    """

    def __init__(self, model: Path | str, min_score: float = 0.5, num_threads: int = 1) -> None:
        self.model = Path(model)
        self.min_score = min_score
        self._min_logit = logit(min_score)
        self._floor = self._min_logit  # the lowest raw score kept: min_score's, or unsure's
        self._unsure_score: float | None = None
        self.unsure: list[tuple] = []  # (x, y, w, h) of the last detect's unsure finds
        self._interpreter = make_interpreter(self.model, num_threads)
        inp = self._interpreter.get_input_details()[0]
        shape = tuple(int(v) for v in inp["shape"])
        if len(shape) != 4 or shape[1] != shape[2] or shape[1] not in ANCHOR_SCHEMES:
            raise ValueError(
                f"input shape {list(shape)} is not a BlazeFace model's "
                f"(1, n, n, 3) with n in {sorted(ANCHOR_SCHEMES)}"
            )
        self.size = shape[1]
        self._input = inp["index"]
        outputs = self._interpreter.get_output_details()
        # regressors (1, N, 16) and scores (1, N, 1), told apart by their width
        by_width = {int(d["shape"][-1]): d["index"] for d in outputs}
        self._boxes, self._scores = by_width[16], by_width[1]
        self._anchors = ssd_anchors(self.size, ANCHOR_SCHEMES[self.size])
        self._tensor = np.zeros((1, self.size, self.size, 3), np.float32)

    @property
    def unsure_score(self) -> float | None:
        """Privacy: also keep, apart, what scores above this but below
        min_score (edge/privacy.py obscures it without labelling it); None:
        not asked."""
        return self._unsure_score

    @unsure_score.setter
    def unsure_score(self, score: float | None) -> None:
        self._unsure_score = score
        self._floor = self._min_logit if score is None else min(self._min_logit, logit(score))

    def detect(self, image: np.ndarray) -> list[tuple]:
        """Faces in a BGR (or grey) image: [(x, y, w, h, score)], in its pixels."""
        height, width = image.shape[:2]
        side = max(width, height)
        scale = self.size / side
        # The square around the image's centre, corners onto the input's
        # corners, as ImageToTensorCalculator's OpenCV path warps it.
        left, top = (width - side) / 2, (height - side) / 2
        matrix = np.float32([[scale, 0, -left * scale], [0, scale, -top * scale]])
        square = cv2.warpAffine(
            image,
            matrix,
            (self.size, self.size),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
        code = cv2.COLOR_GRAY2RGB if square.ndim == 2 else cv2.COLOR_BGR2RGB
        np.multiply(cv2.cvtColor(square, code), 1 / 127.5, out=self._tensor[0])
        self._tensor -= 1.0
        self._interpreter.set_tensor(self._input, self._tensor)
        self._interpreter.invoke()
        raw = self._interpreter.get_tensor(self._boxes)[0]
        logits = np.clip(self._interpreter.get_tensor(self._scores)[0, :, 0], -100, 100)
        self.unsure = []
        keep = logits >= self._floor  # the sigmoid only where it can pass
        if not keep.any():
            return []
        kept = logits[keep]
        scores = 1 / (1 + np.exp(-kept.astype(np.float64)))
        raw, anchors = raw[keep], self._anchors[keep]
        centre = raw[:, :2] / self.size + anchors
        half = raw[:, 2:4] / self.size / 2
        boxes = np.concatenate([centre - half, centre + half], axis=1)
        sure = kept >= self._min_logit
        # The faces exactly as without the unsure ones: those never join their
        # weighted means.
        if not sure.all():
            unsure = weighted_nms(boxes[~sure], scores[~sure], MIN_SUPPRESSION_IOU)
            self.unsure = [box[:4] for box in in_pixels(unsure, side, left, top)]
        faces = weighted_nms(boxes[sure], scores[sure], MIN_SUPPRESSION_IOU)
        return in_pixels(faces, side, left, top)
