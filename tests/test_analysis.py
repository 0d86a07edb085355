"""FaceAnalyzer: the one image -> faces path, on the shipped models and real frames."""

import cv2
import numpy as np
import pytest
from conftest import demo_frame, demo_truth

from edge.analysis import FaceAnalyzer
from edge.classifier import EmotionClassifier, ModelError
from edge.config import ClassifierConfig, DetectorConfig
from edge.scoring import match
from edge.tracking import Tracker


@pytest.fixture(scope="module")
def analyzer():
    with FaceAnalyzer.from_config(DetectorConfig(), ClassifierConfig()) as analyzer:
        yield analyzer


def test_finds_and_classifies_the_demo_faces(analyzer):
    stage_ms: dict[str, float] = {}
    faces = analyzer.analyze(demo_frame(40), stage_ms=stage_ms)
    truth = demo_truth()["frames"][40]["faces"]
    assert len(match(truth, [{"box": f.box} for f in faces])) == 2
    classifier = EmotionClassifier.from_config(ClassifierConfig())  # as the analyzer's
    for face in faces:
        assert face.track == 0  # untracked: tracking is the caller's
        assert list(face.probs) == list(analyzer.labels)
        assert face.label == max(face.probs, key=face.probs.get)
        assert face.confidence == pytest.approx(max(face.probs.values()))
        # the same numbers as the classifier called directly on the box
        direct = classifier.classify(demo_frame(40), [face.box])[0]
        assert list(face.probs.values()) == pytest.approx(direct.tolist(), abs=1e-6)
    assert set(stage_ms) == {"detect", "classify"} and min(stage_ms.values()) > 0


def test_a_smaller_detection_view_gives_boxes_in_full_size_pixels(analyzer):
    image = demo_frame(40)
    small = cv2.resize(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), (320, 240))
    full = analyzer.analyze(image)
    halved = analyzer.analyze(image, detect_image=small)
    assert len(halved) == len(full) == 2
    for a, b in zip(sorted(f.box for f in full), sorted(f.box for f in halved), strict=True):
        assert np.abs(np.subtract(a, b)).max() <= 8  # one lores pixel is two here


def test_a_still_has_numbered_faces_and_no_face_is_an_empty_list(analyzer):
    result = analyzer.analyze_still(demo_frame(40))
    assert [f.track for f in result.faces] == [1, 2]
    assert analyzer.analyze_still(demo_frame(26)).faces == []  # between scenes


def test_tracking_the_analyzer_faces_keeps_ids_and_smooths(analyzer):
    tracker = Tracker(alpha=0.5)
    first = tracker.track(analyzer.analyze(demo_frame(40)))
    second = tracker.track(analyzer.analyze(demo_frame(41)))
    assert sorted(f.track for f in first) == sorted(f.track for f in second) == [1, 2]
    assert tracker.track([]) == []
    raw = {f.box: f for f in analyzer.analyze(demo_frame(41))}
    for face in second:
        before = next(f for f in first if f.track == face.track)
        expected = [0.5 * raw[face.box].probs[k] + 0.5 * before.probs[k] for k in analyzer.labels]
        assert list(face.probs.values()) == pytest.approx(expected, abs=1e-5)
        assert face.label == max(face.probs, key=face.probs.get)


def test_lifecycle_and_a_bad_model(tmp_path):
    analyzer = FaceAnalyzer.from_config(DetectorConfig(), ClassifierConfig())
    with pytest.raises(RuntimeError, match="not open"):
        analyzer.analyze(demo_frame(40))
    analyzer.open()
    analyzer.close()
    assert analyzer.classifier._interpreter is None  # closed with it
    with pytest.raises(ModelError, match="not found"):
        FaceAnalyzer.from_config(DetectorConfig(), ClassifierConfig(model=str(tmp_path / "x")))


def test_max_faces_keeps_the_largest():
    from conftest import demo_frame

    from edge.analysis import FaceAnalyzer
    from edge.config import ClassifierConfig, DetectorConfig

    image = demo_frame(40)  # two faces
    with FaceAnalyzer.from_config(DetectorConfig(), ClassifierConfig()) as analyzer:
        both = analyzer.analyze(image)
    with FaceAnalyzer.from_config(DetectorConfig(max_faces=1), ClassifierConfig()) as analyzer:
        one = analyzer.analyze(image)
    assert len(both) >= 2 and len(one) == 1
    assert one[0].box == max(both, key=lambda f: f.box[2] * f.box[3]).box
