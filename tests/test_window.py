"""The window display under a real X server (Xvfb): the window opens and frames show."""

import os
import shutil
import subprocess
import sys
import time

import pytest
from conftest import ROOT, run_cli

pytestmark = pytest.mark.skipif(
    shutil.which("Xvfb") is None or shutil.which("xdotool") is None,
    reason="Xvfb and xdotool are not installed (apt install xvfb xdotool)",
)


@pytest.fixture
def xvfb():
    display = f":{90 + os.getpid() % 50}"
    server = subprocess.Popen(
        ["Xvfb", display, "-screen", "0", "800x600x24", "-nolisten", "tcp"],
        stderr=subprocess.DEVNULL,
    )
    for _ in range(50):  # up to 5 s for the server to accept clients
        if (
            subprocess.run(
                ["xdotool", "getdisplaygeometry"],
                env={**os.environ, "DISPLAY": display},
                capture_output=True,
            ).returncode
            == 0
        ):
            break
        time.sleep(0.1)
    else:
        server.kill()
        pytest.skip("Xvfb did not start")
    yield display
    server.terminate()
    server.wait(5)


def test_window_display_shows_frames(xvfb, tmp_path):
    env = {**os.environ, "DISPLAY": xvfb, "QT_QPA_PLATFORM": "xcb"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edge",
            "run",
            "--source",
            "demo",
            "--realtime",
            "--display",
            "auto",
            "--duration",
            "4",
        ],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    found = b""
    deadline = time.monotonic() + 90  # start-up is slow on a loaded machine
    while time.monotonic() < deadline and proc.poll() is None and not found:
        found = subprocess.run(
            ["xdotool", "search", "--name", "emotion-edge"], env=env, capture_output=True
        ).stdout.strip()
        time.sleep(0.2)
    _, stderr = proc.communicate(timeout=90)
    assert proc.returncode == 0, stderr
    assert found, "no emotion-edge window appeared"
    assert "display auto: window" in stderr and "sinks window" in stderr
    assert "summary:" in stderr


def test_no_display_means_headless():
    headless = {"DISPLAY": "", "WAYLAND_DISPLAY": ""}
    proc = run_cli(
        "run", "--source", "demo", "--display", "auto", "--max-frames", "3", env=headless
    )
    assert proc.returncode == 0, proc.stderr
    assert "display auto: none (headless" in proc.stderr
    proc = run_cli(
        "run", "--source", "demo", "--display", "window", "--max-frames", "3", env=headless
    )
    assert proc.returncode == 2 and "use --display none" in proc.stderr
