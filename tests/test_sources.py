import cv2
import numpy as np
import pytest
from conftest import DEMO_CLIP, demo_truth

from edge.config import SourceConfig
from edge.sources import FrameError, SourceError, SourceLost, make_source, open_source
from edge.sources.images import ImageSource
from edge.sources.video import VideoSource


def test_video_file_delivers_every_frame_then_ends():
    with VideoSource(DEMO_CLIP) as source:
        assert not source.live and source.fps == pytest.approx(15)
        frames = 0
        while (captured := source.read()) is not None:
            image, stamp = captured.image, captured.timestamp
            assert image.shape == (480, 640, 3) and stamp is None
            frames += 1
    assert frames == len(demo_truth()["frames"])


def test_lifecycle_is_owned_by_the_base_class():
    source = VideoSource(DEMO_CLIP).open()
    with pytest.raises(RuntimeError, match="already open"):
        source.open()
    source.close()
    source.close()  # closing twice is harmless
    with pytest.raises(RuntimeError, match="not open"):
        source.read()


def test_missing_and_undecodable_files(tmp_path):
    with pytest.raises(SourceError, match="not found"):
        VideoSource(tmp_path / "none.mp4").open()
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 100)
    with pytest.raises(SourceError, match="cannot open"):
        VideoSource(junk).open()


def test_image_folder_skips_unreadable_files(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((20, 30, 3), np.uint8))
    (tmp_path / "b.jpg").write_bytes(b"not a jpeg")
    cv2.imwrite(str(tmp_path / "c.png"), np.zeros((10, 10, 3), np.uint8))
    (tmp_path / "notes.txt").write_text("ignored")
    with ImageSource(tmp_path) as source:
        assert source.read()[0].shape == (20, 30, 3)
        with pytest.raises(FrameError, match="b.jpg is not a readable image"):
            source.read()
        assert source.read()[0].shape == (10, 10, 3)
        assert source.read() is None


def test_registry_names_valid_choices():
    with pytest.raises(SourceError, match="auto, camera, demo, picamera2"):
        make_source(SourceConfig(name="no-such-thing"))


def test_webcam_that_does_not_open_says_how_to_fix():
    with pytest.raises(SourceError, match="camera 57 did not open.*--source demo"):
        make_source(SourceConfig(name="57")).open()


def test_auto_falls_back_to_the_demo_clip(caplog):
    caplog.set_level("INFO")
    with open_source(SourceConfig(name="auto")) as source:
        assert source.description.endswith("faces.mp4")
    assert "no camera found, using the demo clip" in caplog.text


def test_auto_never_plays_the_demo_clip_under_systemd(monkeypatch):
    monkeypatch.setenv("NOTIFY_SOCKET", "/run/systemd/notify")
    with pytest.raises(SourceError, match="no camera found .*: connect one"):
        open_source(SourceConfig(name="auto"))


def test_a_looping_file_starts_again_and_keeps_counting():
    frames = len(demo_truth()["frames"])
    with make_source(SourceConfig(name="demo", loop=True)) as source:
        first = source.read().image
        for _ in range(frames - 1):
            assert source.read() is not None
        again = source.read()  # past the end: the first frame again
        assert again is not None and source.loops == 1
        assert np.array_equal(again.image, first)


def test_stream_loss_is_reported_as_lost(tmp_path):
    source = VideoSource("rtsp://127.0.0.1:9/none")
    assert source.live
    source._state, source._cap = "open", cv2.VideoCapture()  # a stream that delivers nothing
    with pytest.raises(SourceLost):
        source.read()
