"""The pipeline in-process: back-pressure, dropping, decode errors, reconnects."""

import threading
import time
import types

import numpy as np
import pytest
from conftest import DEMO_CLIP, demo_truth
from fake_picamera2 import FakePicamera2

from edge.config import RunConfig
from edge.engine import Pipeline
from edge.sinks.base import Sink
from edge.sources.base import FrameError, Source, SourceLost
from edge.sources.video import VideoSource


class CollectSink(Sink):
    """Keeps every result; optionally slow, to make a live pipeline drop."""

    name = "collect"

    def __init__(self, delay_s: float = 0.0):
        super().__init__()
        self.results, self.delay_s = [], delay_s

    def _write(self, result, annotated):
        time.sleep(self.delay_s)
        self.results.append(result)


def config(**sections) -> RunConfig:
    base = {"output": {"display": "none", "stats_interval": 0.5}}
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    return RunConfig.model_validate(base)


def test_offline_file_processes_every_frame_in_order():
    sink = CollectSink()
    summary = Pipeline(config(source={"name": "demo"}), sinks=[sink]).run()
    frames = [r.frame.index for r in sink.results]
    assert frames == list(range(len(demo_truth()["frames"])))
    assert summary["frames_skipped"] == 0
    assert summary["frames_processed"] == summary["frames_captured"] == len(frames)
    for result in sink.results:
        assert set(result.stage_ms) == {"capture", "detect", "classify", "render"}
        # latency covers every stage the frame went through
        assert result.latency_ms >= result.stage_ms["detect"] + result.stage_ms["classify"]


def test_realtime_file_drops_when_output_is_slow_and_counts_it():
    sink = CollectSink(delay_s=0.15)  # ~6 fps output for a 15 fps clip
    snapshots = []
    pipeline = Pipeline(
        config(source={"name": "demo", "realtime": True}, run={"duration": 3.0}),
        sinks=[sink],
        on_stats=snapshots.append,
    )
    summary = pipeline.run()
    assert summary["frames_skipped"] > 0
    assert snapshots and snapshots[-1]["frames_skipped"] > 0  # counted live, not only at the end
    assert summary["frames_processed"] + summary["frames_skipped"] <= summary["frames_captured"]
    assert summary["frames_processed"] == len(sink.results)
    # newest wins: indices only increase, with gaps
    indices = [r.frame.index for r in sink.results]
    assert indices == sorted(indices) and indices[-1] - indices[0] >= len(indices)
    # no backlog: the last result is a recent frame, not an old queued one
    assert summary["latency_ms"]["p95"] < 1000


class SlowFile(Source):
    """A file recorded at one frame every 2 s: played like a camera, a run of a
    second reads two frames (the second is read when due), whatever the
    machine's speed."""

    fps = 0.5
    description = "slow file"

    def _open(self):
        self.inner = VideoSource(DEMO_CLIP).open()

    def _read(self):
        return self.inner.read()

    def _close(self):
        self.inner.close()


@pytest.mark.parametrize("unpaced", [False, True])
def test_a_paced_file_read_unpaced_for_a_while_takes_frames_as_fast_as_it_can(unpaced):
    """What a soak measures at its start and end (benchmarks/soak.py)."""
    pipeline = Pipeline(
        config(source={"realtime": True}, run={"duration": 1.0}),
        source=SlowFile().open(),
        sinks=[CollectSink()],
    )
    if unpaced:
        pipeline.unpaced_for(60)
    summary = pipeline.run()
    if unpaced:
        assert summary["frames_captured"] > 2
    else:
        assert summary["frames_captured"] == 2


class FlakySource(Source):
    """A live camera that breaks one frame, then drops out once, then recovers."""

    live = True
    fps = 30.0
    description = "flaky camera"

    def __init__(self):
        super().__init__()
        self.inner = VideoSource(DEMO_CLIP)
        self.reads = 0
        self.reopened = 0

    def _open(self):
        self.inner = VideoSource(DEMO_CLIP).open()

    def _read(self):
        self.reads += 1
        if self.reads == 3:
            raise FrameError("frame 2 did not decode")
        if self.reads == 6 and not self.reopened:
            raise SourceLost("flaky camera stopped delivering frames")
        return self.inner.read()

    def reopen(self):
        self.reopened += 1
        super().reopen()

    def _close(self):
        self.inner.close()


def test_decode_errors_are_counted_and_lost_sources_reopened(caplog, monkeypatch):
    monkeypatch.setattr("edge.sources.waiting.LOCAL_BACKOFF_S", (0.05,))
    caplog.set_level("INFO")
    source = FlakySource().open()
    sink = CollectSink()
    summary = Pipeline(config(run={"max_frames": 20}), source=source, sinks=[sink]).run()
    assert summary["decode_errors"] == 1
    assert source.reopened == 1
    assert "flaky camera: flaky camera stopped delivering frames; waiting for it" in caplog.text
    assert "flaky camera is back after" in caplog.text
    assert summary["frames_captured"] >= 15


def test_stop_from_another_thread_ends_promptly():
    pipeline = Pipeline(config(source={"name": "demo", "realtime": True}), sinks=[CollectSink()])
    threading.Timer(0.8, pipeline.stop).start()
    started = time.monotonic()
    pipeline.run()
    assert time.monotonic() - started < 0.8 + 2.0


def test_pipeline_on_the_fake_pi_camera(fake_picamera2):
    sink = CollectSink()
    summary = Pipeline(
        config(source={"name": "picamera2"}, run={"max_frames": 12}), sinks=[sink]
    ).run()
    assert summary["frames_processed"] >= 1
    camera = FakePicamera2.instances[0]
    assert camera.closed and camera.calls[-2:] == ["stop", "close"]
    # the sensor timestamp is the capture time: latency includes the 5 ms before read
    assert min(r.latency_ms for r in sink.results) >= 5.0


def test_a_failing_output_is_switched_off_and_the_rest_carries_on(caplog):
    class FullDisk(CollectSink):
        name = "full"

        def _write(self, result, annotated):
            if result.frame.index == 3:
                raise OSError(28, "No space left on device")
            self.results.append(result)

    full, healthy = FullDisk(), CollectSink()
    pipeline = Pipeline(
        config(source={"name": "demo"}, run={"max_frames": 20}), sinks=[full, healthy]
    )
    summary = pipeline.run()
    assert summary["frames_processed"] == 20 and len(healthy.results) == 20
    assert len(full.results) == 3 and full._state == "closed"
    assert pipeline.failed_outputs == ["full sink: No space left on device"]
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors == [
        "full sink failed: No space left on device; it is off for this run, the rest carries on"
    ]


def test_a_bug_in_a_stage_stops_the_pipeline_with_an_error():
    class BrokenSink(CollectSink):
        def _write(self, result, annotated):
            raise ValueError("a bug")

    from edge.engine import PipelineError

    with pytest.raises(PipelineError, match="a bug"):
        Pipeline(config(source={"name": "demo"}), sinks=[BrokenSink()]).run()


def test_drm_display_on_the_fake_pi_camera(fake_picamera2, fake_screen, monkeypatch):
    """Console Pi: DRM preview before start, detection on lores, RGBA overlay on top."""
    fake_screen(connected=True)
    sink = CollectSink()
    pipeline = Pipeline(
        config(source={"name": "picamera2"}, output={"display": "drm"}, run={"max_frames": 45}),
    )
    import edge.engine
    from edge.sinks import make_sinks

    def with_collector(context):
        return [*make_sinks(context), sink]

    monkeypatch.setattr(edge.engine, "make_sinks", with_collector)
    pipeline.run()
    camera = FakePicamera2.instances[0]
    assert camera.calls.index("start_preview:DRM") < camera.calls.index("start")
    assert camera.overlay is None  # cleared when the sink closed
    updates = camera.calls.count("set_overlay") - 1
    assert 1 <= updates <= len(sink.results)
    # boxes found on the 320x240 lores stream come back in 640x480 main pixels
    truth = {f["frame"]: f["faces"] for f in demo_truth()["frames"]}
    from edge.scoring import match

    matched = total = 0
    for result in sink.results:
        faces = truth[result.frame.index]  # the fake plays the demo clip from frame 0
        total += len(faces)
        matched += len(match(faces, [{"box": f.box} for f in result.faces]))
    assert matched >= 0.8 * total


def test_drm_overlay_is_redrawn_only_when_it_changes(fake_picamera2):
    import fake_picamera2 as fake_module

    from edge.frames import Face, Frame, Result
    from edge.sinks.drm import DrmSink

    camera = fake_picamera2()
    camera.configure(camera.create_preview_configuration())
    camera.start_preview(fake_module.Preview.DRM)
    camera.start()
    camera.capture_request(wait=1).release()  # the preview has shown a frame
    sink = DrmSink(types.SimpleNamespace(camera=camera), (640, 480), hud_interval_s=60)
    face = Face((100, 100, 200, 200), 0.9, "happy", 0.8, {"happy": 0.8}, 1)
    frame = Frame(np.zeros((480, 640, 3), np.uint8), 0, 0.0)
    with sink:
        for _ in range(5):
            sink.write(Result(frame, [face]), None)
        assert sink.updates == 1
        assert camera.overlay.shape == (480, 640, 4)
        assert camera.overlay[..., 3].max() == 255 and camera.overlay[0, -1, 3] == 0
        moved = Face((102, 101, 200, 200), 0.9, "happy", 0.81, {"happy": 0.81}, 1)
        sink.write(Result(frame, [moved]), None)  # a pixel or two: same picture
        assert sink.updates == 1
        sad = Face((102, 101, 200, 200), 0.9, "sad", 0.6, {"sad": 0.6}, 1)
        sink.write(Result(frame, [sad]), None)
        assert sink.updates == 2


def test_drm_display_needs_the_pi_camera(fake_screen):
    fake_screen(connected=True)
    from edge.sinks import SinkError

    with pytest.raises(SinkError, match="--source picamera2"):
        Pipeline(config(source={"name": "demo"}, output={"display": "drm"})).run()


def test_the_hud_sees_the_latency_up_to_drawing():
    class ImageSink(CollectSink):
        needs_image = True

        def _write(self, result, annotated):
            self.results.append(result.latency_ms)

    sink = ImageSink()
    Pipeline(config(source={"name": "demo"}, run={"max_frames": 5}), sinks=[sink]).run()
    assert len(sink.results) == 5 and min(sink.results) > 0


def test_a_run_shorter_than_the_stats_interval_still_writes_its_stats(tmp_path):
    """However fast the machine, the stats file ends with the run's figures."""
    import json

    path = tmp_path / "stats.jsonl"
    Pipeline(
        config(
            source={"name": "demo"},
            output={"stats": str(path), "stats_interval": 3600},
            run={"max_frames": 10},
        ),
        sinks=[CollectSink()],
    ).run()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["type"] for line in lines] == ["start", "stats"]
    assert lines[1]["frames_processed"] == 10 and lines[1]["run"] == lines[0]["run"]
