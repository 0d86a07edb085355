from pathlib import Path

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


# -- `camera`: the Pi camera, else a USB webcam, and all of them again after a loss


def fake_v4l(tmp_path, nodes: dict[str, tuple[str, str]]) -> Path:
    """/sys/class/video4linux: {"video0": (driver, index)}, as a Pi lists them."""
    sys_v4l = tmp_path / "video4linux"
    for node, (driver, index) in nodes.items():
        drivers = tmp_path / "drivers" / driver
        drivers.mkdir(parents=True, exist_ok=True)
        device = tmp_path / "devices" / node
        device.mkdir(parents=True)
        (device / "driver").symlink_to(drivers)
        (sys_v4l / node).mkdir(parents=True)
        (sys_v4l / node / "device").symlink_to(device)
        (sys_v4l / node / "index").write_text(f"{index}\n")
    return sys_v4l


def test_only_uvc_webcams_stand_in_for_the_pi_camera(tmp_path, monkeypatch):
    from edge.sources import cameras

    sys_v4l = fake_v4l(
        tmp_path,
        {
            "video0": ("unicam", "0"),  # the CSI receiver: not a webcam
            "video13": ("bcm2835-isp", "0"),
            "video2": ("uvcvideo", "0"),  # a USB webcam's frames
            "video3": ("uvcvideo", "1"),  # ...and its metadata node
        },
    )
    monkeypatch.setattr(cameras, "SYS_VIDEO4LINUX", sys_v4l)
    assert cameras.webcams() == [2]
    assert cameras.camera_candidates() == ["picamera2", "2"]
    monkeypatch.setattr(cameras, "SYS_VIDEO4LINUX", tmp_path / "none")  # not Linux
    assert cameras.camera_candidates() == ["picamera2", "0"]


def test_a_virtual_camera_is_a_camera_after_the_usb_ones(tmp_path, monkeypatch):
    """v4l2loopback (OBS's virtual camera, an ffmpeg feed; the camera of
    `make pi-vm-check`, where the default source ignored it) lives under
    /sys/devices/virtual, with no driver link."""
    from edge.sources import cameras

    sys_v4l = fake_v4l(tmp_path, {"video0": ("unicam", "0"), "video5": ("uvcvideo", "0")})
    for number in (8, 2):
        node = tmp_path / "devices/virtual/video4linux" / f"video{number}"
        node.mkdir(parents=True)
        (node / "index").write_text("0\n")
        (sys_v4l / f"video{number}").symlink_to(node)
    monkeypatch.setattr(cameras, "SYS_VIDEO4LINUX", sys_v4l)
    assert cameras.camera_candidates() == ["picamera2", "5", "2", "8"]


def test_a_pi_with_no_webcam_never_opens_the_csi_node(tmp_path, monkeypatch):
    from edge.sources import cameras

    monkeypatch.setattr(
        cameras, "SYS_VIDEO4LINUX", fake_v4l(tmp_path, {"video0": ("rp1-cfe", "0")})
    )
    opened = []
    monkeypatch.setattr("edge.sources.webcam.quietly_open", lambda i: opened.append(i))
    with pytest.raises(SourceError, match="no camera found .*picamera2: .*no USB webcam"):
        open_source(SourceConfig(name="camera"))
    assert opened == []


def test_a_lost_camera_is_looked_for_among_all_again(fake_picamera2, tmp_path, monkeypatch, caplog):
    """picamera2 busy at start: the webcam is used; once it is lost, the Pi camera is back."""
    import cv2

    from edge.sources import cameras

    caplog.set_level("INFO")
    monkeypatch.setattr(
        cameras, "SYS_VIDEO4LINUX", fake_v4l(tmp_path, {"video1": ("uvcvideo", "0")})
    )
    # webcam 1: the demo clip through the same OpenCV capture a webcam uses
    monkeypatch.setattr(
        "edge.sources.webcam.quietly_open", lambda index: cv2.VideoCapture(str(DEMO_CLIP))
    )
    fake_picamera2.fail_open = RuntimeError("Failed to acquire camera: Device or resource busy")
    source = open_source(SourceConfig(name="camera"))
    assert source.description == "webcam 1" and source.read() is not None
    fake_picamera2.fail_open = None  # whatever held the Pi camera let it go
    source.reopen()  # after SourceLost, the pipeline reopens
    assert source.description == "picamera2" and source.read() is not None
    assert source.camera is fake_picamera2.instances[-1]  # the DRM sink follows it
    assert "camera: now using picamera2" in caplog.text
    source.close()


class _OpenCV5Logging:
    """OpenCV 5's `cv2.utils.logging` (opencv 5.1.0.95's wheel): the log level
    moved there from the top-level `cv2.getLogLevel`/`setLogLevel`."""

    LOG_LEVEL_SILENT, LOG_LEVEL_ERROR = 0, 2

    def __init__(self) -> None:
        self.level, self.calls = 3, []

    def getLogLevel(self) -> int:
        return self.level

    def setLogLevel(self, level: int) -> None:
        self.calls.append(level)
        self.level = level


def test_a_webcam_opens_on_opencv_5s_logging_api(monkeypatch):
    """OpenCV 5 has no cv2.getLogLevel: opening a webcam used to raise
    AttributeError there (the Trixie set), and the service restarted forever."""
    from edge.sources.webcam import quietly_open

    logging = _OpenCV5Logging()
    monkeypatch.delattr(cv2, "getLogLevel", raising=False)
    monkeypatch.delattr(cv2, "setLogLevel", raising=False)
    monkeypatch.setattr(cv2.utils, "logging", logging, raising=False)
    quietly_open(57).release()
    assert logging.calls == [0, 3]  # silent while opening, then as it was
    with pytest.raises(SourceError, match="camera 57 did not open"):
        make_source(SourceConfig(name="57")).open()


def test_a_backend_fault_in_a_camera_is_a_retry_not_a_crash(tmp_path, monkeypatch, caplog):
    """An exception the backend did not mean (an API that moved, a driver bug)
    is one log line and a wait for the camera, never an escaped traceback."""
    from edge.sources import cameras

    monkeypatch.setattr(
        cameras, "SYS_VIDEO4LINUX", fake_v4l(tmp_path, {"video1": ("uvcvideo", "0")})
    )
    calls = []

    def broken_then_fine(index):
        calls.append(index)
        if len(calls) == 1:
            raise AttributeError("module 'cv2' has no attribute 'getLogLevel'")
        return cv2.VideoCapture(str(DEMO_CLIP))

    monkeypatch.setattr("edge.sources.webcam.quietly_open", broken_then_fine)
    monkeypatch.setenv("NOTIFY_SOCKET", "/run/systemd/notify")  # as the service: no demo clip
    with pytest.raises(SourceError, match=r"webcam 1: opening failed .*AttributeError.*retrying"):
        open_source(SourceConfig(name="auto"))
    with open_source(SourceConfig(name="auto")) as source:  # the retry finds it
        assert source.description == "webcam 1" and source.read() is not None


def test_a_backend_fault_while_reading_is_a_loss(monkeypatch):
    from edge.sources.webcam import WebcamSource

    monkeypatch.setattr(
        "edge.sources.webcam.quietly_open", lambda index: cv2.VideoCapture(str(DEMO_CLIP))
    )
    with WebcamSource(0) as source:
        source._cap = None  # the driver's handle gone from under us: 'NoneType' has no read
        with pytest.raises(SourceLost, match="webcam 0: reading failed .*AttributeError"):
            source.read()
