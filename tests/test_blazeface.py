"""BlazeFace on LiteRT (edge/detectors/blazeface.py) against MediaPipe's own
FaceDetector, which it replaces: the same faces, boxes and scores."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import demo_frame

from edge.config import RANGE_MODELS
from edge.detectors.blazeface import ANCHOR_SCHEMES, BlazeFace, ssd_anchors, weighted_nms
from edge.tracking import iou


def test_the_anchors_are_mediapipes_counts_and_order():
    short = ssd_anchors(128, ANCHOR_SCHEMES[128])
    full = ssd_anchors(192, ANCHOR_SCHEMES[192])
    assert len(short) == 896 and len(full) == 2304  # the models' output rows
    # stride 8: a 16 x 16 grid, two anchors per cell, row by row
    assert np.allclose(short[:3], [[1 / 32, 1 / 32], [1 / 32, 1 / 32], [3 / 32, 1 / 32]])
    # then stride 16's three layers as one 8 x 8 grid of six anchors per cell
    assert np.allclose(short[512:519], [[1 / 16, 1 / 16]] * 6 + [[3 / 16, 1 / 16]])
    assert np.allclose(full[48], [1 / 96, 3 / 96])  # stride 4: 48 x 48, one per cell


def test_weighted_nms_merges_overlapping_boxes_by_score():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], np.float32)
    kept = weighted_nms(boxes, np.array([0.9, 0.3, 0.8]), 0.3)
    assert [round(k[4], 2) for k in kept] == [0.9, 0.8]  # the best one's score
    assert kept[0][0] == pytest.approx(0.25)  # (0 * 0.9 + 1 * 0.3) / 1.2
    assert kept[1][:4] == pytest.approx([50, 50, 60, 60])


def frames() -> list[np.ndarray]:
    """Demo frames (FER faces, near), one scaled up, and portraits far away."""
    from benchmarks.distance import portraits, scenes

    images = [demo_frame(i) for i in (5, 40, 80, 120)]
    images.append(cv2.resize(demo_frame(40), (1280, 720)))
    rng = np.random.default_rng(1)
    for face_px in (45, 72, 140):
        images.append(next(scenes(portraits()[:4], face_px, (640, 480), rng))[0])
    return images


@pytest.mark.parametrize("model", ["short", "full"])
def test_the_same_faces_as_mediapipes_face_detector(model):
    mp = pytest.importorskip("mediapipe", reason="mediapipe: the dev extras' reference")
    from mediapipe.tasks.python import BaseOptions, vision

    options = vision.FaceDetectorOptions(
        base_options=BaseOptions(model_asset_path=str(RANGE_MODELS[model])),
        min_detection_confidence=0.5,
    )
    ours = BlazeFace(RANGE_MODELS[model], min_score=0.5)
    faces = 0
    with vision.FaceDetector.create_from_options(options) as theirs:
        for image in frames():
            rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            reference = theirs.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb))
            found = ours.detect(image)
            assert len(found) == len(reference.detections)
            for detection in reference.detections:
                bb = detection.bounding_box
                box = (bb.origin_x, bb.origin_y, bb.width, bb.height)
                best = max(found, key=lambda f: iou(box, f[:4]))
                # MediaPipe rounds its boxes to whole pixels: small faces move most
                assert iou(box, best[:4]) > 0.85
                assert best[4] == pytest.approx(detection.categories[0].score, abs=0.01)
                faces += 1
    assert faces >= 8  # the check compared faces, not empty lists
