"""OpenCV's frontal-face Haar cascade: the fallback detector.

No mediapipe needed, but slower and it misses turned faces. The cascade XML
ships in `models/` (OpenCV 5 wheels no longer include it). Haar gives no
calibrated confidence, so every face it reports has score 1.0.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.detectors.base import Detector, DetectorError
from edge.frames import Detection
from edge.preprocess import to_gray


class HaarDetector(Detector):
    name = "haar"

    def __init__(
        self,
        model: str | Path,
        min_face: int = 32,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
    ):
        super().__init__()
        self.model = Path(model)
        self.min_face = min_face
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self._cascade = None

    def _open(self) -> None:
        if not hasattr(cv2, "CascadeClassifier"):
            raise DetectorError(
                "this OpenCV build has no CascadeClassifier: install opencv-contrib-python"
            )
        if not self.model.is_file():
            raise DetectorError(
                f"Haar cascade {self.model} not found: restore "
                "models/haarcascade_frontalface_default.xml from the repository"
            )
        cascade = cv2.CascadeClassifier(str(self.model))
        if cascade.empty():
            raise DetectorError(f"Haar cascade {self.model} is corrupt: restore it")
        self._cascade = cascade

    def _detect(self, image: np.ndarray) -> list[Detection]:
        boxes = self._cascade.detectMultiScale(
            to_gray(image),
            self.scale_factor,
            self.min_neighbors,
            minSize=(self.min_face, self.min_face),
        )
        return [Detection(tuple(int(v) for v in box), 1.0) for box in boxes]
