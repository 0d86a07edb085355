"""`emotion-edge` (also `python -m edge`): run, image, info, check-config.

Errors a user can fix (a missing camera, a corrupt model, a typo in the
config, an unreadable image) end in one line that says what and how to fix
it, and a non-zero exit: 2 for bad input, 1 for a failure while running.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import sys
from pathlib import Path
from typing import ClassVar

# OpenCV's own lines: errors only. FFmpeg's ("Connection refused" per retry
# while a stream is down): none, the pipeline says what happened, once. Must be
# set before cv2 is imported. LiteRT's lines: edge/native_log.py.
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

from edge.config import ConfigError, RunConfig, load_config
from edge.native_log import log_stream

log = logging.getLogger("edge")

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1

# Command-line options of `run` and the config keys they override.
RUN_OVERRIDES = {
    "source": "source.name",
    "realtime": "source.realtime",
    "loop": "source.loop",
    "wait": "source.wait",
    "width": "source.width",
    "height": "source.height",
    "detector": "detector.name",
    "detector_model": "detector.model",
    "detector_range": "detector.range",
    "tiles": "detector.tiles",
    "max_faces": "detector.max_faces",
    "model": "classifier.model",
    "threads": "classifier.num_threads",
    "display": "output.display",
    "privacy": "privacy.faces",
    "fullscreen": "output.fullscreen",
    "record": "output.record",
    "events": "output.events",
    "stats": "output.stats",
    "stats_interval": "output.stats_interval",
    "overwrite": "output.overwrite",
    "max_frames": "run.max_frames",
    "duration": "run.duration",
    "web": "web.listen",
    "web_token": "web.token",
    "mqtt": "mqtt.url",
}
WEB_TOKEN_ENV = "EMOTION_EDGE_WEB_TOKEN"  # keeps the token out of `ps` and the unit file


class JournalFormatter(logging.Formatter):
    """`<priority>` prefix that journald maps to the entry's level; no timestamp
    (the journal stamps each line itself)."""

    PRIORITY: ClassVar[dict[int, int]] = {
        logging.DEBUG: 7,
        logging.INFO: 6,
        logging.WARNING: 4,
        logging.ERROR: 3,
        logging.CRITICAL: 2,
    }

    def format(self, record: logging.LogRecord) -> str:
        return f"<{self.PRIORITY.get(record.levelno, 6)}>{super().format(record)}"


def setup_logging(level: str) -> None:
    # On a copy of stderr: native libraries' lines caught meanwhile on
    # descriptor 2 come back through the log (edge/native_log.py).
    handler = logging.StreamHandler(log_stream())
    if os.environ.get("JOURNAL_STREAM"):  # stderr goes to the journal
        handler.setFormatter(JournalFormatter("%(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
        )
    logging.basicConfig(level=getattr(logging, level.upper()), handlers=[handler], force=True)


def _user_errors() -> tuple[type[BaseException], ...]:
    from edge.classifier import ModelError
    from edge.detectors import DetectorError
    from edge.sinks import SinkError
    from edge.sources import SourceError

    return ConfigError, ModelError, DetectorError, SinkError, SourceError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emotion-edge",
        description="Real-time facial-emotion recognition for the Raspberry Pi.",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_const",
        const="debug",
        dest="log_level",
        help="--log-level debug: also the native libraries' own lines",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser(
        "run",
        help="run the live pipeline",
        description="Capture, detect, classify and show or record.",
    )
    run.add_argument("--config", help="TOML config file; options below override it")
    run.add_argument(
        "--source",
        help="auto, camera, demo, picamera2, webcam index (0), video file, "
        "image or folder, rtsp/http URL (default auto)",
    )
    run.add_argument(
        "--realtime",
        action="store_true",
        default=None,
        help="play a file at its FPS and drop frames, like a camera",
    )
    run.add_argument(
        "--loop",
        action="store_true",
        default=None,
        help="replay a video file forever (a kiosk demo; with --realtime, a soak test)",
    )
    run.add_argument(
        "--wait",
        action="store_true",
        default=None,
        help="wait for a camera or stream that is missing or lost, forever "
        "(the default as a service)",
    )
    run.add_argument("--width", type=int, help="camera width (default 640)")
    run.add_argument("--height", type=int, help="camera height (default 480)")
    run.add_argument("--detector", help="mediapipe (default) or haar")
    run.add_argument("--detector-model", help="face detection model file")
    run.add_argument("--max-faces", type=int, help="classify the n largest faces only")
    run.add_argument(
        "--detector-range",
        help="BlazeFace on the whole frame: short (default; faces over ~20 %% of the width) "
        "or full (~15 %%)",
    )
    run.add_argument(
        "--tiles",
        type=int,
        help="look for far faces on n x n tiles every 10th frame: 3 (default) sees faces "
        "5 %% of the width (2.5 m from a Pi camera at 640x480), 2 about 9 %%, 1: off",
    )
    run.add_argument("--model", help="emotion model (.tflite with its .json beside it)")
    run.add_argument("--threads", type=int, help="classifier interpreter threads (default 2)")
    run.add_argument("--display", help="auto (default), window, drm, console, none")
    run.add_argument("--fullscreen", action="store_true", default=None)
    run.add_argument("--record", help="write the annotated video to this file (.mp4, .avi)")
    run.add_argument("--events", help="write one JSON line per frame to this file, or - for stdout")
    run.add_argument("--stats", help="write the periodic stats as JSON lines to this file")
    run.add_argument("--stats-interval", type=float, help="seconds between stats lines (default 5)")
    run.add_argument(
        "--overwrite",
        action="store_true",
        default=None,
        help="replace existing --record/--events/--stats files",
    )
    run.add_argument(
        "--privacy",
        choices=("show", "blur", "hide"),
        help="faces in every image that leaves (stream, recording, screen): show, blur, hide",
    )
    run.add_argument("--max-frames", type=int, help="stop after N frames")
    run.add_argument("--duration", type=float, help="stop after S seconds")
    run.add_argument(
        "--no-smoothing", action="store_true", help="turn off per-face probability smoothing"
    )
    run.add_argument(
        "--web",
        metavar="[HOST:]PORT",
        help="serve the live page, stats and photo upload (default host 127.0.0.1)",
    )
    run.add_argument(
        "--web-token",
        help=f"token the page requires; needed beyond loopback (or set {WEB_TOKEN_ENV})",
    )
    run.add_argument(
        "--mqtt",
        metavar="URL",
        help="send events and state to an MQTT broker: mqtt://host[:1883] or mqtts://host "
        "(password from EMOTION_EDGE_MQTT_PASSWORD; more in [mqtt])",
    )

    image = commands.add_parser("image", help="annotate photos, one JSON line per image")
    image.add_argument("paths", nargs="+", type=Path, help="image files or folders")
    image.add_argument("--out", type=Path, help="write annotated copies into this folder")
    image.add_argument("--overwrite", action="store_true", help="replace files in --out")
    image.add_argument("--config", help="TOML config file (detector and classifier)")
    image.add_argument("--detector", help="mediapipe (default) or haar")
    image.add_argument("--model", help="emotion model (.tflite)")
    image.add_argument(
        "--report",
        type=Path,
        help="for photos in folders named by emotion: write report.json and confusion.png here",
    )

    info = commands.add_parser("info", help="which runtimes, detectors and cameras are available")
    info.add_argument("--json", action="store_true", help="print JSON")

    check = commands.add_parser("check-config", help="validate a config file and exit")
    check.add_argument("file", help="TOML config file")

    analyze = commands.add_parser(
        "analyze", help="emotion over time per person in videos: CSV, plot, HTML report"
    )
    analyze.add_argument("inputs", nargs="+", type=Path, help="video files or folders of them")
    analyze.add_argument("--out", type=Path, required=True, help="folder for the results")
    analyze.add_argument("--every", type=int, default=1, help="analyse every n-th frame")
    analyze.add_argument("--max-faces", type=int, help="the n largest faces only")
    analyze.add_argument("--config", help="TOML config file (detector, classifier, tracking)")
    analyze.add_argument("--overwrite", action="store_true", help="replace earlier results")
    analyze.add_argument(
        "--workers",
        type=int,
        help="many videos: this many local worker processes (default: one per core)",
    )
    analyze.add_argument(
        "--cluster", help="many videos: run them on the Dask scheduler at this address"
    )

    fleet = commands.add_parser("monitor", help="a live table of every device on an MQTT broker")
    fleet.add_argument("url", help="mqtt://host[:1883] or mqtts://host[:8883]")
    fleet.add_argument(
        "--prefix", default="emotion-edge", help="topic prefix (default emotion-edge)"
    )
    fleet.add_argument("--username", default="", help="password from EMOTION_EDGE_MQTT_PASSWORD")
    fleet.add_argument(
        "--once", type=float, metavar="SECONDS", help="listen this long, print the table, exit"
    )
    fleet.add_argument("--ca-file", default="", help="mqtts: the CA that signed the broker")
    return parser


# Each override's option, so a bad value is blamed on what the user typed.
FLAGS = {
    **{key: "--" + name.replace("_", "-") for name, key in RUN_OVERRIDES.items()},
    "detector.name": "--detector",
    "classifier.model": "--model",
}


def output_folder(path: Path, option: str) -> Path:
    """`path` as a folder to write into: refused in one line when it, or a
    folder above it, is a file (nothing is created then)."""
    for part in (path, *path.parents):
        if part.exists():
            if not part.is_dir():
                where = "is a file" if part == path else f"is under {part}, a file"
                raise ConfigError(f"{option} {path} {where}: give a folder")
            break
    return path


def _overrides(args: argparse.Namespace) -> dict:
    values = {
        key: getattr(args, name)
        for name, key in RUN_OVERRIDES.items()
        if getattr(args, name, None) is not None
    }
    if getattr(args, "no_smoothing", False):
        values["tracking.smoothing"] = False
    if "web.token" not in values and os.environ.get(WEB_TOKEN_ENV):
        values["web.token"] = os.environ[WEB_TOKEN_ENV]
    return values


def cmd_run(args: argparse.Namespace) -> int:
    from edge.engine import Pipeline
    from edge.notify import ServiceNotifier

    config = load_config(args.config, _overrides(args), FLAGS)
    with ServiceNotifier() as service:
        pipeline = Pipeline(
            config,
            on_result=service.on_result,
            on_stats=service.on_stats,
            on_waiting=service.on_waiting,
        )
        pipeline.run()
    for what, path in (
        ("annotated video", config.output.record),
        ("events", config.output.events),
        ("stats", config.output.stats),
    ):
        if path and path != "-":
            log.info("%s: %s", what, path)
    if pipeline.failed_outputs:
        log.error("finished, but outputs failed: %s", "; ".join(pipeline.failed_outputs))
        return EXIT_FAILED
    return 0


def cmd_image(args: argparse.Namespace) -> int:
    from edge.analysis import FaceAnalyzer
    from edge.labelled_photos import Scores
    from edge.photos import annotate_images
    from edge.sources.images import list_images

    overrides = {
        k: v
        for k, v in (("detector.name", args.detector), ("classifier.model", args.model))
        if v is not None
    }
    config = load_config(args.config, overrides, FLAGS)
    for path in args.paths:
        if not path.exists():
            raise ConfigError(f"{path} not found: pass image files or folders")
    if not any(list_images(path) for path in args.paths):
        names = ", ".join(map(str, args.paths))
        raise ConfigError(f"no images in {names}: pass .jpg/.png files or folders of them")
    if args.out is not None:
        output_folder(args.out, "--out")
    if args.report is not None:
        output_folder(args.report, "--report")
        if (args.report / "report.json").exists() and not args.overwrite:
            raise ConfigError(f"--report {args.report} holds an earlier report: pass --overwrite")
    with FaceAnalyzer.from_config(
        config.detector,
        config.classifier,
        privacy=config.privacy.obscures_faces,
        edge_band=config.privacy.edge_band,
    ) as analyzer:
        scores = Scores(analyzer.labels)
        done, failed = annotate_images(
            args.paths,
            analyzer,
            args.out,
            args.overwrite,
            scores=scores,
            faces=config.privacy.faces,
        )
    log.info(
        "%d image(s) analysed, %d unreadable%s",
        done,
        failed,
        f"; annotated copies in {args.out}" if args.out else "",
    )
    if args.report is not None and not scores.total:
        log.error(
            "--report: no photos in folders named by emotion (angry/, happy/, ...) among "
            "%d image(s): nothing to score, no report written",
            done,
        )
        return EXIT_BAD_INPUT
    if scores.total:
        summary = scores.summary()
        log.info(
            "labelled by folder: %d image(s), accuracy %.1f %%, macro-F1 %.3f, no face in %d "
            "(detection, crop and classification, as the pipeline sees photos)",
            summary["images"],
            100 * summary["accuracy"],
            summary["macro_f1"],
            summary["no_face"],
        )
        if args.report:
            written = scores.write_report(args.report)
            log.info("report: %s", ", ".join(map(str, written)))
    return EXIT_BAD_INPUT if failed and not done else 0


def probe() -> dict:
    """What this machine offers, without opening anything that takes long."""
    from edge.classifier import ModelError, read_metadata, runtime_name
    from edge.detectors.haar import haar_available
    from edge.sinks.window import display_available

    config = RunConfig()
    found: dict = {
        "tflite_runtime": runtime_name(),
        "detectors": {
            "mediapipe": runtime_name() is not None,  # BlazeFace runs on LiteRT
            "haar": haar_available(),
        },
        "picamera2": importlib.util.find_spec("picamera2") is not None,
        "webcams": sorted(str(p) for p in Path("/dev").glob("video*")),
        "display": display_available(),
        "model": config.classifier.model,
    }
    try:
        meta = read_metadata(Path(config.classifier.model).with_suffix(".json"))
        found["labels"] = meta["labels"]
        found["model_validation"] = meta.get("metrics", {}).get("validation", {})
    except ModelError as exc:
        found["model_error"] = str(exc)
    if found["picamera2"]:
        try:
            from picamera2 import Picamera2

            found["pi_cameras"] = [c.get("Model") for c in Picamera2.global_camera_info()]
        except Exception as exc:
            found["pi_cameras"] = f"error: {exc}"
    return found


def cmd_info(args: argparse.Namespace) -> int:
    found = probe()
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    for key, value in found.items():
        print(f"{key:18} {value}")
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    config = load_config(args.file)
    print(f"{args.file}: ok")
    log.debug("effective config: %s", config.model_dump())
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    from edge.analysis import FaceAnalyzer
    from edge.video_report import AnalyzeError, analyze_video, list_videos

    if args.every < 1:
        raise ConfigError("--every must be 1 or more")
    overrides = {} if args.max_faces is None else {"detector.max_faces": args.max_faces}
    config = load_config(args.config, overrides, FLAGS)
    for path in args.inputs:
        if not path.exists():
            raise ConfigError(f"{path} not found: pass video files or folders")
    videos = list_videos(args.inputs)
    if not videos:
        raise ConfigError(f"no video files in {', '.join(map(str, args.inputs))}")
    output_folder(args.out, "--out")
    if args.workers is not None and args.workers < 1:
        raise ConfigError("--workers must be 1 or more")
    if len(videos) > 1 or args.workers or args.cluster:
        return _analyze_many(args, videos, config)
    failed = 0
    with FaceAnalyzer.from_config(config.detector, config.classifier) as analyzer:
        for video in videos:
            out = args.out if len(videos) == 1 else args.out / video.stem
            if (out / "summary.json").exists() and not args.overwrite:
                log.error("%s: %s holds earlier results: pass --overwrite", video, out)
                failed += 1
                continue
            try:
                summary = analyze_video(video, out, config, analyzer, args.every)
            except (AnalyzeError, OSError) as exc:
                log.error("%s", exc)
                failed += 1
                continue
            log.info(
                "%s: %d frames analysed, %d track(s), %d face rows in %.1f s (%.1f fps) -> %s",
                video,
                summary["frames_processed"],
                len(summary["tracks"]),
                summary["face_rows"],
                summary["seconds"],
                summary["processed_fps"],
                out / "report.html",
            )
    return EXIT_FAILED if failed else 0


def _analyze_many(args: argparse.Namespace, videos: list[Path], config) -> int:
    """Many videos: a folder each under --out, combined tables beside them
    (edge/batch.py), on Dask when it is installed or asked for."""
    from edge.batch import BatchError, analyze_many

    try:
        rows = analyze_many(
            videos, args.out, config, args.every, args.workers, args.cluster, args.overwrite
        )
    except BatchError as exc:
        raise ConfigError(str(exc)) from None
    failed = sum(row["status"] == "failed" for row in rows)
    log.info(
        "%d video(s): %d failed; every video's tracks in %s, the reports linked from %s",
        len(rows),
        failed,
        args.out / "tracks.csv",
        args.out / "index.html",
    )
    return EXIT_FAILED if failed else 0


def cmd_monitor(args: argparse.Namespace) -> int:
    from edge.broker import parse_url
    from edge.monitor import MonitorError, monitor

    try:
        parse_url(args.url)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if args.once is not None and args.once <= 0:
        raise ConfigError(f"--once {args.once:g}: give a number of seconds above 0")
    if args.ca_file and not Path(args.ca_file).is_file():
        raise ConfigError(f"--ca-file {args.ca_file} not found: give the CA's PEM file")
    try:
        return monitor(args.url, args.prefix, args.username, args.once or 0.0, ca_file=args.ca_file)
    except MonitorError as exc:
        log.error("%s", exc)
        return EXIT_FAILED


COMMANDS = {
    "run": cmd_run,
    "image": cmd_image,
    "info": cmd_info,
    "check-config": cmd_check_config,
    "analyze": cmd_analyze,
    "monitor": cmd_monitor,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level)
    from edge import opencv_log

    opencv_log.set_level(opencv_log.ERROR)  # a missing webcam is our message, not OpenCV's
    from edge.engine import PipelineError
    from edge.sources import SourceFailed

    try:
        return COMMANDS[args.command](args)
    except _user_errors() as exc:
        log.error("%s", exc)
        return EXIT_BAD_INPUT
    except (PipelineError, SourceFailed) as exc:  # a camera stuck at start, too
        log.error("%s", exc)
        return EXIT_FAILED
    except KeyboardInterrupt:
        log.info("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
