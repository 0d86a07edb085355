"""Face detectors, chosen by name: see `make_detector`."""

from __future__ import annotations

from pathlib import Path

from edge.config import MODELS_DIR, DetectorConfig
from edge.detectors.base import Detector, DetectorError

NAMES = ("mediapipe", "haar")
HAAR_MODEL = MODELS_DIR / "haarcascade_frontalface_default.xml"

__all__ = ["NAMES", "Detector", "DetectorError", "make_detector"]


def make_detector(config: DetectorConfig) -> Detector:
    """The (unopened) detector named by `config.name`."""
    if config.name == "mediapipe":
        from edge.detectors.mediapipe import MediaPipeDetector

        return MediaPipeDetector(config.model, config.min_confidence, config.min_face)
    if config.name == "haar":
        from edge.detectors.haar import HaarDetector

        model = Path(config.model)
        return HaarDetector(model if model.suffix == ".xml" else HAAR_MODEL, config.min_face)
    raise DetectorError(f"unknown detector {config.name!r}: use one of {', '.join(NAMES)}")
