"""Face detectors, chosen by name: see `make_detector`."""

from __future__ import annotations

from edge.config import DetectorConfig, DetectorName
from edge.detectors.base import Detector, DetectorError
from edge.registry import Registry

DETECTORS: Registry[Detector] = Registry(
    "detector",
    {
        "mediapipe": "edge.detectors.mediapipe:MediaPipeDetector",
        "haar": "edge.detectors.haar:HaarDetector",
    },
    DetectorError,
    names=DetectorName,
)

__all__ = ["DETECTORS", "Detector", "DetectorError", "make_detector"]


def make_detector(config: DetectorConfig) -> Detector:
    """The (unopened) detector named by `config.name`."""
    return DETECTORS.load(config.name).from_config(config)
