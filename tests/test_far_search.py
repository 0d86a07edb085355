"""The far-face search: paid for where the scene changed, its finds confirmed
before they become faces (edge/detectors/far_search.py)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.config import DetectorConfig
from edge.detectors import make_detector
from edge.detectors.far_search import (
    SWEEP_FRAMES,
    MotionMap,
    TileSchedule,
    behind,
    head,
    touches,
)
from edge.scoring import match


def noisy(image: np.ndarray, rng: np.random.Generator, sigma: float = 2.0) -> np.ndarray:
    """A camera's view of a still scene: the same picture with fresh sensor noise."""
    return np.clip(image + rng.normal(0, sigma, image.shape), 0, 255).astype(np.uint8)


def test_the_motion_map_marks_what_changed_outside_near_faces_until_searched():
    rng = np.random.default_rng(0)
    scene = np.full((480, 640, 3), 120, np.uint8)
    motion = MotionMap()
    motion.update(noisy(scene, rng))
    assert motion.changed((0, 0, 640, 480))  # a first frame: everything is new
    motion.searched((0, 0, 640, 480))
    for _ in range(30):  # noise alone is no change
        motion.update(noisy(scene, rng))
    assert not motion.changed((0, 0, 640, 480))
    walked_in = scene.copy()
    walked_in[100:140, 500:532] = 30  # a far face's size, at the right
    motion.update(noisy(walked_in, rng))
    assert motion.changed((400, 0, 240, 240))
    assert not motion.changed((0, 0, 320, 480))  # the left half saw nothing
    assert not motion.changed((400, 0, 240, 240), ignore=[(480, 80, 80, 80)])
    motion.searched((400, 0, 240, 240))
    assert not motion.changed((400, 0, 240, 240))
    assert motion.hidden((0, 0, 320, 240), [(0, 0, 320, 480)])
    assert not motion.hidden((0, 0, 320, 240), [(0, 0, 160, 480)])  # half of it shows


def test_a_turn_searches_the_next_changed_tile_and_every_tile_now_and_then():
    schedule = TileSchedule(9)
    schedule.searched_all(0)
    assert schedule.pick(2, lambda i: False) is None  # nothing changed: the turn is free
    assert schedule.pick(4, lambda i: i in (3, 7)) == 3
    assert schedule.pick(6, lambda i: i in (3, 7)) == 7  # in turn, not the same one again
    assert schedule.pick(8, lambda i: i in (3, 7)) == 3
    assert schedule.pick(SWEEP_FRAMES - 1, lambda i: False) is None
    # SWEEP_FRAMES after the last search, each tile's turn comes, change or not
    picks = [schedule.pick(f, lambda i: False) for f in range(SWEEP_FRAMES, SWEEP_FRAMES + 6)]
    assert picks == [4, 5, 6, 8, 0, 1]  # 3 and 7 were searched later: not yet
    # a tile hidden behind near faces is not swept; a change still counts
    assert schedule.pick(2 * SWEEP_FRAMES, lambda i: False, lambda i: True) is None
    assert schedule.pick(2 * SWEEP_FRAMES, lambda i: i == 5, lambda i: True) == 5


def test_a_near_face_shadows_its_head_and_shoulders():
    face = (200, 100, 100, 120)
    assert touches(head(face), (230, 10, 30, 30))  # in the hair above the brows
    assert not touches(head(face), (30, 10, 30, 30))
    x, y, w, h = behind(face, 480)
    assert (x, y, x + w, y + h) == (100, -20, 400, 480)


@pytest.mark.slow
def test_one_person_filling_the_frame_is_one_track(tmp_path):
    """A 10 s clip of one person at a desk: the far search finds nothing to add.
    Before confirmation, the full-range tiles found a box in the hair once per
    turn of the tiles, each a new track of a frame or two."""
    from benchmarks.workloads import make_near_face_clip
    from edge.analysis import FaceAnalyzer
    from edge.config import ClassifierConfig
    from edge.tracking import Tracker

    clip = make_near_face_clip(tmp_path / "near.mp4", frames=300)
    capture = cv2.VideoCapture(str(clip))
    tracks: set[int] = set()
    tile_searches = 0
    with FaceAnalyzer.from_config(DetectorConfig(), ClassifierConfig()) as analyzer:
        detector = analyzer.detector
        search = detector._detect_window

        def counted(model, rgb, window):
            nonlocal tile_searches
            tile_searches += model is detector._tile_detector
            return search(model, rgb, window)

        detector._detect_window = counted
        tracker = Tracker()
        frames = 0
        while (read := capture.read())[0]:
            faces = tracker.track(analyzer.analyze(read[1]), read[1])
            assert len(faces) == 1
            tracks |= {f.track for f in faces}
            frames += 1
    assert frames == 300 and len(tracks) == 1
    # the person hides every tile: neither her movements nor the sweeps
    # search one (a turn round the tiles every other frame would be 150)
    assert tile_searches == 0


@pytest.mark.slow
def test_a_far_face_walking_in_is_found_within_a_second_and_only_once_confirmed():
    from benchmarks.distance import portraits, scenes

    rng = np.random.default_rng(3)
    with_face, truths = next(scenes(portraits()[:1], 36, (640, 480), rng))
    box = truths[0][0]
    empty = with_face.copy()
    x, y, w, h = box
    empty[y - h : y + 2 * h, x - w : x + 2 * w] = with_face[0:1, 0:1]  # the same room, no one
    empty = cv2.GaussianBlur(empty, (3, 3), 0)
    with make_detector(DetectorConfig()) as detector:
        for _ in range(40):  # an empty room: the first frame's search, then calm
            assert detector.detect(noisy(empty, rng)) == []
        first_seen = None
        for frame in range(30):  # one second at 30 fps
            found = detector.detect(noisy(with_face, rng))
            if match([{"box": list(box)}], [{"box": d.box} for d in found]):
                first_seen = frame
                break
        assert first_seen is not None, "a far face that walked in was not found within 30 frames"
        assert first_seen >= 1  # found by a tile on one frame, a face from the next
        for _ in range(10):  # and followed from then on
            found = detector.detect(noisy(with_face, rng))
            assert len(match([{"box": list(box)}], [{"box": d.box} for d in found])) == 1


@pytest.mark.slow
def test_a_tile_find_that_is_not_found_again_never_becomes_a_face():
    """The second look is what makes a tile's find a face: a far face seen by
    a tile on one frame and gone from the next is searched for around its
    box again, not found, and never reported."""
    from benchmarks.distance import portraits, scenes

    rng = np.random.default_rng(3)
    with_face, truths = next(scenes(portraits()[:1], 36, (640, 480), rng))
    x, y, w, h = truths[0][0]
    empty = with_face.copy()
    empty[y - h : y + 2 * h, x - w : x + 2 * w] = with_face[0:1, 0:1]  # the same room, no one
    empty = cv2.GaussianBlur(empty, (3, 3), 0)
    with make_detector(DetectorConfig()) as detector:
        for _ in range(40):  # an empty room: the first frame's search, then calm
            assert detector.detect(noisy(empty, rng)) == []
        for _ in range(30):  # the face, until a tile has found it (a candidate, not a face)
            assert detector.detect(noisy(with_face, rng)) == []
            if detector.unsure():
                break
        assert detector.unsure(), "no tile found the far face within 30 frames"
        for frame in range(10):  # gone: the looks around its box find nothing
            assert detector.detect(noisy(empty, rng)) == [], f"a face reported {frame + 1} after"
        assert detector.unsure() == []  # given up on after its tries


def test_a_change_no_search_has_looked_at_is_where_a_face_may_be():
    rng = np.random.default_rng(1)
    scene = np.full((480, 640, 3), 120, np.uint8)
    motion = MotionMap()
    motion.update(noisy(scene, rng))
    assert motion.unsearched() == [(0, 0, 640, 480)]  # a first frame: all of it
    motion.searched((0, 0, 640, 480))
    motion.update(noisy(scene, rng))
    assert motion.unsearched() == []  # noise is no arrival
    walked_in = scene.copy()
    walked_in[100:140, 500:532] = 30  # a far face's size
    walked_in[400:408, 40:48] = 30  # one cell: too small to be one
    motion.update(noisy(walked_in, rng))
    (box,) = motion.unsearched()
    x, y, w, h = box
    assert x <= 500 and y <= 100 and x + w >= 532 and y + h >= 140  # all of it
    assert w * h < 3 * 64 * 72  # and not much more
    assert motion.unsearched(ignore=[(480, 80, 80, 80)]) == []  # behind a near face
    motion.searched((400, 0, 240, 240))
    assert motion.unsearched() == []  # looked at: the search's finds speak for it


class Blind:
    """BlazeFace's interface, finding nothing: a tile's model that misses a face."""

    unsure_score = None
    unsure: list = []

    def detect(self, image):
        return []


def test_a_change_a_search_misses_on_the_frame_it_arrives_is_still_obscured():
    # Privacy on, tiles searched whenever the picture changed: a face appears
    # and the tile searched on that very frame misses it. That frame leaves
    # with the change obscured; from the next, the search's (empty) answer
    # speaks for it, and its finds would have had their second look.
    rng = np.random.default_rng(2)
    scene = np.full((480, 640, 3), 120, np.uint8)
    with make_detector(DetectorConfig(tiles=3)) as detector:
        detector.hide_unsure(0.25)
        detector._detector = detector._tile_detector = Blind()
        for _ in range(30):  # every tile searched once: nothing waits
            detector.detect(noisy(scene, rng))
        assert detector.unsure() == []
        arrived = scene.copy()
        arrived[200:260, 300:360] = 30
        detector.detect(noisy(arrived, rng))
        hidden = detector.unsure()
        assert any(
            x <= 300 and y <= 200 and x + w >= 360 and y + h >= 260 for x, y, w, h in hidden
        ), hidden
        for _ in range(30):  # searched now, and still: nothing more to obscure
            detector.detect(noisy(arrived, rng))
        assert detector.unsure() == []
