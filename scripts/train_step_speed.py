"""Time one training step (forward, backward, optimizer update) of each config's
model on this machine, to size a run before starting it. Random faces, no
augmentation and no teachers, so it times the network alone; the configs
alternate in one process, and each figure is the median over the rounds.

    KERAS_BACKEND=tensorflow python scripts/train_step_speed.py \
        host_training/configs/cnn-swa2.toml host_training/configs/gpu-teacher.toml
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TRAIN_FACES = 28_709  # FER-2013's train split: steps per epoch = this / batch


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("configs", nargs="+", type=Path)
    parser.add_argument("--steps", type=int, default=8, help="steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import keras

    from host_training.config import load_config
    from host_training.data import LABELS
    from host_training.models import build_model
    from host_training.train import compile_for_training

    rng = np.random.default_rng(0)
    models, batches, times = {}, {}, {}
    for path in args.configs:
        config = load_config(path)
        model = build_model(
            config.model.architecture,
            input_size=config.data.input_size,
            num_classes=len(LABELS),
            **config.model.builder_kwargs(),
        )
        compile_for_training(model, config)
        size, batch = config.data.input_size, config.train.batch_size
        faces = rng.integers(0, 256, (batch * args.steps, size, size, 1)).astype(np.float32)
        targets = np.eye(len(LABELS), dtype=np.float32)[rng.integers(0, 7, batch * args.steps)]
        model.fit(faces, targets, batch_size=batch, epochs=1, verbose=0)  # warm-up
        models[path], batches[path], times[path] = model, (faces, targets, batch), []
    for _ in range(args.rounds):
        for path, model in models.items():
            faces, targets, batch = batches[path]
            start = time.perf_counter()
            model.fit(faces, targets, batch_size=batch, epochs=1, verbose=0)
            times[path].append((time.perf_counter() - start) / args.steps)
    rounds = f"median of {args.rounds} rounds of {args.steps} steps"
    print(f"backend {keras.backend.backend()}, {rounds}")
    for path, model in models.items():
        step, batch = float(np.median(times[path])), batches[path][2]
        epoch = step * TRAIN_FACES / batch
        print(
            f"  {path.stem}: {model.count_params() / 1e6:.2f} M parameters, batch {batch}: "
            f"{step:.2f} s per step, {epoch:.0f} s per epoch of the train split"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
