"""sd_notify against a real Unix datagram socket standing in for systemd."""

import threading
import time

from test_pipeline import CollectSink, config

from edge.engine import Pipeline
from edge.notify import Notifier, ServiceNotifier, watchdog_interval
from edge.sources.base import Source
from edge.sources.video import VideoSource


def test_no_socket_means_no_op(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = Notifier()
    assert not notifier.enabled and notifier.send("READY=1") is False


def test_watchdog_interval_is_half_of_watchdog_sec(monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "15000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert watchdog_interval() == 7.5
    monkeypatch.setenv("WATCHDOG_PID", "1")  # meant for another process
    assert watchdog_interval() is None


class StallingSource(Source):
    """A camera that delivers `good` frames, then hangs (a wedged driver)."""

    live = True
    fps = 15.0
    description = "stalling camera"

    def __init__(self, good: int, release: threading.Event):
        super().__init__()
        self.good, self.release, self.reads = good, release, 0

    def _open(self):
        self.inner = VideoSource(__import__("conftest").DEMO_CLIP).open()

    def _read(self):
        self.reads += 1
        if self.reads > self.good:
            self.release.wait(10)
            return None
        time.sleep(1 / self.fps)
        return self.inner.read()

    def _close(self):
        self.inner.close()


def test_ready_after_first_frame_and_watchdog_stops_when_frames_stall(systemd_socket):
    path, messages = systemd_socket
    release = threading.Event()
    service = ServiceNotifier(Notifier(path), interval=0.2)
    processed_at: list[float] = []

    def on_result(result):
        service.on_result(result)
        processed_at.append(time.monotonic())

    pipeline = Pipeline(
        config(output={"stats_interval": 0.3}),
        source=StallingSource(good=20, release=release).open(),
        sinks=[CollectSink()],
        on_result=on_result,
        on_stats=service.on_stats,
    )
    summary = []
    runner = threading.Thread(target=lambda: summary.append(pipeline.run()))
    source = pipeline.source
    with service:
        runner.start()
        deadline = time.monotonic() + 60  # start-up is slow on a loaded machine
        # the 20 good frames are all through the pipeline (processed or replaced)
        while time.monotonic() < deadline:
            done = pipeline.stats.snapshot()
            if source.reads > 20 and done["frames_processed"] + done["frames_skipped"] == 20:
                break
            time.sleep(0.05)
        stalled_at = len(processed_at)
        through = time.monotonic()  # every good frame processed or skipped by now
        time.sleep(2.0)  # the camera hangs: no frame for 2 s
        release.set()
        pipeline.stop()
        runner.join(5)
    deadline = time.monotonic() + 2  # the receiver thread reads asynchronously
    while not any(m == "STOPPING=1" for _, m in messages) and time.monotonic() < deadline:
        time.sleep(0.02)
    texts = [m for _, m in messages]
    pings = [t for t, m in messages if m == "WATCHDOG=1"]
    assert texts[0].startswith("READY=1"), texts
    # every good frame was processed or, on a slow machine, replaced by a newer one
    assert len(processed_at) == stalled_at
    assert summary[0]["frames_processed"] + summary[0]["frames_skipped"] == 20
    assert len(pings) >= 3, texts  # pinged while frames flowed (1.3 s at 15 fps)
    # once frames stopped, at most one more ping (for frames since the last
    # one: a frame skipped for a newer one is progress too, so this counts
    # from when all 20 were through, not from the last one processed)
    assert sum(t > through for t in pings) <= 1, texts
    # ...and none through the rest of the 2 s hang (a busy machine may be late
    # with that one, never with the silence that follows)
    assert max(pings) < through + 1.0, texts
    assert any(m.startswith("STATUS=") and "fps" in m for m in texts)
    assert texts[-1] == "STOPPING=1", [
        (round(t - processed_at[0], 2), m[:12]) for t, m in messages
    ][-6:]


def test_abstract_socket_address():
    assert Notifier("@/org/freedesktop/systemd1/notify").address.startswith("\0")


def test_the_status_says_the_camera_is_waited_for_until_a_frame_comes():
    """Stats snapshots keep coming while the camera is gone: they must not
    replace "waiting for ..." in `systemctl status` (found by make pi-vm-check,
    where the status read "0.0 fps" through a 30 s unplug)."""

    class Recorder:
        enabled = True

        def __init__(self):
            self.sent: list[str] = []

        def send(self, message: str) -> bool:
            self.sent.append(message)
            return True

    recorder = Recorder()
    service = ServiceNotifier(recorder, interval=0)
    snapshot = {"processed_fps": 0.0, "latency_ms": {"p50": 1.0, "p95": 2.0}, "faces": 0}

    def status() -> str:
        return [m for m in recorder.sent if "STATUS=" in m][-1].split("STATUS=", 1)[1]

    service.on_result(None)
    service.on_stats({**snapshot, "processed_fps": 14.5})
    assert status().startswith("14.5 fps")
    service.on_waiting("waiting for webcam 0 since 10:00:00")
    for _ in range(3):
        service.on_stats(snapshot)
        service.on_waiting("waiting for webcam 0 since 10:00:00")
    assert status() == "waiting for webcam 0 since 10:00:00"
    service.on_result(None)  # it is back
    service.on_stats({**snapshot, "processed_fps": 15.0})
    assert status().startswith("15.0 fps")
    service.on_waiting("waiting for webcam 0 since 10:05:00")  # lost again
    assert status() == "waiting for webcam 0 since 10:05:00"
