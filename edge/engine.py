"""The pipeline: capture -> analyze + track -> output, each stage on its own thread.

    Source --read--> [LatestSlot] --> FaceAnalyzer, Tracker --> [LatestSlot] --> sinks

A live source (camera, stream, `--realtime` file) hands frames over through a
slot that keeps only the newest frame and counts the ones it replaced, so the
screen shows the present, late by at most one frame, never a growing backlog.
A file processed offline waits instead, so every frame is processed.

Capture and inference run on worker threads; output runs on the thread that
calls `run()` (the main thread from the command line), because OpenCV's
window must be driven from the thread that owns it. One stop event ends
everything: Ctrl-C, SIGTERM, `q` in the window, the end of a file, or a
limit. Every wait has a timeout, and the threads are joined with a deadline,
so the process exits within about two seconds.

Run it with `emotion-edge run`, `python -m edge run` or `python edge/pipeline.py`
(the CLI imports this module; nothing here imports the CLI).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
import uuid
from collections.abc import Callable

from edge.analysis import FaceAnalyzer
from edge.config import DetectorConfig, RunConfig, lores_width
from edge.frames import Closed, Frame, LatestSlot, Result
from edge.overlay import annotate
from edge.pause import PauseSwitch, paused_picture, state_file
from edge.privacy import coasting_box
from edge.sinks import Sink, SinkContext, SinkError, make_sinks, resolve_display, wants_drm_preview
from edge.sinks.base import describe_failure
from edge.sinks.events import JsonLinesWriter, start_record
from edge.sources import (
    FrameError,
    Source,
    SourceError,
    SourceFailed,
    SourceLost,
    is_network,
    open_source,
    waits,
)
from edge.sources.base import Capture
from edge.sources.waiting import Waiter
from edge.stats import Stats, format_line
from edge.tracking import Tracker

log = logging.getLogger("edge.pipeline")

POLL_S = 0.2  # the longest any thread waits before looking at the stop event
JOIN_DEADLINE_S = 1.5


class PipelineError(RuntimeError):
    """A stage failed; the pipeline stopped."""


class Pipeline:
    """Wires a source, a face analyzer, a tracker and sinks on three threads.

    Components not given are built from `config` when `run` starts; tests and
    the benchmark pass their own. The pipeline knows sinks only through the
    `Sink` base class: which ones run is the sink registry's business
    (`edge/sinks/__init__.py`). `on_stats` is called with each periodic
    snapshot (the systemd notifier listens there), and `on_result` with every
    processed result.
    """

    def __init__(
        self,
        config: RunConfig,
        *,
        source: Source | None = None,
        analyzer: FaceAnalyzer | None = None,
        sinks: list[Sink] | None = None,
        on_stats: Callable[[dict], None] | None = None,
        on_result: Callable[[Result], None] | None = None,
        on_waiting: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.source = source
        self.analyzer = analyzer
        self.sinks = sinks
        self.on_stats = on_stats
        self.on_result = on_result
        self.on_waiting = on_waiting
        self.stop_event = threading.Event()
        self.stats = Stats()
        self._unpaced_until = 0.0  # monotonic: a `--realtime` file read unpaced until then
        self._errors: list[BaseException] = []
        self._slots: tuple[LatestSlot, ...] = ()
        self._stats_writer: JsonLinesWriter | None = None
        self._last_report = 0.0
        self.active_sinks: list[Sink] = []  # set once every sink is open
        self.failed_outputs: list[str] = []  # outputs disabled by an error, with why
        self.run_id = ""
        # The web page and MQTT can pause analysis; as a service, it stays paused
        # across restarts (the state directory).
        self.pause = PauseSwitch(state_file())

    def find_sink(self, name: str) -> Sink | None:
        """The running sink called `name` (None before they are open, or if off)."""
        return next((sink for sink in self.active_sinks if sink.name == name), None)

    def stop(self) -> None:
        """Ask every stage to finish; safe from any thread or a signal handler."""
        self.stop_event.set()

    def unpaced_for(self, seconds: float) -> None:
        """Read a `--realtime` file as fast as the pipeline takes frames for the
        next `seconds`, then go back to the camera's pace from wherever the
        file is then. A soak measures what the pipeline can do this way at its
        start and end, which a run paced below that cannot show."""
        self._unpaced_until = time.monotonic() + seconds

    # -- stages ---------------------------------------------------------------

    def _waiter(self, network: bool) -> Waiter:
        return Waiter(self.stop_event, self.on_waiting, network)

    def _reconnect(self, source: Source, reason: Exception) -> bool:
        """Reopen a lost live source, for as long as it takes; False if stopped."""
        waiter = self._waiter(source.network)
        return waiter.until(source.description, lambda: source.reopen() or True, str(reason))

    def _open_source(self) -> Source | None:
        """The configured source; a missing camera is waited for when the config
        says so (as a service, by default). None: stopped while waiting."""
        cfg = self.config
        drm_preview = wants_drm_preview(cfg.output.display, cfg.privacy.active)
        fullscreen = cfg.output.fullscreen is not False
        source_config = cfg.source.model_copy(update={"lores_width": lores_width(cfg)})

        def open_it() -> Source:
            return open_source(source_config, drm_preview, fullscreen)

        try:
            return open_it()
        except SourceError as exc:
            if not waits(cfg.source):
                raise
            name = cfg.source.name.strip()
            what = "a camera" if name in ("auto", "camera") else name
            return self._waiter(is_network(cfg.source)).until(what, open_it, str(exc))

    def _capture(self, source: Source, slot: LatestSlot[Frame]) -> None:
        limits = self.config.run
        pace = self.config.source.realtime and not source.live
        interval = 1.0 / (source.fps or self.config.source.fps)
        start = time.monotonic()
        schedule = start  # frame i of a paced file exists at schedule + i/fps
        index = 0
        try:
            while not self.stop_event.is_set():
                if limits.max_frames and index >= limits.max_frames:
                    break
                if limits.duration and time.monotonic() - start >= limits.duration:
                    break
                if pace and time.monotonic() < self._unpaced_until:
                    schedule = time.monotonic() - index * interval  # the pace resumes from here
                elif pace:
                    # A file played like a camera: frame i exists at schedule + i/fps.
                    delay = schedule + index * interval - time.monotonic()
                    if delay > 0 and self.stop_event.wait(delay):
                        break
                t0 = time.perf_counter()
                try:
                    captured = source.read()
                except FrameError as exc:
                    self.stats.decode_error()
                    log.warning("%s; skipped", exc)
                    index += 1
                    continue
                except SourceLost as exc:
                    try:
                        if not self._reconnect(source, exc):
                            break
                    except SourceFailed as failed:
                        self._errors.append(failed)  # the CLI says it in one line
                        self.stop()
                        break
                    continue
                if captured is None:
                    log.info("%s ended after %d frames", source.description, index)
                    break
                capture_ms = (time.perf_counter() - t0) * 1000.0
                image, t_sensor, detect_image = Capture(*captured)
                frame = Frame(
                    image,
                    index,
                    t_sensor or time.monotonic(),
                    source.description,
                    capture_ms,
                    detect_image,
                    None if source.live or pace else index * interval,
                )
                index += 1
                self.stats.captured_frame(capture_ms)
                if not self._hand_over(slot, frame):
                    return
        except Closed:
            pass
        finally:
            slot.close()

    def _infer(
        self, analyzer: FaceAnalyzer, inbox: LatestSlot[Frame], outbox: LatestSlot[Result]
    ) -> None:
        tracking = self.config.tracking
        tracker = Tracker(
            tracking.alpha if tracking.smoothing else 1.0, tracking.iou, tracking.max_missed
        )
        try:
            while True:
                frame = inbox.get(timeout=POLL_S)
                if frame is None:
                    if self.stop_event.is_set():
                        break
                    continue
                stage_ms = {"capture": frame.capture_ms}
                if self.pause.paused:  # nothing analysed, no picture of the scene leaves
                    frame.image, frame.detect_image = paused_picture(frame.image), None
                    stage_ms.update(detect=0.0, classify=0.0)
                    if not self._hand_over(outbox, Result(frame, [], stage_ms)):
                        return
                    continue
                faces = analyzer.analyze(frame.image, frame.detect_image, stage_ms)
                t0 = time.perf_counter()
                faces = tracker.track(faces, frame.image)
                result = Result(frame, faces, stage_ms)
                if analyzer.privacy:  # fail closed: obscure wherever a face may be
                    size = (frame.image.shape[1], frame.image.shape[0])
                    result.hidden = analyzer.unlabelled + [
                        coasting_box(t.box, t.velocity, t.missed, size) for t in tracker.missing()
                    ]
                    result.concealed = not analyzer.detector.searched_everywhere
                # Tracking takes microseconds; it counts as part of classifying.
                stage_ms["classify"] += (time.perf_counter() - t0) * 1e3
                if not self._hand_over(outbox, result):
                    return
        except Closed:
            pass
        finally:
            outbox.close()

    def _hand_over(self, slot: LatestSlot, item) -> bool:
        """Put `item` in `slot`, waiting while it is full (offline); False on a stop."""
        while not slot.put(item, timeout=POLL_S):
            if self.stop_event.is_set():
                return False
        return True

    def _write(self, sink: Sink, sinks: list[Sink], result: Result, annotated) -> None:
        """One sink's write; an output error disables that sink, not the pipeline."""
        try:
            sink.write(result, annotated)
        except (OSError, SinkError) as exc:
            self._fail_output(sink.description, describe_failure(exc))
            sinks.remove(sink)
            self._close_quietly(sink, failed=True)

    def _fail_output(self, what: str, cause: str) -> None:
        log.error("%s failed: %s; it is off for this run, the rest carries on", what, cause)
        self.failed_outputs.append(f"{what}: {cause}")

    def _close_quietly(self, resource, failed: bool = False) -> None:
        """Close an output; an error is logged once (not again for a failed one)."""
        try:
            resource.close()
        except (OSError, SinkError) as exc:
            cause = describe_failure(exc)
            if failed:
                log.debug("closing %s failed too: %s", resource.description, cause)
            else:
                self._fail_output(f"closing {resource.description}", cause)

    def _output(self, all_sinks: list[Sink], inbox: LatestSlot[Result]) -> None:
        sinks = list(all_sinks)  # the working ones
        try:
            while True:
                result = inbox.get(timeout=POLL_S)
                if result is None:
                    if self.stop_event.is_set():
                        break
                    self._report()
                    continue
                t0 = time.perf_counter()
                # Asked per frame: the web page wants frames only while someone watches.
                image_sinks = [s for s in sinks if s.needs_image]
                other_sinks = [s for s in sinks if s not in image_sinks]
                if image_sinks:
                    # the HUD shows the latency up to drawing; the final figure follows
                    result.latency_ms = (time.monotonic() - result.frame.t_capture) * 1e3
                    fps = self.stats.process_rate.rate()
                    privacy = self.config.privacy
                    annotated = annotate(
                        result.frame.image,
                        result,
                        fps,
                        privacy.faces,
                        privacy.masks,
                        privacy.notice,
                    )
                    for sink in image_sinks:
                        self._write(sink, sinks, result, annotated)
                result.stage_ms["render"] = (time.perf_counter() - t0) * 1e3
                result.latency_ms = (time.monotonic() - result.frame.t_capture) * 1e3
                for sink in other_sinks:
                    self._write(sink, sinks, result, None)
                self.stats.processed_frame(
                    result.stage_ms, result.latency_ms, [f.label for f in result.faces]
                )
                if self.on_result is not None:
                    self.on_result(result)
                if any(s.stop_requested for s in sinks):
                    log.info(
                        "stop requested from the %s",
                        next(s.name for s in sinks if s.stop_requested),
                    )
                    self.stop()
                self._report()
        except Closed:
            pass

    def _report(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_report < self.config.output.stats_interval:
            return
        self._last_report = now
        self._count_skipped()
        snap = self.stats.snapshot()
        log.info("%s", format_line(snap))
        self._write_stats({"type": "stats", "run": self.run_id, **snap})
        if self.on_stats is not None:
            self.on_stats(snap)

    def _write_stats(self, record: dict) -> None:
        writer = self._stats_writer
        if writer is None:
            return
        try:
            writer.write(record)
        except OSError as exc:
            self._stats_writer = None
            self._fail_output(writer.description, describe_failure(exc))
            self._close_quietly(writer, failed=True)

    def _close_stats(self) -> None:
        writer, self._stats_writer = self._stats_writer, None
        if writer is not None:
            self._close_quietly(writer)

    def _count_skipped(self) -> None:
        self.stats.skipped = sum(slot.dropped for slot in self._slots)

    def _guard(self, stage: Callable, *args) -> None:
        """Run a stage; an unexpected error stops the whole pipeline and is re-raised."""
        try:
            stage(*args)
        except KeyboardInterrupt:  # Ctrl-C where no signal handler is installed
            self.stop()
        except BaseException as exc:
            log.exception("%s stage failed", stage.__name__.strip("_"))
            self._errors.append(exc)
            self.stop()

    # -- lifecycle ------------------------------------------------------------

    def run(self) -> dict:
        """Open everything, process until the source ends or a stop, close everything.

        Returns the final summary (the same figures as the periodic stats, over
        the whole run).
        """
        cfg = self.config
        self.run_id = uuid.uuid4().hex[:12]
        self.failed_outputs = []
        busy: set[str] = set()  # threads that outlived the join deadline
        with contextlib.ExitStack() as stack:
            self._install_signal_handlers(stack)
            source = self.source or self._open_source()
            if source is None:  # stopped while waiting for the camera
                return self.stats.snapshot(final=True)
            # A thread still running keeps what it uses: closing native
            # resources (a camera, an interpreter) under it can crash the process.
            stack.callback(lambda: "capture" in busy or source.close())
            analyzer = self.analyzer or FaceAnalyzer.from_config(
                self._detector_config(source),
                cfg.classifier,
                cfg.privacy.masks,
                privacy=cfg.privacy.obscures_faces,
                edge_band=cfg.privacy.edge_band,
            )
            analyzer.__enter__()
            stack.callback(lambda: "infer" in busy or analyzer.close())
            sinks = self.sinks
            if sinks is None:
                context = SinkContext(
                    config=cfg,
                    display=resolve_display(cfg.output.display, source, web=bool(cfg.web.listen)),
                    fps=source.fps or cfg.source.fps,
                    source=source,
                    stats=lambda: self.stats.snapshot(),
                    run=self.run_id,
                    pause=self.pause,
                )
                sinks = make_sinks(context)
            for sink in sinks:
                try:
                    sink.__enter__()
                except OSError as exc:
                    raise SinkError(
                        f"cannot open {sink.description}: {describe_failure(exc)}; "
                        "choose a writable path"
                    ) from None
                stack.callback(self._close_quietly, sink)
            self.active_sinks = list(sinks)
            stack.callback(setattr, self, "active_sinks", [])
            if cfg.output.stats:
                output = cfg.output
                self._stats_writer = JsonLinesWriter(
                    output.stats,
                    output.overwrite,
                    output.rotate_mb,
                    output.keep_files,
                    output.keep_days,
                )
                stack.callback(self._close_stats)
                self._stats_writer.header = start_record(self.run_id, source=source.description)
                self._write_stats(self._stats_writer.header)
            log.info(
                "running: source %s, detector %s, model %s (%s), sinks %s",
                source.description,
                analyzer.detector.name,
                analyzer.classifier.name,
                "int8" if analyzer.classifier.quantized else "float",
                ", ".join(s.name for s in sinks) or "none",
            )

            drop = source.live or cfg.source.realtime
            frames: LatestSlot[Frame] = LatestSlot(drop)
            results: LatestSlot[Result] = LatestSlot(drop)
            self.stats = Stats()
            self._last_report = time.monotonic()
            self._slots = (frames, results)
            threads = [
                threading.Thread(
                    target=self._guard,
                    args=(self._capture, source, frames),
                    name="capture",
                    daemon=True,
                ),
                threading.Thread(
                    target=self._guard,
                    args=(self._infer, analyzer, frames, results),
                    name="infer",
                    daemon=True,
                ),
            ]
            for thread in threads:
                thread.start()
            # Output runs on the calling (main) thread: OpenCV's Qt window must be
            # driven from the thread that owns it (from another thread each
            # imshow blocks for seconds, measured), and signals arrive there too.
            self._guard(self._output, sinks, results)
            self.stop()
            deadline = time.monotonic() + JOIN_DEADLINE_S
            for thread in threads:
                thread.join(max(0.0, deadline - time.monotonic()))
                if thread.is_alive():
                    busy.add(thread.name)
                    log.warning(
                        "%s thread did not stop in time; leaving it its resources", thread.name
                    )
            # One last periodic line, so a run shorter than the stats interval
            # still leaves its figures in the log and the --stats file.
            self._report(force=True)
        if self._errors:
            raise PipelineError(f"pipeline stopped: {self._errors[0]}") from self._errors[0]
        summary = self.stats.snapshot(final=True)
        log_summary(summary)
        return summary

    def _detector_config(self, source: Source) -> DetectorConfig:
        """The detector config, with `min_face` in the detection image's pixels
        when the source detects on a smaller stream (the Pi camera's lores)."""
        config = self.config.detector
        lores = getattr(source, "lores", None)
        if lores is None:
            return config
        scale = lores[0] / source.size[0]
        return config.model_copy(update={"min_face": max(8, round(config.min_face * scale))})

    def _install_signal_handlers(self, stack: contextlib.ExitStack) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(signum)

            def handler(received, _frame):
                log.info("%s received: stopping", signal.Signals(received).name)
                self.stop()

            signal.signal(signum, handler)
            stack.callback(signal.signal, signum, previous)


def log_summary(summary: dict) -> None:
    stages = ", ".join(
        f"{name} {v['p50']:.1f}/{v['p95']:.1f}" for name, v in summary["stage_ms"].items()
    )
    lat = summary["latency_ms"]
    labels = ", ".join(f"{k} {v}" for k, v in summary["labels"].items()) or "none"
    log.info(
        "summary: %d frames processed (%d captured, %d skipped, %d undecodable) in %.1f s, "
        "%.1f fps",
        summary["frames_processed"],
        summary["frames_captured"],
        summary["frames_skipped"],
        summary["decode_errors"],
        summary["elapsed_s"],
        summary["processed_fps"],
    )
    log.info("summary: stage ms p50/p95: %s", stages)
    log.info(
        "summary: latency ms p50 %.1f, p95 %.1f, p99 %.1f, max %.1f",
        lat["p50"],
        lat["p95"],
        lat["p99"],
        lat["max"],
    )
    log.info("summary: %d faces; labels: %s", summary["faces"], labels)
