"""The console's screen for any source: frames drawn into the framebuffer
(a file standing in for /dev/fb0, laid out by the fake_screen fixture)."""

import logging
import os

import numpy as np
import pytest

from edge import screen
from edge.config import RunConfig
from edge.engine import Pipeline
from edge.frames import Frame, Result
from edge.sinks import SinkError
from edge.sinks.console import ConsoleSink, placement


def test_placement_letterboxes_and_centres():
    assert placement((640, 480), (1920, 1080), True) == (240, 0, 1440, 1080)
    assert placement((640, 480), (1920, 1080), False) == (640, 300, 640, 480)
    assert placement((1920, 1080), (800, 480), False) == (0, 15, 800, 450)  # shrunk to fit


@pytest.mark.parametrize("bits", [32, 16])
def test_frames_land_in_the_framebuffer_scaled_and_converted(fake_screen, bits):
    root = fake_screen(connected=True, mode="1280x720")
    (root / "sys/class/graphics/fb0/bits_per_pixel").write_text(f"{bits}\n")
    (root / "sys/class/graphics/fb0/stride").write_text(f"{1280 * bits // 8 + 64}\n")  # padded
    fb = screen.framebuffer(root=root)
    (root / "dev/fb0").write_bytes(bytes(fb.stride * 720))
    image = np.zeros((240, 320, 3), np.uint8)
    image[:, :, 2] = 255  # red (BGR)
    with ConsoleSink(fb) as sink:
        sink.write(Result(Frame(image, 0, 0.0), []), image)
        rows = np.frombuffer((root / "dev/fb0").read_bytes(), np.uint8).reshape(720, fb.stride)
        # 320x240 -> 960x720, centred: columns 160..1119
        depth = bits // 8
        inside = rows[360, 640 * depth : 641 * depth]
        outside = rows[360, 100 * depth : 101 * depth]
        if bits == 32:
            assert list(inside) == [0, 0, 255, 255]  # B, G, R, X
        else:
            assert int.from_bytes(bytes(inside), "little") == 0xF800  # RGB565 red
        assert not outside.any()  # the bars stay black
    cleared = (root / "dev/fb0").read_bytes()
    assert not any(cleared)  # the console is given back blank


def test_a_webcam_or_a_file_on_a_console_pi_is_drawn_on_the_screen(fake_screen, caplog):
    caplog.set_level(logging.INFO)
    root = fake_screen(connected=True, mode="640x480")
    seen = []
    config = RunConfig.model_validate(
        {"source": {"name": "demo"}, "output": {"display": "auto"}, "run": {"max_frames": 3}}
    )
    pipeline = Pipeline(config)
    pipeline.on_result = lambda result: seen.append((root / "dev/fb0").read_bytes().count(0))
    pipeline.run()
    assert "display auto: console" in caplog.text
    assert len(seen) == 3 and min(seen) < 640 * 480 * 4 // 2  # mostly picture, not black


def test_console_on_a_desktop_or_without_a_framebuffer_is_one_clear_error(fake_screen):
    fake_screen(connected=True, desktop="lightdm")
    config = RunConfig.model_validate(
        {"source": {"name": "demo"}, "output": {"display": "console"}, "run": {"max_frames": 1}}
    )
    with pytest.raises(SinkError, match=r"--display console: this machine boots to a desktop"):
        Pipeline(config).run()
    fake_screen(connected=True, framebuffer=False)
    (screen.ROOT / "etc/systemd/system/display-manager.service").unlink()
    (screen.ROOT / "sys/class/graphics/fb0/device").unlink()
    with pytest.raises(SinkError, match=r"no framebuffer .*vc4-kms-v3d"):
        Pipeline(config).run()


def test_permission_denied_on_the_framebuffer_names_the_group(fake_screen, monkeypatch):
    root = fake_screen(connected=True, mode="640x480")
    (root / "dev/fb0").chmod(0)
    fb = screen.framebuffer(root=root)
    if os.geteuid() == 0:
        # root opens anything (CI runs as root): the kernel's refusal, as a user gets it
        import builtins

        real_open = builtins.open

        def refusing_open(path, *args, **kwargs):
            if str(path) == str(fb.device):
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", refusing_open)
    with pytest.raises(SinkError, match="permission denied on .*fb0: add the user to the video"):
        ConsoleSink(fb).open()
