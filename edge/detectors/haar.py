"""OpenCV's frontal-face Haar cascade: the fallback detector.

No mediapipe needed, but slower and it misses turned faces. The cascade XML
ships in `models/` (OpenCV 5 wheels no longer include it). Haar gives no
calibrated confidence, so every face it reports has score 1.0.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Self

import cv2
import numpy as np

from edge.config import MODELS_DIR
from edge.detectors.base import Detector, DetectorError
from edge.frames import Detection
from edge.preprocess import to_gray

if TYPE_CHECKING:
    from edge.config import DetectorConfig

HAAR_MODEL = MODELS_DIR / "haarcascade_frontalface_default.xml"


def haar_available(model: Path = HAAR_MODEL) -> bool | str:
    """True when this OpenCV build can load the cascade, else why not.

    Probed for real: OpenCV 5 builds without `CascadeClassifier` exist, and a
    damaged XML loads as an empty cascade rather than raising.
    """
    try:
        with HaarDetector(model):
            return True
    except DetectorError as exc:
        return str(exc)


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

    @classmethod
    def from_config(cls, config: DetectorConfig) -> Self:
        # `[detector] model` may name a BlazeFace file: Haar keeps its own then.
        model = Path(config.model)
        return cls(model if model.suffix == ".xml" else HAAR_MODEL, config.min_face)

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
        try:
            cascade = cv2.CascadeClassifier(str(self.model))
        except (cv2.error, SystemError):  # OpenCV 5.1 raises on a malformed XML
            cascade = None
        if cascade is None or cascade.empty():
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
