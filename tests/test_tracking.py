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
