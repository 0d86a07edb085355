"""Output files over a long life: rotation, restarts, a full disk, a hard kill."""

import json
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from conftest import ROOT

from edge.frames import Frame, Result
from edge.sinks import rotation, video
from edge.sinks.base import SinkError
from edge.sinks.events import EventsSink, JsonLinesWriter
from edge.sinks.rotation import numbered, rotate
from edge.sinks.video import VideoSink


def frame_result(i: int = 0) -> tuple[Result, np.ndarray]:
    rng = np.random.default_rng(i)  # noise: it compresses badly, so files grow fast
    image = rng.integers(0, 255, (240, 320, 3), np.uint8)
    return Result(Frame(image, i, 0.0), []), image


def test_rotate_shifts_older_files_and_keeps_at_most_keep(tmp_path):
    path = tmp_path / "events.jsonl"
    for n in range(5):
        path.write_text(f"run {n}\n")
        rotate(path, keep=3)
    assert not path.exists()
    assert [numbered(path, n).read_text() for n in (1, 2, 3)] == ["run 4\n", "run 3\n", "run 2\n"]
    assert not numbered(path, 4).exists()
    assert numbered(path, 2).name == "events.2.jsonl"  # the extension stays last


def test_events_rotate_and_each_file_begins_with_the_run(tmp_path):
    path = tmp_path / "events.jsonl"
    sink = EventsSink(str(path), run="r1", details={"source": "test"})
    sink.max_mb, sink.keep = 0.002, 2  # 2 KB
    with sink:
        for i in range(100):
            sink.write(*frame_result(i))
    files = [path, numbered(path, 1), numbered(path, 2)]
    assert all(f.exists() for f in files) and not numbered(path, 3).exists()
    for f in files:
        lines = [json.loads(line) for line in f.read_text().splitlines()]
        assert lines[0]["type"] == "start" and lines[0]["run"] == "r1"
        assert all(line["run"] == "r1" for line in lines)
        assert f.stat().st_size < 2_000 + 500  # rotated just past the limit


def test_stats_writer_rotates_too(tmp_path):
    writer = JsonLinesWriter(str(tmp_path / "stats.jsonl"), max_mb=0.001, keep=1)
    writer.header = {"type": "start", "run": "r"}
    for i in range(50):
        writer.write({"type": "stats", "run": "r", "n": i, "pad": "x" * 50})
    writer.close()
    assert numbered(tmp_path / "stats.jsonl", 1).exists()


def test_a_recording_rotates_by_size_and_a_restart_keeps_the_last_one(tmp_path):
    path = tmp_path / "rec.mkv"
    for _ in range(2):  # two runs, as a restarted service
        with VideoSink(path, fps=15, max_mb=0.2, keep=5) as sink:
            for i in range(40):
                sink.write(*frame_result(i))
    kept = sorted(tmp_path.glob("rec*.mkv"))
    assert len(kept) >= 3  # both runs' files, none lost
    for f in kept:
        cap = cv2.VideoCapture(str(f))
        assert cap.read()[0], f
        cap.release()


def test_recording_pauses_below_the_free_space_floor_and_resumes(tmp_path, monkeypatch, caplog):
    free = {"mb": 10_000.0}
    monkeypatch.setattr(video, "free_mb", lambda path: free["mb"])
    monkeypatch.setattr(video, "SPACE_CHECK_S", 0.0)
    path = tmp_path / "rec.mkv"
    with VideoSink(path, fps=15, min_free_mb=500) as sink:
        for i in range(5):
            sink.write(*frame_result(i))
        free["mb"] = 100.0  # the disk fills up
        for i in range(5):
            sink.write(*frame_result(i))
        assert sink.paused
        free["mb"] = 10_000.0
        for i in range(5):
            sink.write(*frame_result(i))
        assert not sink.paused
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "paused: 100 MB free" in warnings[0].getMessage()
    # the recording before the pause is kept whole, the one after it is new
    files = sorted(tmp_path.glob("rec*.mkv"))
    assert len(files) == 2
    counts = [int(cv2.VideoCapture(str(f)).get(cv2.CAP_PROP_FRAME_COUNT)) for f in files]
    assert sorted(counts) == [5, 5]


def test_rotation_free_mb_reads_the_disk(tmp_path):
    assert 0 < rotation.free_mb(tmp_path / "x.mkv") < float("inf")


@pytest.mark.parametrize("name", ["rec.mp4", "rec.MOV", "rec.m4v"])
def test_a_service_refuses_a_recording_a_power_cut_would_lose(tmp_path, monkeypatch, name):
    """An .mp4 cut by a power cut has no index and plays 0 frames: a service
    (NOTIFY_SOCKET set) refuses it in one line naming .mkv, and touches nothing."""
    path = tmp_path / name
    path.write_bytes(b"an earlier recording")
    monkeypatch.setenv("NOTIFY_SOCKET", "/run/systemd/notify")
    with pytest.raises(SinkError, match=r"as a service: .* record to rec\.mkv$") as refused:
        VideoSink(path, fps=15, max_mb=1).open()
    assert "\n" not in str(refused.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # not rotated aside
    monkeypatch.delenv("NOTIFY_SOCKET")
    VideoSink(tmp_path / "rec.mkv", fps=15).open().close()  # from a terminal: any format


@pytest.mark.slow
def test_a_recording_killed_with_sigkill_is_still_playable(tmp_path):
    """A power cut mid-recording: the .mkv decodes up to its last seconds."""
    record, stats = tmp_path / "rec.mkv", tmp_path / "stats.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge", "run", "--source", "demo", "--loop", "--realtime",
         "--display", "none", "--record", str(record), "--stats", str(stats),
         "--stats-interval", "0.5"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (record.exists() and record.stat().st_size > 1_500_000):
            assert time.monotonic() < deadline and proc.poll() is None, "no recording grew"
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    written = [json.loads(line) for line in stats.read_text().splitlines() if '"stats"' in line]
    processed = written[-1]["frames_processed"]  # at most 0.5 s before the kill
    cap = cv2.VideoCapture(str(record))
    decoded = 0
    while cap.read()[0]:
        decoded += 1
    print(f"decoded {decoded} of about {processed} frames recorded before SIGKILL")
    assert decoded >= 0.5 * processed > 0


def test_recordings_and_events_reach_the_disk_every_few_seconds(tmp_path, monkeypatch):
    """Written data waits up to 30 s in the kernel's memory, and a power cut
    loses it: recordings and events are fsynced every SYNC_EVERY_S instead."""
    import os

    from edge.sinks import base

    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.path.basename(os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    monkeypatch.setattr(base.os, "fsync", fsync)
    clock = [100.0]
    monkeypatch.setattr(base.time, "monotonic", lambda: clock[0])
    frame = np.zeros((48, 64, 3), np.uint8)
    result = Result(Frame(frame, 0, 0.0), [], 0.0)
    with VideoSink(tmp_path / "rec.mkv", fps=15) as sink:
        writer = JsonLinesWriter(str(tmp_path / "events.jsonl"))
        for _second in range(12):  # 12 s of frames and lines, 3 a second
            for _ in range(3):
                sink.write(result, frame)
                writer.write({"type": "frame"})
            clock[0] += 1.0
        writer.close()
    assert synced.count("rec.mkv") == synced.count("events.jsonl") == int(12 // base.SYNC_EVERY_S)
