"""Components in isolation: classifier per face, interpreter threads, detectors per frame."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from benchmarks.runners import MODEL, float_keras_model
from benchmarks.workloads import demo_faces, grid_frame
from edge.config import MODELS_DIR

RESOLUTIONS = ((320, 240), (640, 480), (1280, 720))


def median_ms(fn: Callable[[], object], repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return round(1000 * float(np.median(times)), 4)


def classifier_ms(repeats: int) -> dict:
    """ms per face at batch 1: int8 TFLite, float32 TFLite, Keras `predict`; threads."""
    from edge.classifier import EmotionClassifier

    face = cv2.cvtColor(
        cv2.resize(demo_faces()[0], (48, 48), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY
    )[None]
    result: dict = {"classifier_ms_per_face": {}, "int8_threads_ms_per_face": {}}
    with EmotionClassifier(MODEL, num_threads=1) as int8:
        result["classifier_ms_per_face"]["int8_tflite"] = median_ms(
            lambda: int8.predict_faces(face), repeats
        )
    for threads in (1, 2, 4):
        with EmotionClassifier(MODEL, num_threads=threads) as int8:
            batch8 = np.repeat(face, 8, axis=0)
            result["int8_threads_ms_per_face"][str(threads)] = {
                "batch1": median_ms(lambda c=int8: c.predict_faces(face), repeats),
                "batch8": round(
                    median_ms(lambda c=int8, b=batch8: c.predict_faces(b), repeats) / 8, 4
                ),
            }
    try:
        model, origin = float_keras_model()
    except ImportError:
        result["keras_skipped"] = "TensorFlow is not installed (pip install -e '.[train]')"
        return result
    from host_training.quantize import convert_float

    with tempfile.TemporaryDirectory() as tmp:
        float_path = Path(tmp) / "float32.tflite"
        float_path.write_bytes(convert_float(model))
        shutil.copy(MODEL.with_suffix(".json"), float_path.with_suffix(".json"))
        with EmotionClassifier(float_path, num_threads=1) as fp32:
            result["classifier_ms_per_face"]["float32_tflite"] = median_ms(
                lambda: fp32.predict_faces(face), repeats
            )
    x = face[..., None].astype(np.float32)
    result["classifier_ms_per_face"]["keras_predict"] = median_ms(
        lambda: model.predict(x, verbose=0), max(5, repeats // 10)
    )
    result["keras_model"] = origin
    return result


def detector_ms(repeats: int) -> dict:
    """ms per frame with two faces, for each detector at three resolutions."""
    from edge.detectors.haar import HaarDetector
    from edge.detectors.mediapipe import MediaPipeDetector

    detectors = {
        "mediapipe_short_range": lambda: MediaPipeDetector(
            MODELS_DIR / "face_detection_short_range.tflite"
        ),
        "mediapipe_full_range": lambda: MediaPipeDetector(
            MODELS_DIR / "face_detection_full_range_sparse.tflite"
        ),
        "haar": lambda: HaarDetector(MODELS_DIR / "haarcascade_frontalface_default.xml"),
    }
    faces = demo_faces()
    result: dict = {}
    for name, make in detectors.items():
        result[name] = {}
        try:
            detector = make().open()
        except Exception as exc:
            result[name] = {"error": str(exc).splitlines()[0]}
            continue
        with detector:
            for width, height in RESOLUTIONS:
                frame = grid_frame(faces, 2, (width, height))
                result[name][f"{width}x{height}"] = median_ms(
                    lambda f=frame, d=detector: d.detect(f), repeats
                )
    return result


def model_facts() -> dict:
    meta = json.loads(MODEL.with_suffix(".json").read_text())
    return {
        "file": MODEL.name,
        "sha256": hashlib.sha256(MODEL.read_bytes()).hexdigest(),
        "parameters": meta.get("architecture", {}).get("parameters"),
        "macs": meta.get("architecture", {}).get("macs"),
        "size_bytes": MODEL.stat().st_size,
        "validation": meta.get("metrics", {}).get("validation", {}),
    }
