"""The measured configurations. Each runs in a child process (see `measure`),
so its CPU time and peak memory are its own.

- `threaded`: the real pipeline from `edge/`, as users run it.
- `sequential`: the same `FaceAnalyzer`, tracker and sink in one loop (what
  pipelining adds).
- `seed_style`: the approach this project replaces: OpenCV Haar
  `detectMultiScale(gray, 1.3, 5)` and a float Keras model called with
  `model.predict` once per face, in one loop.

All three read the same clip frame by frame (no drops), draw the same kind
of overlay and write an annotated video, and report through `edge.stats.Stats`.
"""

from __future__ import annotations

import json
import os
import resource
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from edge.config import MODELS_DIR, RunConfig
from edge.stats import Stats

MODEL = MODELS_DIR / "emotion_int8.tflite"
HAAR = MODELS_DIR / "haarcascade_frontalface_default.xml"


def _limits(max_frames: int) -> dict:
    return {"max_frames": max_frames} if max_frames else {}


def threaded(
    clip: str,
    max_frames: int = 0,
    realtime: bool = False,
    flip_average: bool | None = None,
    tiles: int | None = None,
    models: list[str] | None = None,
    privacy_faces: str | None = None,
    loop: bool = False,
) -> dict:
    from edge.engine import Pipeline

    classifier = {} if flip_average is None else {"flip_average": flip_average}
    if models:
        classifier["models"] = models
    detector = {} if tiles is None else {"tiles": tiles}
    with tempfile.TemporaryDirectory() as tmp:
        config = RunConfig.model_validate(
            {
                "source": {"name": clip, "realtime": realtime, "loop": loop},
                "classifier": classifier,
                "detector": detector,
                "output": {"display": "none", "record": f"{tmp}/out.mp4", "stats_interval": 3600},
                "privacy": {} if privacy_faces is None else {"faces": privacy_faces},
                "run": _limits(max_frames),
            }
        )
        return Pipeline(config).run()


def sequential(clip: str, max_frames: int = 0) -> dict:
    from edge.analysis import FaceAnalyzer
    from edge.frames import Frame, Result
    from edge.overlay import annotate
    from edge.sinks.video import VideoSink
    from edge.sources.video import VideoSource
    from edge.tracking import Tracker

    config = RunConfig()  # the defaults the threaded run uses: same detector, model, threads
    tracker = Tracker()
    with (
        tempfile.TemporaryDirectory() as tmp,
        VideoSource(clip) as source,
        FaceAnalyzer.from_config(config.detector, config.classifier) as analyzer,
        VideoSink(f"{tmp}/out.mp4", source.fps or 15) as sink,
    ):
        stats = Stats()  # after opening: start-up is not processing time
        index = 0
        while not max_frames or index < max_frames:
            t0 = time.perf_counter()
            captured = source.read()
            if captured is None:
                break
            t_capture = time.monotonic()
            t1 = time.perf_counter()
            stage_ms: dict[str, float] = {}
            faces = analyzer.analyze(captured[0], stage_ms=stage_ms)
            t2 = time.perf_counter()
            faces = tracker.track(faces, captured[0])
            stage_ms["classify"] += (time.perf_counter() - t2) * 1e3
            result = Result(Frame(captured[0], index, t_capture), faces)
            t3 = time.perf_counter()
            sink.write(result, annotate(captured[0], result, stats.process_rate.rate()))
            stage_ms["render"] = (time.perf_counter() - t3) * 1e3
            stats.captured_frame((t1 - t0) * 1e3)
            stats.processed_frame(
                stage_ms,
                (time.monotonic() - t_capture) * 1e3 + (t1 - t0) * 1e3,
                [f.label for f in result.faces],
            )
            index += 1
    return stats.snapshot(final=True)


def float_keras_model():
    """The float Keras model of the shipped architecture: the trained one from
    `runs/cnn/best.keras` when present, else built from the same code with the
    architecture recorded in the model's metadata (speed does not depend on
    the weights). Returns (model, where it came from)."""
    import keras

    trained = Path("runs/cnn/best.keras")
    if trained.is_file():
        return keras.models.load_model(trained), str(trained)
    from host_training.models import build_model

    meta = json.loads(MODEL.with_suffix(".json").read_text())
    config = dict(meta["architecture"]["config"])
    name = config.pop("architecture", "cnn")
    size = meta["input"]["size"][0]
    return build_model(name, input_size=size, num_classes=len(meta["labels"]), **config), (
        "built from the metadata's architecture"
    )


def seed_style(clip: str, max_frames: int = 0) -> dict:
    """Haar + per-face `model.predict`, in one loop, as the replaced demos do."""
    model, _ = float_keras_model()
    labels = json.loads(MODEL.with_suffix(".json").read_text())["labels"]
    cascade = cv2.CascadeClassifier(str(HAAR))
    cap = cv2.VideoCapture(clip)
    model.predict(np.zeros((1, 48, 48, 1), np.float32), verbose=0)  # build, as users' first frame
    stats = Stats()  # after loading: start-up is not processing time
    with tempfile.TemporaryDirectory() as tmp:
        writer = None
        index = 0
        while not max_frames or index < max_frames:
            t0 = time.perf_counter()
            ok, frame = cap.read()
            if not ok:
                break
            t_capture = time.monotonic()
            t1 = time.perf_counter()
            gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            faces = cascade.detectMultiScale(gray, 1.3, 5)
            t2 = time.perf_counter()
            found = []
            for x, y, w, h in faces:
                roi = cv2.resize(gray[y : y + h, x : x + w], (48, 48))
                probs = model.predict(roi[None, :, :, None].astype(np.float32), verbose=0)[0]
                found.append(((x, y, w, h), labels[int(np.argmax(probs))]))
            t3 = time.perf_counter()
            for (x, y, w, h), label in found:
                cv2.rectangle(frame, (x, y), (x + w, y + h), (255, 0, 0), 2)
                cv2.putText(frame, label, (x, y - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 255, 0), 2)
            if writer is None:
                writer = cv2.VideoWriter(
                    f"{tmp}/out.mp4", cv2.VideoWriter_fourcc(*"mp4v"), 15, frame.shape[1::-1]
                )
            writer.write(frame)
            t4 = time.perf_counter()
            stats.captured_frame((t1 - t0) * 1e3)
            stats.processed_frame(
                {"detect": (t2 - t1) * 1e3, "classify": (t3 - t2) * 1e3, "render": (t4 - t3) * 1e3},
                (time.monotonic() - t_capture) * 1e3 + (t1 - t0) * 1e3,
                [label for _, label in found],
            )
            index += 1
        if writer is not None:
            writer.release()
    cap.release()
    return stats.snapshot(final=True)


CONFIGS = {"threaded": threaded, "sequential": sequential, "seed_style": seed_style}


def measure(name: str, clip: str, max_frames: int = 0, **kwargs) -> dict:
    """Run one configuration (in this process) and add CPU use and peak memory."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    wall0 = time.perf_counter()
    summary = CONFIGS[name](clip, max_frames, **kwargs)
    wall = time.perf_counter() - wall0
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    return {
        "fps": summary["processed_fps"],
        "frames": summary["frames_processed"],
        # A paced live run skips a frame when it falls behind (it shows the newest).
        "frames_skipped": summary["frames_skipped"],
        "faces": summary["faces"],
        "latency_ms": {k: summary["latency_ms"][k] for k in ("p50", "p95", "p99")},
        "stage_ms": summary["stage_ms"],
        "cpu_percent": round(100 * cpu / wall, 1),
        "peak_rss_mb": round(usage1.ru_maxrss / 1024, 1),
        "wall_s": round(wall, 2),
    }


def measure_each(clips: list[str]) -> list[dict]:
    """`measure("threaded", clip)` for each clip, in this one process (one start-up)."""
    return [measure("threaded", clip) for clip in clips]
