"""FaceAnalyzer: the one path from an image to classified faces.

    image ─► detect (on a smaller view when given) ─► crop ─► classify ─► faces

The live pipeline, the photo command, the web page's upload, the benchmark
and every future command go through this one class, so a change to the
crop, the detector or the model reaches all of them at once. Tracking is
not here: it needs a time axis, which photos lack (see `edge/tracking.py`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Self

import numpy as np

from edge.classifier import EmotionClassifier
from edge.config import ClassifierConfig, DetectorConfig
from edge.detectors import Detector, make_detector
from edge.detectors.base import detect_on, unsure_on
from edge.frames import Face, Frame, Result
from edge.lifecycle import Lifecycle
from edge.privacy import UNSURE_SCORE, edge_band, in_masks


class FaceAnalyzer(Lifecycle):
    """A detector and the emotion classifier, opened and closed together.

    Not thread-safe (neither interpreter is): each thread that analyses
    builds its own, as the pipeline and the web upload do.
    """

    description = "face analyzer"

    def __init__(
        self,
        detector: Detector,
        classifier: EmotionClassifier,
        max_faces: int = 0,
        masks: Sequence[Sequence[float]] = (),
        privacy: bool = False,
        edge_band: float = 0.0,
    ) -> None:
        super().__init__()
        self.detector = detector
        self.classifier = classifier
        self.max_faces = max_faces  # the largest n faces are classified; 0: all
        self.masks = list(masks)  # [privacy] masks: faces centred there are not analysed
        # Privacy on: the last analyze's places where a face may be but none is
        # labelled (masked faces, unsure and unconfirmed finds), to obscure.
        self.privacy = privacy
        self.edge_band = edge_band  # [privacy] edge_band: the sides, obscured with privacy on
        self.unlabelled: list[tuple[int, int, int, int]] = []
        if privacy:
            detector.hide_unsure(UNSURE_SCORE)

    @classmethod
    def from_config(
        cls,
        detector: DetectorConfig,
        classifier: ClassifierConfig,
        masks: Sequence[Sequence[float]] = (),
        privacy: bool = False,
        edge_band: float = 0.0,
    ) -> Self:
        """The analyzer a run's `[detector]` and `[classifier]` sections describe
        (the classifier's model is loaded now: a bad file fails here, not later)."""
        return cls(
            make_detector(detector),
            EmotionClassifier.from_config(classifier),
            detector.max_faces,
            masks,
            privacy,
            edge_band,
        )

    @property
    def labels(self) -> tuple[str, ...]:
        return self.classifier.labels

    def _open(self) -> None:
        self.detector.__enter__()

    def _close(self) -> None:
        self.detector.close()
        self.classifier.close()

    def analyze(
        self,
        image: np.ndarray,
        detect_image: np.ndarray | None = None,
        stage_ms: dict[str, float] | None = None,
    ) -> list[Face]:
        """The faces in a BGR `image`, classified, untracked (`track` 0).

        `detect_image`: a smaller view of the same scene to detect on (the Pi
        camera's low-resolution stream); boxes come back in `image` pixels and
        faces are cropped from `image` at full resolution. `stage_ms`, when
        given, receives the `detect` and `classify` times.
        """
        self._check_open()
        t0 = time.perf_counter()
        detections = detect_on(self.detector, image, detect_image)
        self.unlabelled = []
        if self.masks:
            size = (image.shape[1], image.shape[0])
            masked = [in_masks(d.box, self.masks, size) for d in detections]
            # a masked face is not analysed, and still obscured
            self.unlabelled = [d.box for d, m in zip(detections, masked, strict=True) if m]
            detections = [d for d, m in zip(detections, masked, strict=True) if not m]
        if self.privacy:
            self.unlabelled += unsure_on(self.detector, image, detect_image)
            self.unlabelled += edge_band((image.shape[1], image.shape[0]), self.edge_band)
        if self.max_faces and len(detections) > self.max_faces:
            detections = sorted(detections, key=lambda d: -d.box[2] * d.box[3])[: self.max_faces]
        t1 = time.perf_counter()
        probs = self.classifier.classify(image, [d.box for d in detections])
        faces = [
            Face.classified(d.box, d.score, self.labels, p)
            for d, p in zip(detections, probs, strict=True)
        ]
        if stage_ms is not None:
            stage_ms["detect"] = (t1 - t0) * 1e3
            stage_ms["classify"] = (time.perf_counter() - t1) * 1e3
        return faces

    def classify_at(self, image: np.ndarray, boxes: list[tuple]) -> list[Face]:
        """Faces at known boxes, classified without detecting: what the
        classifier alone makes of them (the distance benchmark's label check)."""
        self._check_open()
        probs = self.classifier.classify(image, boxes)
        return [
            Face.classified(tuple(box), 1.0, self.labels, p)
            for box, p in zip(boxes, probs, strict=True)
        ]

    def analyze_still(self, image: np.ndarray) -> Result:
        """A photo: no time axis, so no smoothing and nothing carried over from
        the last image; faces are numbered 1..n."""
        self.detector.forget()
        faces = self.analyze(image)
        for number, face in enumerate(faces, 1):
            face.track = number
        return Result(Frame(image, 0, 0.0), faces, hidden=list(self.unlabelled))
