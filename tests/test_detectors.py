import pytest
from conftest import demo_frame, demo_truth

from edge.config import DetectorConfig
from edge.detectors import DetectorError, make_detector
from edge.scoring import match


def true_faces(index):
    return demo_truth()["frames"][index]["faces"]


@pytest.mark.parametrize("name", ["mediapipe", "haar"])
def test_detector_finds_the_demo_faces(name):
    with make_detector(DetectorConfig(name=name)) as detector:
        found = detector.detect(demo_frame(40))
    detected = [{"box": d.box} for d in found]
    assert len(match(true_faces(40), detected)) == 2
    for detection in found:
        assert 0.0 < detection.score <= 1.0
        assert all(isinstance(v, int) for v in detection.box)


def test_no_face_in_an_empty_frame():
    with make_detector(DetectorConfig()) as detector:
        assert detector.detect(demo_frame(26)) == []  # a gap between scenes


def test_missing_and_corrupt_models(tmp_path):
    with pytest.raises(DetectorError, match="not found"):
        make_detector(DetectorConfig(model=str(tmp_path / "x.tflite"))).open()
    corrupt = tmp_path / "corrupt.tflite"
    corrupt.write_bytes(b"\0" * 1000)
    with pytest.raises(DetectorError, match="cannot be loaded"):
        make_detector(DetectorConfig(model=str(corrupt))).open()


def test_detector_lifecycle():
    detector = make_detector(DetectorConfig(name="haar"))
    with pytest.raises(RuntimeError, match="not open"):
        detector.detect(demo_frame(40))
    with detector:
        pass
    with pytest.raises(RuntimeError, match="already closed"):
        detector.open()
