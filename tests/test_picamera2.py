"""The Pi camera path against the truthful fake (tests/fake_picamera2.py):
what a real Pi does when the screen is missing, the camera stalls, is busy or
absent, the venv's NumPy is wrong, or the output has no overlay plane."""

import logging
import os
import re
import time

import fake_picamera2 as fake_module
import numpy as np
import pytest
from fake_picamera2 import FakePicamera2

import edge.sources.picamera2 as picamera2_source
from edge.config import RunConfig, SourceConfig
from edge.engine import Pipeline, PipelineError
from edge.sinks import SinkError
from edge.sources import SourceError, SourceFailed, SourceLost, make_source, open_source


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def quick(monkeypatch):
    """Timeouts and retries in tenths of seconds, not seconds."""
    monkeypatch.setattr(picamera2_source, "CAPTURE_TIMEOUT_S", 0.2)
    # picamera2 closing a DRM preview runs gc.collect(): tenths of a second with models loaded.
    monkeypatch.setattr(picamera2_source, "CLOSE_DEADLINE_S", 2.0)
    monkeypatch.setattr(picamera2_source.Picamera2Source, "RETRY_DELAYS_S", (0.01, 0.01))


def pipeline_config(**sections) -> RunConfig:
    base = {"source": {"name": "picamera2"}, "output": {"display": "none"}}
    for key, value in sections.items():
        base[key] = {**base.get(key, {}), **value}
    return RunConfig.model_validate(base)


# -- opening ------------------------------------------------------------------


def test_picamera2_missing_is_a_clear_error():
    with pytest.raises(SourceError, match="python3-picamera2"):
        make_source(SourceConfig(name="picamera2")).open()


def test_picamera2_source_with_the_fake(fake_picamera2):
    source = make_source(SourceConfig(name="picamera2", width=320, height=240))
    with source:
        image, stamp, gray = source.read()
        camera = fake_picamera2.instances[0]
        assert camera.config["main"]["size"] == (320, 240)
        assert camera.config["main"]["format"] == "RGB888"
        assert "lores" not in camera.config and gray is None  # lores only if smaller
        assert image.shape == (240, 320, 3)
        # exposure start: SensorTimestamp (5 ms ago) less ExposureTime (10 ms)
        assert stamp == pytest.approx(time.monotonic() - 0.015, abs=0.5)
    assert camera.calls[:5] == [
        "__init__",
        "create_preview_configuration",
        "configure",
        "start_preview:NULL",  # start() runs picamera2's NullPreview frame thread
        "start",
    ]
    assert camera.calls[5] == "capture_request"
    assert camera.calls[-2:] == ["stop", "close"]
    assert camera.held_buffers() == 0  # every request went back to the camera


def test_no_camera_says_check_the_cable_and_opens_nothing(fake_picamera2, quick):
    fake_picamera2.cameras = []
    with pytest.raises(SourceError, match="no Pi camera detected .*ribbon cable"):
        make_source(SourceConfig(name="picamera2")).open()
    assert fake_picamera2.instances == []


def test_busy_camera_names_the_likely_holder(fake_picamera2, quick):
    fake_picamera2.fail_open = RuntimeError("Failed to acquire camera: Device or resource busy")
    with pytest.raises(SourceError, match="another program may hold it .*rpicam-hello"):
        make_source(SourceConfig(name="picamera2")).open()


def test_permission_denied_names_the_device_and_the_group(fake_picamera2, quick):
    fake_picamera2.fail_open = PermissionError(13, "Permission denied", "/dev/dma_heap/linux,cma")
    with pytest.raises(SourceError, match=r"/dev/dma_heap/linux,cma: add the user to the video"):
        make_source(SourceConfig(name="picamera2")).open()


def test_numpy_mismatch_says_what_to_run(monkeypatch, tmp_path):
    fake_module.install_broken(monkeypatch, tmp_path)
    with pytest.raises(SourceError, match="cannot load with NumPy .*constraints/pi-bookworm.txt"):
        make_source(SourceConfig(name="picamera2")).open()


def test_a_thousand_failed_opens_leak_no_descriptor(fake_picamera2):
    import gc

    fake_picamera2.fail_open = RuntimeError("Device or resource busy")
    # The source cleans up after each failed open...
    gc.collect()
    before = open_fds()
    for _ in range(1000):
        with pytest.raises(SourceError):
            make_source(SourceConfig(name="picamera2"), retries=False).open()
    gc.collect()
    assert open_fds() == before
    # ...where picamera2 itself (and so the fake) leaks one each time.
    for _ in range(5):
        with pytest.raises(RuntimeError):
            FakePicamera2()
    gc.collect()
    assert open_fds() >= before + 5


def test_auto_prefers_the_pi_camera(fake_picamera2):
    with open_source(SourceConfig(name="auto")) as source:
        assert source.description == "picamera2"


def test_retries_a_busy_camera_on_first_open(fake_picamera2, quick, caplog):
    failures = iter([RuntimeError("Device or resource busy")] * 2)
    real_init = FakePicamera2.__init__

    def busy_twice(self, *args):
        error = next(failures, None)
        if error is not None:
            fake_picamera2.fail_open = error
        try:
            real_init(self, *args)
        finally:
            fake_picamera2.fail_open = None

    FakePicamera2.__init__ = busy_twice
    try:
        with make_source(SourceConfig(name="picamera2")) as source:
            assert source.read() is not None
        assert caplog.text.count("retrying in") == 2
        # auto does not wait for a busy camera: it falls back at once
        failures = iter([RuntimeError("busy")] * 10)
        with open_source(SourceConfig(name="auto")) as source:
            assert source.description != "picamera2"
    finally:
        FakePicamera2.__init__ = real_init


def test_reopen_does_not_sleep_through_retries(fake_picamera2, monkeypatch):
    """After a loss the pipeline's waiting loop retries (stop-aware), not the source."""
    monkeypatch.setattr(picamera2_source.Picamera2Source, "RETRY_DELAYS_S", (30, 30))
    source = make_source(SourceConfig(name="picamera2")).open()  # retries on first open
    fake_picamera2.fail_open = RuntimeError("Device or resource busy")
    start = time.monotonic()
    with pytest.raises(SourceError, match="busy"):
        source.reopen()
    assert time.monotonic() - start < 5  # one try, not 60 s of sleeps under the lock


# -- frames ---------------------------------------------------------------------


def test_lores_gray_is_sliced_by_the_configured_size_not_the_stride(fake_picamera2):
    # 300 px asked; libcamera grants 304x228, rows padded to a 320-byte stride
    fake_picamera2.adjust_lores = (304, 228)
    with make_source(SourceConfig(name="picamera2", lores_width=300)) as source:
        image, _, gray = source.read()
    assert image.shape == (480, 640, 3) and gray.shape == (228, 304)
    assert not (gray[:, -1] == 255).all()  # image, not the padding the fake fills with 255


def patterned(height: int = 48, width: int = 64) -> np.ndarray:
    """A B, G, R picture whose colours differ across it (smooth, so 4:2:0
    chroma keeps them)."""
    y, x = np.mgrid[0:height, 0:width]
    return np.dstack([x * 255 // width, y * 255 // height, 255 - x * 255 // width]).astype(np.uint8)


def test_every_format_picamera2_can_give_becomes_the_same_bgr_picture():
    import cv2
    from fake_picamera2 import nv12

    image = patterned()
    h, w = image.shape[:2]
    stride = 80  # rows padded, as an ISP aligns them
    i420 = cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420).reshape(-1)
    padded = np.zeros(h * stride * 3 // 2, np.uint8)  # Y rows, then U and V at half the stride
    padded[: h * stride].reshape(h, stride)[:, :w] = i420[: h * w].reshape(h, w)
    quarter, half = h * w // 4, (h // 2) * (stride // 2)
    for plane in (0, 1):
        rows = padded[h * stride + plane * half : h * stride + (plane + 1) * half]
        rows.reshape(h // 2, stride // 2)[:, : w // 2] = i420[
            h * w + plane * quarter : h * w + (plane + 1) * quarter
        ].reshape(h // 2, w // 2)
    yuyv = cv2.cvtColor(image, cv2.COLOR_BGR2YUV_YUY2)  # (h, w, 2)
    arrays = {  # each in the shape request.py `_make_array_shared` gives
        "RGB888": image,
        "BGR888": image[:, :, ::-1],
        "XRGB8888": cv2.cvtColor(image, cv2.COLOR_BGR2BGRA),
        "XBGR8888": cv2.cvtColor(image, cv2.COLOR_BGR2RGBA),
        "NV12": nv12(image),
        "YUV420": padded.reshape(h * 3 // 2, stride),
        "YUYV": np.concatenate([yuyv, np.zeros((h, 8, 2), np.uint8)], axis=1),
    }
    for fmt, array in arrays.items():
        bgr = picamera2_source.to_bgr(array, {"format": fmt, "size": (w, h)})
        assert bgr.shape == image.shape, fmt
        # exact for the RGB layouts; YUV's rounding and 4:2:0 chroma stay within a few levels
        error = np.abs(bgr.astype(int) - image).mean()
        assert error < (0.01 if "8888" in fmt or "888" in fmt else 6), (fmt, error)


def test_a_camera_without_an_isp_gives_nv12_and_the_frames_are_still_bgr(fake_picamera2):
    """libcamera's Virtual camera (and others without an ISP) grant NV12 for
    the RGB888 asked: the picture read is the same as from a Pi camera."""
    with make_source(SourceConfig(name="picamera2", lores_width=320)) as source:
        reference, _, _ = source.read()
    fake_picamera2.grant_formats = ("NV12",)
    with make_source(SourceConfig(name="picamera2", lores_width=320)) as source:
        image, _, gray = source.read()
        camera = fake_picamera2.instances[-1]
    assert camera.config["main"]["format"] == "NV12" and camera.config["lores"]["format"] == "NV12"
    assert image.shape == reference.shape == (480, 640, 3)
    assert np.abs(image.astype(int) - reference).mean() < 6  # the same first frame
    assert gray.shape == (240, 320)


def test_a_format_the_source_cannot_convert_is_one_line_at_open(fake_picamera2, quick):
    fake_picamera2.grant_formats = ("SBGGR10",)  # a raw Bayer stream
    with pytest.raises(SourceError, match="delivers SBGGR10, which this source does not convert"):
        make_source(SourceConfig(name="picamera2")).open()


def test_a_dead_frame_thread_is_a_loss_not_a_hang(fake_picamera2, quick):
    source = make_source(SourceConfig(name="picamera2")).open()
    camera = fake_picamera2.instances[0]
    assert source.read() is not None
    camera.kill_frame_thread()
    with pytest.raises(SourceLost, match="no frame from the Pi camera in 0.2 s: .*frame thread"):
        source.read()
    assert camera.cancelled == 1  # the pending capture job is not left to eat a frame
    source.reopen()  # closes without the stop() that would wait on the dead thread
    assert camera.closed and "stop" in camera.calls
    assert fake_picamera2.instances[1] is source.camera and source.read() is not None
    source.close()


def test_a_camera_that_cannot_close_ends_the_process(fake_picamera2, quick):
    source = make_source(SourceConfig(name="picamera2")).open()
    camera = fake_picamera2.instances[0]
    camera.close = lambda: time.sleep(10)  # stuck in native code
    start = time.monotonic()
    with pytest.raises(SourceFailed, match="did not close within 2 s .*restarts"):
        source.reopen()
    assert time.monotonic() - start < 8


def run_until(config: RunConfig, on_processed, frames: int) -> tuple[Pipeline, list]:
    """Run the pipeline until `frames` results were processed (a minute at most),
    calling `on_processed(count)` after each: the fake camera runs faster than
    any machine processes, so captured-frame limits would say nothing."""
    config = config.model_copy(update={"run": config.run.model_copy(update={"duration": 60})})
    results: list = []
    pipeline = Pipeline(config)

    def count(result):
        results.append(result)
        on_processed(len(results))
        if len(results) >= frames:
            pipeline.stop()

    pipeline.on_result = count
    pipeline.run()
    return pipeline, results


def test_pipeline_recovers_from_a_dead_frame_thread(fake_picamera2, quick, caplog):
    caplog.set_level(logging.INFO)

    def kill_at_three(count):
        if count == 3:
            fake_picamera2.instances[0].kill_frame_thread()

    _, results = run_until(pipeline_config(), kill_at_three, 13)
    assert len(fake_picamera2.instances) == 2  # reopened
    assert len(results) >= 13  # and processing went on
    assert "picamera2 is back after" in caplog.text


def test_pipeline_stops_with_one_error_when_the_camera_is_stuck(fake_picamera2, quick):
    def wedge(count):
        if count == 3:
            camera = fake_picamera2.instances[0]
            camera.close = lambda: time.sleep(5)
            camera.kill_frame_thread()

    with pytest.raises(PipelineError, match="did not close within"):
        run_until(pipeline_config(), wedge, 1000)


# -- the screen ---------------------------------------------------------------


def test_auto_is_headless_without_a_connected_screen(fake_picamera2, fake_screen, caplog):
    caplog.set_level(logging.INFO)
    fake_screen(connected=False)
    Pipeline(pipeline_config(output={"display": "auto"}, run={"max_frames": 3})).run()
    camera = fake_picamera2.instances[0]
    assert "start_preview:DRM" not in camera.calls
    assert "display auto: none (headless" in caplog.text
    assert "no screen is connected" in caplog.text and "--web PORT" in caplog.text


def test_auto_leaves_the_screen_to_a_running_desktop(fake_picamera2, fake_screen, caplog):
    """From a shell, where /proc shows the compositor."""
    caplog.set_level(logging.INFO)
    fake_screen(connected=True, compositor="labwc")
    Pipeline(pipeline_config(output={"display": "auto"}, run={"max_frames": 3})).run()
    assert "start_preview:DRM" not in fake_picamera2.instances[0].calls
    assert "the desktop (labwc) holds the screen" in caplog.text


@pytest.mark.parametrize(
    ("scene", "reason"),
    [
        # the service at boot, before lightdm started: no session, /proc hidden
        ({"desktop": "lightdm"}, "this machine boots to a desktop (lightdm)"),
        # a desktop session started by hand (startx) on a console-booting Pi
        ({"session": "wayland"}, "a wayland desktop session is active"),
    ],
)
def test_a_desktop_the_service_cannot_see_keeps_its_screen(
    fake_picamera2, fake_screen, caplog, scene, reason
):
    caplog.set_level(logging.INFO)
    fake_screen(connected=True, compositor=None, **scene)  # ProtectProc=invisible: no labwc
    Pipeline(pipeline_config(output={"display": "auto"}, run={"max_frames": 3})).run()
    assert "start_preview:DRM" not in fake_picamera2.instances[0].calls
    assert f"display auto: none (headless: no desktop session; {reason})" in caplog.text
    with pytest.raises(
        SinkError, match=re.escape(f"--display drm: {reason}; use --display window")
    ):
        Pipeline(pipeline_config(output={"display": "drm"})).run()


def test_a_console_boot_with_debians_graphical_default_is_still_a_console(fake_screen):
    import edge.screen

    root = fake_screen(connected=True)
    (root / "etc/systemd/system/default.target").unlink()  # Debian's default: graphical
    assert edge.screen.boots_to_desktop(root) is None  # but no display manager is enabled
    assert edge.screen.drm_unavailable(root) is None


def test_forcing_drm_where_it_cannot_work_is_one_clear_error(fake_picamera2, fake_screen):
    fake_screen(connected=False)
    with pytest.raises(SinkError, match="--display drm: no screen is connected.*--web PORT"):
        Pipeline(pipeline_config(output={"display": "drm"})).run()
    assert fake_picamera2.instances == []  # refused before the camera started


def test_console_preview_fills_the_screen_or_centres_the_camera(fake_picamera2, fake_screen):
    fake_screen(connected=True, mode="1920x1080")
    Pipeline(pipeline_config(output={"display": "auto"}, run={"max_frames": 2})).run()
    camera = fake_picamera2.instances[0]
    assert camera.calls.index("start_preview:DRM") < camera.calls.index("start")
    assert camera.preview_kwargs == {"x": 0, "y": 0, "width": 1920, "height": 1080}
    Pipeline(
        pipeline_config(output={"display": "drm", "fullscreen": False}, run={"max_frames": 2})
    ).run()
    assert fake_picamera2.instances[1].preview_kwargs == {
        "x": 640,
        "y": 300,
        "width": 640,
        "height": 480,
    }


def test_the_preview_fills_the_mode_the_console_runs_not_the_first_listed(
    fake_picamera2, fake_screen
):
    # video=HDMI-A-1:1280x720 on the kernel command line; the screen prefers 1080p
    fake_screen(connected=True, mode="1920x1080", console_mode="1280x720")
    Pipeline(pipeline_config(output={"display": "drm"}, run={"max_frames": 2})).run()
    assert fake_picamera2.instances[0].preview_kwargs == {
        "x": 0,
        "y": 0,
        "width": 1280,
        "height": 720,
    }


def test_a_pi5_dsi_screen_is_named_to_picamera2s_preview(fake_picamera2, fake_screen):
    import fake_kms

    fake_screen(connected=True, layout="pi5-dsi")  # card1 (HDMI) empty, DSI-1 on card2
    run_until(pipeline_config(output={"display": "drm"}), lambda count: None, 5)
    assert fake_picamera2.instances[0].preview_kwargs["device"] == "DSI-1"
    frames_shown = {c[:2] for c in fake_kms.SCREENS.commits if c[1] is not None}
    assert frames_shown == {("/dev/dri/card2", "DSI-1")}


def test_an_older_picamera2_on_a_pi5_dsi_screen_leaves_it_to_the_console_sink(
    fake_picamera2, fake_screen, monkeypatch, caplog
):
    """Before `device=`, the DRM preview opened kms++'s default card (the first
    with outputs: HDMI on a Pi 5), found nothing there and died in its thread."""
    import enum

    import picamera2

    caplog.set_level(logging.INFO)
    real = picamera2.Preview

    class OldDrmPreview(real.DRM.value):
        def __init__(self, x=0, y=0, width=640, height=480, transform=None):
            super().__init__(x, y, width, height, transform)

        def init_drm(self, x, y, width, height, transform, device=None):
            import pykms

            super().init_drm(x, y, width, height, transform, device)
            self.card = pykms.Card()  # picamera2 <= 0.3.2x
            self.resman = pykms.ResourceManager(self.card)
            self.crtc = self.resman.reserve_crtc(self.resman.reserve_connector())

    class OldPreview(enum.Enum):
        NULL = real.NULL.value
        DRM = OldDrmPreview

    monkeypatch.setattr(picamera2, "Preview", OldPreview)
    monkeypatch.setattr(fake_module, "Preview", OldPreview)
    fake_screen(connected=True, layout="pi5-dsi")
    _, results = run_until(pipeline_config(output={"display": "auto"}), lambda n: None, 5)
    assert len(results) >= 5
    assert "start_preview:DRM" not in fake_picamera2.instances[0].calls
    assert "drawing frames on the console instead" in caplog.text
    assert "display auto: console" in caplog.text
    with pytest.raises(SinkError, match="--display drm: the screen \\(DSI-1\\).*--display console"):
        Pipeline(pipeline_config(output={"display": "drm"}, run={"max_frames": 2})).run()


def test_the_overlay_follows_the_camera_across_a_reopen(fake_picamera2, fake_screen, quick):
    fake_screen(connected=True)

    def kill_at_three(count):
        if count == 3:
            fake_picamera2.instances[0].kill_frame_thread()

    run_until(pipeline_config(output={"display": "drm"}), kill_at_three, 13)
    first, second = fake_picamera2.instances
    assert "set_overlay" in first.calls and "set_overlay" in second.calls


def test_no_overlay_plane_keeps_the_picture_and_says_so_once(fake_picamera2, fake_screen, caplog):
    import fake_kms

    fake_screen(connected=True)
    fake_kms.SCREENS.overlay_planes = False
    _, results = run_until(pipeline_config(output={"display": "drm"}), lambda count: None, 20)
    assert len(results) >= 20
    warnings = [r.getMessage() for r in caplog.records if "no overlay plane" in r.getMessage()]
    assert len(warnings) == 1 and "web page" in warnings[0]
    assert fake_kms.SCREENS.commits  # the camera picture itself was shown


def test_no_overlay_before_the_preview_shows_a_frame(fake_picamera2, fake_screen):
    """The real DrmPreview says "Overlays not supported on this device" until its
    first render reserves the plane (picamera2 issue #1252): not yet, not never."""
    from edge.frames import Frame, Result
    from edge.sinks.drm import DrmSink

    fake_screen(connected=True)
    fake_picamera2.start_stalled = True  # no frame until we say
    source = make_source(SourceConfig(name="picamera2"), drm_preview=True).open()
    sink = DrmSink(source, (640, 480))
    frame = Frame(np.zeros((480, 640, 3), np.uint8), 0, 0.0)
    with sink:
        with pytest.raises(RuntimeError, match="Overlays not supported on this device"):
            source.camera.set_overlay(np.zeros((480, 640, 4), np.uint8))  # what the sink meets
        sink.write(Result(frame, []), None)
        assert sink.updates == 0 and sink.overlay_supported
        source.camera.stalled = False
        source.read()
        sink.write(Result(frame, []), None)
        assert sink.updates == 1 and source.camera.overlay is not None
    source.close()


def test_camera_module_3_focuses_continuously_or_where_told(fake_picamera2):
    with make_source(SourceConfig(name="picamera2")) as source:
        assert source.camera.config["controls"]["AfMode"] == 2  # AfModeContinuous
    with make_source(SourceConfig(name="picamera2", lens_position=2.0)) as source:
        controls = source.camera.config["controls"]
        assert controls["AfMode"] == 0 and controls["LensPosition"] == 2.0  # manual, 50 cm
    fake_picamera2.cameras = [{"Model": "imx219", "Num": 0}]  # Camera Module 2: fixed focus
    with make_source(SourceConfig(name="picamera2")) as source:
        assert "AfMode" not in source.camera.config["controls"]


def test_an_older_picamera2_is_refused_in_one_line(fake_picamera2, monkeypatch):
    monkeypatch.delattr(fake_picamera2, "cancel_all_and_flush")  # before 0.3.20
    with pytest.raises(SourceError, match="too old: bounded captures need 0.3.20.*apt"):
        make_source(SourceConfig(name="picamera2")).open()
    assert fake_picamera2.instances == []


# -- the stand-in itself fails where picamera2 would ---------------------------


def test_requests_never_released_run_the_camera_out_of_buffers(fake_picamera2):
    camera = fake_picamera2()
    camera.configure(camera.create_preview_configuration())
    camera.start()
    held = [camera.capture_request(wait=2.0) for _ in range(3)]  # 4 buffers, 1 in flight
    with pytest.raises(TimeoutError):
        for _ in range(3):
            held.append(camera.capture_request(wait=0.5))
    for request in held:
        request.release()
    assert camera.capture_request(wait=2.0) is not None  # buffers back: frames again
    camera.close()


def test_the_source_gives_every_request_back(fake_picamera2):
    with make_source(SourceConfig(name="picamera2")) as source:
        for _ in range(20):  # five times the buffers: a leak would stall here
            assert source.read() is not None
        assert source.camera.held_buffers() <= 2  # in flight, and the preview's


def test_a_stalled_camera_with_a_live_thread_is_a_loss(fake_picamera2, quick):
    source = make_source(SourceConfig(name="picamera2")).open()
    assert source.read() is not None
    source.camera.stalled = True
    with pytest.raises(
        SourceLost, match="no frame from the Pi camera in 0.2 s: the camera stalled"
    ):
        source.read()
    source.reopen()  # stop() through the live frame thread, which joins
    assert fake_picamera2.instances[0].closed
    assert not fake_picamera2.instances[0]._preview  # its preview thread stopped
    assert source.read() is not None
    source.close()


def test_libcamera_and_picamera2_keep_their_chatter_to_errors(fake_picamera2, monkeypatch):
    monkeypatch.delenv("LIBCAMERA_LOG_LEVELS", raising=False)
    with make_source(SourceConfig(name="picamera2")):
        pass
    assert os.environ["LIBCAMERA_LOG_LEVELS"] == "*:ERROR"  # read by libcamera at start
    assert logging.getLogger("picamera2").getEffectiveLevel() == logging.WARNING
    monkeypatch.setenv("LIBCAMERA_LOG_LEVELS", "*:DEBUG")  # a user's own choice stays
    with make_source(SourceConfig(name="picamera2")):
        pass
    assert os.environ["LIBCAMERA_LOG_LEVELS"] == "*:DEBUG"


def test_the_capture_time_is_the_start_of_the_exposure(monkeypatch):
    """libcamera stamps the end of the exposure (the readout); the frame's time
    is that less ExposureTime, to the microsecond."""
    monkeypatch.setattr(picamera2_source.time, "monotonic", lambda: 1000.5)
    stamp = picamera2_source.sensor_time(
        {"SensorTimestamp": 1_000_000_000_000, "ExposureTime": 15_000}
    )
    assert stamp == pytest.approx(1000.0 - 0.015, abs=1e-9)
    assert picamera2_source.sensor_time({"SensorTimestamp": 1_000_000_000_000}) == 1000.0
    assert picamera2_source.sensor_time({"SensorTimestamp": 1_000_000_000}) is None  # 999 s off
    assert picamera2_source.sensor_time({}) is None
