"""Time the backend batch augmentation (the path a GPU host without TensorFlow
takes): Keras's RandomFlip/RandomRotation/RandomTranslation/RandomZoom layers
one after the other, against the same four moves as one warp per face
(host_training/warp.py). Both alternate in one process over the same batch;
prints the median seconds per batch of each and their ratio.

    KERAS_BACKEND=torch python scripts/augment_speed.py [--batch 128] [--rounds 15]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()

    import keras

    from host_training.config import parse_config
    from host_training.train import make_augmenter
    from host_training.warp import RandomAffine

    config = parse_config({"augment": {"brightness": 0, "contrast": 0, "erasing": 0}})
    layers = make_augmenter(config)
    warp = RandomAffine.from_config(config.augment)
    faces = np.random.default_rng(0).integers(0, 256, (args.batch, 48, 48, 1)).astype(np.float32)

    def with_layers():
        keras.ops.convert_to_numpy(layers(keras.ops.convert_to_tensor(faces)))

    def with_warp():
        keras.ops.convert_to_numpy(warp(keras.ops.convert_to_tensor(faces)))

    ways = {"keras layers": with_layers, "one warp": with_warp}
    times = {name: [] for name in ways}
    for way in ways.values():
        way()  # warm-up
    for _ in range(args.rounds):
        for name, way in ways.items():
            start = time.perf_counter()
            way()
            times[name].append(time.perf_counter() - start)
    medians = {name: float(np.median(t)) for name, t in times.items()}
    print(f"backend {keras.backend.backend()}, batch {args.batch}, {args.rounds} rounds")
    for name, median in medians.items():
        print(f"  {name}: {median * 1000:.1f} ms per batch (median)")
    print(f"  ratio: {medians['keras layers'] / medians['one warp']:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
