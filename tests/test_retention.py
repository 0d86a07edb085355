"""[output] keep_days: a new file each day, and files past keep_days deleted at
start and hourly; on a fake wall clock (edge.retention.clock), never sleeps."""

import json
import os
import time

import numpy as np
import pytest
from conftest import assert_one_line_error, run_cli

import edge.retention as retention
from edge.frames import Frame, Result
from edge.sinks.events import EventsSink
from edge.sinks.video import VideoSink

DAY = 86400.0
T0 = time.time()  # the fake clock starts at the files' own time, then runs ahead


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = Clock(T0)
    monkeypatch.setattr(retention, "clock", fake)
    return fake


def aged(path, days_old: float, now: float) -> None:
    path.write_text('{"type":"start","run":"old","t":"2020-01-01T00:00:00+00:00"}\n')
    os.utime(path, (now - days_old * DAY, now - days_old * DAY))


def frame_result(index: int) -> Result:
    return Result(Frame(np.zeros((48, 64, 3), np.uint8), index, 0.0), [])


def test_events_older_than_keep_days_go_newer_ones_stay(tmp_path, clock):
    events = tmp_path / "events.jsonl"
    aged(tmp_path / "events.3.jsonl", 40, T0)  # past 30 days
    aged(tmp_path / "events.2.jsonl", 28, T0)  # within, even a day later
    aged(tmp_path / "other.1.jsonl", 400, T0)  # not this output's
    sink = EventsSink(str(events), run="r1", keep_days=30)
    with sink:
        assert not (tmp_path / "events.3.jsonl").exists()  # deleted at start
        assert (tmp_path / "events.2.jsonl").exists() and (tmp_path / "other.1.jsonl").exists()
        sink.write(frame_result(0), None)
        clock.now += DAY + 1  # a day later: this file is a day old, a new one begins
        sink.write(frame_result(1), None)
        assert (tmp_path / "events.1.jsonl").exists()
        assert json.loads(events.read_text().splitlines()[0])["type"] == "start"  # its header
        assert (tmp_path / "events.3.jsonl").exists()  # the 28-day file, shifted
        os.utime(tmp_path / "events.3.jsonl", (0, 0))  # ...now long past keep_days
        clock.now += 60  # within the hour: nothing is looked at
        sink.write(frame_result(2), None)
        assert (tmp_path / "events.3.jsonl").exists()
        clock.now += retention.CHECK_S
        sink.write(frame_result(3), None)
        assert not (tmp_path / "events.3.jsonl").exists()  # hourly: deleted
        assert (tmp_path / "events.1.jsonl").exists()  # yesterday's: kept
    assert len(events.read_text().splitlines()) == 3  # header, frames 2 and 3


def test_a_restart_keeps_the_files_day_from_its_start_line(tmp_path, clock):
    events = tmp_path / "events.jsonl"
    with EventsSink(str(events), run="r1", keep_days=7):
        pass
    clock.now += 2 * DAY  # restarted two days later: yesterday's lines do not stay
    with EventsSink(str(events), run="r2", keep_days=7):
        pass
    assert json.loads((tmp_path / "events.1.jsonl").read_text().splitlines()[0])["run"] == "r1"
    assert json.loads(events.read_text().splitlines()[0])["run"] == "r2"


def test_recordings_past_keep_days_go(tmp_path, clock):
    old = tmp_path / "out.20200101T000000.mkv"  # set aside while the disk was full
    aged(old, 10, T0)
    recent = tmp_path / "out.1.mkv"
    aged(recent, 1, T0)
    sink = VideoSink(tmp_path / "out.mkv", fps=5, keep_days=7)
    with sink:
        assert not old.exists() and recent.exists()
        frame = np.zeros((48, 64, 3), np.uint8)
        sink.write(frame_result(0), frame)
        clock.now += DAY + 1
        sink.write(frame_result(1), frame)
        assert (tmp_path / "out.1.mkv").exists() and (tmp_path / "out.2.mkv").exists()


def test_negative_keep_days_is_one_line(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("[output]\nkeep_days = -1\n")
    assert_one_line_error(run_cli("check-config", str(config)), "output.keep_days")


def test_retention_deletes_only_the_files_it_wrote(tmp_path, clock, caplog):
    """A user's files beside ours match the old `events.*.jsonl` glob; they stay,
    however old, and each file that goes is named in the log."""
    caplog.set_level("INFO")
    decoys = [
        tmp_path / name
        for name in (
            "events.backup.jsonl",
            "events.2024-summary.jsonl",
            "events.2024.jsonl",  # a number rotation never reaches
            "events.1.old.jsonl",
            "annotated.wedding.mkv",
            "annotated.2024-06-01.mkv",
        )
    ]
    for decoy in decoys:
        aged(decoy, 400, T0)
    ours = [tmp_path / "events.2.jsonl", tmp_path / "annotated.20250101T120000.mkv"]
    for old in ours:
        aged(old, 400, T0)
    with EventsSink(str(tmp_path / "events.jsonl"), run="r1", keep_days=30):
        pass
    with VideoSink(str(tmp_path / "annotated.mkv"), fps=5, keep_days=30):
        pass
    assert [decoy for decoy in decoys if not decoy.exists()] == []
    assert [old for old in ours if old.exists()] == []
    for old in ours:
        assert f"{old} deleted: older than 30 days" in caplog.text
