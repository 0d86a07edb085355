"""MediaPipe Tasks FaceDetector (BlazeFace), the default detector.

The model file ships in `models/` (current mediapipe releases no longer bundle
it, and nothing may download at run time). The detector is closed
explicitly: mediapipe 1.2.2's `__del__` at interpreter exit prints a
TypeError traceback otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Self

import cv2
import numpy as np

from edge.detectors.base import Detector, DetectorError, clip_box
from edge.frames import Detection

if TYPE_CHECKING:
    from edge.config import DetectorConfig


class MediaPipeDetector(Detector):
    name = "mediapipe"

    def __init__(self, model: str | Path, min_confidence: float = 0.5, min_face: int = 32):
        super().__init__()
        self.model = Path(model)
        self.min_confidence = min_confidence
        self.min_face = min_face
        self._detector = None
        self._mp = None

    @classmethod
    def from_config(cls, config: DetectorConfig) -> Self:
        return cls(config.model, config.min_confidence, config.min_face)

    def _open(self) -> None:
        if not self.model.is_file():
            raise DetectorError(
                f"face detection model {self.model} not found: restore "
                "models/face_detection_short_range.tflite from the repository"
            )
        try:
            import mediapipe as mp
            from mediapipe.tasks.python import BaseOptions, vision
        except ImportError as exc:
            raise DetectorError(
                f"mediapipe is not importable ({exc}): pip install mediapipe, "
                "or use --detector haar"
            ) from None
        options = vision.FaceDetectorOptions(
            base_options=BaseOptions(model_asset_path=str(self.model)),
            min_detection_confidence=self.min_confidence,
        )
        try:
            self._detector = vision.FaceDetector.create_from_options(options)
        except (RuntimeError, ValueError) as exc:
            raise DetectorError(
                f"face detection model {self.model} cannot be loaded ({exc}); "
                "restore it from the repository"
            ) from None
        self._mp = mp

    def _detect(self, image: np.ndarray) -> list[Detection]:
        if image.ndim == 2:
            rgb = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        else:
            rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        result = self._detector.detect(
            self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=rgb)
        )
        height, width = image.shape[:2]
        faces = []
        for detection in result.detections:
            bb = detection.bounding_box
            box = clip_box(bb.origin_x, bb.origin_y, bb.width, bb.height, width, height)
            if box is None or min(box[2], box[3]) < self.min_face:
                continue
            score = detection.categories[0].score if detection.categories else 0.0
            faces.append(Detection(box, float(score)))
        return faces

    def _close(self) -> None:
        if self._detector is not None:
            self._detector.close()
            self._detector = None
