"""Time int8 models side by side: ms per face at batch 1 on one thread.

    python scripts/model_speed.py OLD.tflite NEW.tflite [--faces 300] [--rounds 7]

The ship rule for a new model includes its cost per face on one core. Times
on a shared machine drift, so the models take turns (old-new, new-old, ...)
over the same PublicTest faces, and the medians and their ratio are printed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.classifier import EmotionClassifier
from host_training.data import load_splits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--data", type=Path, default=Path("data/fer2013"))
    parser.add_argument("--faces", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    faces = load_splits(args.data)["val"].x[: args.faces]
    classifiers = [EmotionClassifier(m, num_threads=1, flip_average=False) for m in args.models]
    times: list[list[float]] = [[] for _ in classifiers]
    for round_no in range(args.rounds):
        order = range(len(classifiers))
        for i in order if round_no % 2 == 0 else reversed(order):
            started = time.perf_counter()
            for face in faces:
                classifiers[i].predict_faces(face[None])
            times[i].append(1000 * (time.perf_counter() - started) / len(faces))
    first = statistics.median(times[0])
    for path, ms in zip(args.models, times, strict=True):
        median = statistics.median(ms)
        print(f"{path}: {median:.3f} ms per face (median of {args.rounds}), {median / first:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
