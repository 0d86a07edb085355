import time

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


def test_picamera2_missing_is_a_clear_error():
    with pytest.raises(SourceError, match="python3-picamera2"):
        make_source(SourceConfig(name="picamera2")).open()


def test_picamera2_source_with_the_fake(fake_picamera2):
    source = make_source(SourceConfig(name="picamera2", width=320, height=240))
    with source:
        image, stamp, gray = source.read()
        camera = fake_picamera2.instances[0]
        assert camera.config["main"] == {"size": (320, 240), "format": "RGB888"}
        assert "lores" not in camera.config and gray is None  # lores only if smaller
        assert image.shape == (240, 320, 3)
        assert stamp == pytest.approx(time.monotonic() - 0.005, abs=0.5)  # sensor time
    assert camera.calls[:4] == ["__init__", "create_preview_configuration", "configure", "start"]
    assert camera.calls[4:6] == ["capture_request", "release"]
    assert camera.calls[-2:] == ["stop", "close"]


def test_picamera2_busy_camera_is_a_clear_error(fake_picamera2):
    fake_picamera2.fail_open = RuntimeError("Failed to acquire camera: Device or resource busy")
    with pytest.raises(SourceError, match="no other program"):
        make_source(SourceConfig(name="picamera2")).open()


def test_auto_prefers_the_pi_camera(fake_picamera2):
    with open_source(SourceConfig(name="auto")) as source:
        assert source.description == "picamera2"


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


def test_picamera2_lores_stream_is_the_gray_detection_image(fake_picamera2):
    with make_source(SourceConfig(name="picamera2", lores_width=320)) as source:
        image, _, gray = source.read()
    camera = fake_picamera2.instances[0]
    assert camera.config["lores"] == {"size": (320, 240), "format": "YUV420"}
    assert image.shape == (480, 640, 3) and gray.shape == (240, 320)  # Y plane only


def test_picamera2_retries_a_busy_camera(fake_picamera2, monkeypatch, caplog):
    from edge.sources.picamera2 import Picamera2Source

    monkeypatch.setattr(Picamera2Source, "RETRY_DELAYS_S", (0.01, 0.01, 0.01))
    failures = iter([RuntimeError("Device or resource busy")] * 2)
    real_init = fake_picamera2.__init__

    def busy_twice(self, *args):
        error = next(failures, None)
        if error is not None:
            raise error
        real_init(self, *args)

    monkeypatch.setattr(fake_picamera2, "__init__", busy_twice)
    with make_source(SourceConfig(name="picamera2")) as source:
        assert source.read() is not None
    assert caplog.text.count("retrying in") == 2
    # auto does not wait for a busy camera: it falls back at once
    failures = iter([RuntimeError("busy")] * 10)
    with open_source(SourceConfig(name="auto")) as source:
        assert source.description != "picamera2"


def test_picamera2_reopen_does_not_sleep_through_retries(fake_picamera2, monkeypatch):
    """After a loss the pipeline's waiting loop retries (stop-aware), not the source."""
    from edge.sources.picamera2 import Picamera2Source

    monkeypatch.setattr(Picamera2Source, "RETRY_DELAYS_S", (30, 30))
    source = make_source(SourceConfig(name="picamera2")).open()  # retries on first open
    monkeypatch.setattr(
        fake_picamera2, "__init__", lambda self, *a: (_ for _ in ()).throw(RuntimeError("busy"))
    )
    start = time.monotonic()
    with pytest.raises(SourceError, match="busy"):
        source.reopen()
    assert time.monotonic() - start < 5  # one try, not 60 s of sleeps under the lock
