import numpy as np
import pytest

from edge.tracking import Tracker, iou


def one_hot(i, n=7):
    p = np.zeros(n, np.float32)
    p[i] = 1.0
    return p


def test_iou():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (20, 20, 10, 10)) == 0.0
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)


def test_ids_follow_moving_faces_and_new_faces_get_new_ids():
    tracker = Tracker(alpha=1.0)
    a, b = (0, 0, 100, 100), (300, 0, 100, 100)
    ids = [tid for tid, _ in tracker.update([a, b], np.stack([one_hot(0), one_hot(1)]))]
    for step in range(1, 10):  # both drift 5 px per frame, listed in swapped order
        moved_a = (5 * step, 0, 100, 100)
        moved_b = (300 - 5 * step, 0, 100, 100)
        out = tracker.update([moved_b, moved_a], np.stack([one_hot(1), one_hot(0)]))
        assert [tid for tid, _ in out] == [ids[1], ids[0]]
    out = tracker.update([(600, 300, 80, 80)], one_hot(2)[None])
    assert out[0][0] not in ids


def test_smoothing_averages_and_alpha_one_turns_it_off():
    smooth = Tracker(alpha=0.5)
    box = (0, 0, 100, 100)
    smooth.update([box], one_hot(0)[None])
    _, probs = smooth.update([box], one_hot(1)[None])[0]
    assert probs[0] == pytest.approx(0.5) and probs[1] == pytest.approx(0.5)
    raw = Tracker(alpha=1.0)
    raw.update([box], one_hot(0)[None])
    _, probs = raw.update([box], one_hot(1)[None])[0]
    assert probs[1] == 1.0


def test_a_track_survives_short_gaps_then_is_retired():
    tracker = Tracker(alpha=1.0, max_missed=2)
    box = (0, 0, 100, 100)
    first = tracker.update([box], one_hot(0)[None])[0][0]
    tracker.update([], np.zeros((0, 7)))
    tracker.update([], np.zeros((0, 7)))
    assert tracker.update([box], one_hot(0)[None])[0][0] == first
    for _ in range(3):
        tracker.update([], np.zeros((0, 7)))
    assert tracker.update([box], one_hot(0)[None])[0][0] != first


def test_invalid_alpha():
    with pytest.raises(ValueError):
        Tracker(alpha=0.0)


def swap_clip(frames: int = 60, every: int = 3):
    """Two different demo faces, each labelled right on its own, taking turns at
    the same place every `every` frames: (BGR frame, true label) pairs."""
    import json

    import cv2
    from conftest import DEMO_CLIP

    from benchmarks.workloads import demo_faces

    truth = json.loads(DEMO_CLIP.with_suffix(".truth.json").read_text())
    labels = {}
    for frame in truth["frames"]:
        for face in frame["faces"]:
            labels.setdefault(face["file"], face["label"])
    from edge.analysis import FaceAnalyzer
    from edge.config import ClassifierConfig, DetectorConfig

    def framed(face):
        canvas = np.full((480, 640, 3), 110, np.uint8)
        canvas[120:360, 200:440] = cv2.resize(face, (240, 240))
        return canvas

    right = []
    with FaceAnalyzer.from_config(DetectorConfig(tiles=1), ClassifierConfig()) as analyzer:
        for label, face in zip(labels.values(), demo_faces(), strict=True):
            found = analyzer.analyze(framed(face))
            if len(found) == 1 and found[0].label == label:
                right.append((label, framed(face)))
    a = right[0]
    b = next(f for f in right if f[0] != a[0])
    return [((a, b)[(i // every) % 2][1], (a, b)[(i // every) % 2][0]) for i in range(frames)]


def accuracy_with(clip, alpha: float):
    from edge.analysis import FaceAnalyzer
    from edge.config import ClassifierConfig, DetectorConfig

    tracker = Tracker(alpha=alpha)
    right = total = 0
    ids = {}
    with FaceAnalyzer.from_config(DetectorConfig(tiles=1), ClassifierConfig()) as analyzer:
        for image, label in clip:
            faces = tracker.track(analyzer.analyze(image), image)
            total += 1
            if faces:
                right += faces[0].label == label
                ids.setdefault(label, set()).add(faces[0].track)
    return right / total, ids


def test_a_new_face_where_another_was_starts_its_own_track_and_smoothing_cannot_hurt():
    clip = swap_clip()
    on, ids = accuracy_with(clip, alpha=0.4)
    off, _ = accuracy_with(clip, alpha=1.0)
    assert on >= off, (on, off)
    # every appearance of each face is a track of its own: never one shared
    first, second = ids.values()
    assert not first & second


def test_the_same_face_moving_keeps_its_track():
    import cv2

    from edge.frames import Face

    tracker = Tracker()
    face_image = np.random.default_rng(0).integers(0, 255, (60, 60), np.uint8)
    ids = set()
    for step in range(10):
        canvas = np.full((240, 320), 100, np.uint8)
        canvas[50 : 50 + 60, 50 + 3 * step : 110 + 3 * step] = face_image
        image = cv2.cvtColor(canvas, cv2.COLOR_GRAY2BGR)
        face = Face((50 + 3 * step, 50, 60, 60), 0.9, "happy", 0.9, {"happy": 0.9, "sad": 0.1}, 0)
        ids.add(tracker.track([face], image)[0].track)
    assert ids == {1}
