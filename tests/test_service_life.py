"""The service's life with a real network camera that comes late, dies and returns.

The real `emotion-edge run` in a subprocess, with a real `$NOTIFY_SOCKET`
standing in for systemd and a real MJPEG camera on loopback (conftest). No
assertion depends on how fast this machine is: each wait has a generous
deadline, and the times it took are printed, not asserted (except the stop
on SIGTERM, the product's promise, which waits on nothing but the stop event).
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow


def wait_for(predicate, timeout: float, what: str) -> float:
    """Seconds until `predicate()` held; fails after `timeout`."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - start


def frames_in(path: Path) -> int:
    if not path.exists():
        return 0
    return sum(1 for line in path.read_text().splitlines() if line.startswith('{"type":"frame"'))


def test_a_network_camera_late_then_lost_twice_is_waited_for(
    mjpeg_camera, systemd_socket, tmp_path
):
    notify, messages = systemd_socket
    events, log_file = tmp_path / "events.jsonl", tmp_path / "stderr.log"
    env = {**os.environ, "NOTIFY_SOCKET": notify, "WATCHDOG_USEC": "1000000"}
    env.pop("WATCHDOG_PID", None)
    with log_file.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "edge", "run", "--source", mjpeg_camera.url,
             "--display", "none", "--events", str(events)],
            cwd=ROOT, env=env, stderr=stderr, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    log = log_file.read_text
    try:
        # 1. Down at start: the service is up and waiting, and says so to systemd.
        wait_for(lambda: any("waiting for" in m for _, m in messages), 60, "a waiting STATUS")
        assert any(m.startswith("READY=1") for _, m in messages)
        pings = sum(m == "WATCHDOG=1" for _, m in messages)
        time.sleep(2.0)
        assert sum(m == "WATCHDOG=1" for _, m in messages) >= pings + 2  # the wait pings
        # 2. The camera comes: frames within seconds.
        mjpeg_camera.start()
        first = wait_for(lambda: frames_in(events) > 0, 60, "the first frame")
        # 3. Lost mid-run, then back.
        mjpeg_camera.kill()
        wait_for(lambda: log().count("waiting for it") == 2, 60, "the loss to be noticed")
        before, pings = frames_in(events), sum(m == "WATCHDOG=1" for _, m in messages)
        time.sleep(2.0)
        assert sum(m == "WATCHDOG=1" for _, m in messages) >= pings + 2
        mjpeg_camera.start()
        back = wait_for(lambda: frames_in(events) > before, 60, "frames after the return")
        # 4. Lost again, and SIGTERM mid-wait: it stops at once.
        mjpeg_camera.kill()
        wait_for(lambda: log().count("waiting for it") == 3, 60, "the second loss")
        proc.send_signal(signal.SIGTERM)
        stopped = wait_for(lambda: "stopped while waiting" in log(), 10, "the stop")
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    print(f"first frame {first:.1f} s after the camera came; back {back:.1f} s after its return; "
          f"stopped {stopped:.2f} s after SIGTERM")  # fmt: skip
    text = log()
    assert stopped < 2.0, text
    assert "Traceback" not in text and " ERROR " not in text, text
    # One line per change of state: three losses, three returns, nothing per retry.
    assert text.count("waiting for it") == 3 and text.count("is back after") == 2, text
    assert "Connection refused" not in text  # FFmpeg's own retry chatter is silenced
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    assert lines[0]["type"] == "start" and len({line["run"] for line in lines}) == 1
