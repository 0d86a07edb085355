"""Train an emotion classifier on FER-2013: `python -m host_training.train --config FILE`.

Every epoch writes `last.keras` (model + optimizer state) and `state.json`, so
`--resume` continues an interrupted run from the last finished epoch with the
same learning-rate schedule and early-stopping counter. The best epoch by
validation accuracy is kept as `best.keras`. With `train.average_epochs`, the
weights of the last epochs are also averaged into `averaged.keras`
(host_training/averaging.py), and that is what `quantize` converts.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from host_training.averaging import AVERAGED_FILE, SUM_FILE, WeightAverage
from host_training.calibration import in_calibration_split
from host_training.config import Config, ConfigError, DataConfig, load_config, parse_config
from host_training.data import LABELS, DataError, Split, load_splits
from host_training.distill import TeacherError, blend_targets, cached_teacher_probabilities
from host_training.ferplus import read_votes, votes_for

if TYPE_CHECKING:  # TensorFlow and Keras load late: --help and config errors stay fast
    import keras
    import tensorflow as tf

log = logging.getLogger("host_training.train")

STATE_FILE = "state.json"
CONFIG_FILE = "config.json"
LOG_FILE = "log.csv"
INIT_FACES = 4096  # training faces that batch-norm statistics are recomputed on (init_from)


def class_weights(y: np.ndarray, mode: str) -> dict[int, float] | None:
    """Per-class loss weights, normalized to a mean of 1 over the samples."""
    if mode == "none":
        return None
    counts = np.bincount(y, minlength=len(LABELS)).astype(float)
    weights = 1.0 / counts if mode == "balanced" else 1.0 / np.sqrt(counts)
    weights /= (weights * counts).sum() / counts.sum()
    return {i: float(w) for i, w in enumerate(weights)}


def make_optimizer(config: Config) -> keras.optimizers.Optimizer:
    """The `train.optimizer` the config names, at its first rate and weight decay."""
    import keras

    t = config.train
    if t.optimizer == "sgd":
        return keras.optimizers.SGD(
            t.learning_rate, momentum=0.9, nesterov=True, weight_decay=t.weight_decay
        )
    return keras.optimizers.AdamW(t.learning_rate, weight_decay=t.weight_decay)


def learning_rate(epoch: int, config: Config) -> float:
    """Linear warm-up, then cosine decay to 1 % over the planned epochs (or constant)."""
    t = config.train
    if epoch < t.warmup_epochs:
        return t.learning_rate * (epoch + 1) / (t.warmup_epochs + 1)
    if t.lr_schedule == "constant":
        return t.learning_rate
    progress = (epoch - t.warmup_epochs) / max(1, t.epochs - t.warmup_epochs)
    return t.learning_rate * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress)))


def xla_choice() -> bool | str:
    """Keras' `jit_compile`: off for TensorFlow on a CPU, where XLA made each
    training step 1.6x slower here (0.86 against 0.54 s per batch of 128 of the
    shipped model, `jit_compile=True` against False); Keras' "auto" elsewhere."""
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if not tf.config.list_physical_devices("GPU"):
            return False
    return "auto"


def compile_for_training(model: keras.Model, config: Config) -> None:
    """Compile `model` as a run of `config` trains it (scripts/train_step_speed.py
    times the same step)."""
    import keras

    model.compile(
        optimizer=make_optimizer(config),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.train.label_smoothing),
        metrics=["accuracy"],
        jit_compile=xla_choice(),
    )


def make_augmenter(config: Config, geometric: bool = True):
    """Keras preprocessing layers run in the batch pipeline (tf.data, or
    batches.BackendBatches where TensorFlow is not installed), not in the
    model, so the exported model carries no augmentation ops.

    `geometric=False` leaves out the flip, rotation, shift and zoom, for
    BackendBatches, which does those four as one warp (host_training/warp.py).

    The layers are applied one by one rather than as a `keras.Sequential`:
    each layer switches itself to TensorFlow inside tf.data whatever the Keras
    backend, a Sequential container does not (it fails under the torch backend).
    """
    from keras import layers

    a = config.augment
    steps = []
    if geometric:
        if a.flip:
            steps.append(layers.RandomFlip("horizontal"))
        if a.rotation_deg:
            steps.append(layers.RandomRotation(a.rotation_deg / 360.0, fill_mode="nearest"))
        if a.shift:
            steps.append(layers.RandomTranslation(a.shift, a.shift, fill_mode="nearest"))
        if a.zoom:
            steps.append(layers.RandomZoom(a.zoom, a.zoom, fill_mode="nearest"))
    if a.brightness:
        steps.append(layers.RandomBrightness(a.brightness, value_range=(0, 255)))
    if a.contrast:
        steps.append(layers.RandomContrast(a.contrast, value_range=(0, 255)))
    if a.erasing:
        steps.append(
            layers.RandomErasing(a.erasing, scale=(0.02, 0.2), fill_value=0.0, value_range=(0, 255))
        )

    def augment(images):
        for step in steps:
            images = step(images, training=True)
        return images

    return augment


def mix_batch(images: tf.Tensor, targets: tf.Tensor, alpha: float) -> tuple[tf.Tensor, tf.Tensor]:
    """Mixup: the batch blended with a shuffled copy of itself, images and
    targets by the same weight lam ~ Beta(alpha, alpha), folded to lam >= 0.5
    so each image keeps its own face as the larger part. TensorFlow ops: it
    runs inside tf.data whatever the Keras backend."""
    import tensorflow as tf

    first = tf.random.gamma([], alpha)
    lam = first / (first + tf.random.gamma([], alpha))
    lam = tf.maximum(lam, 1.0 - lam)
    order = tf.random.shuffle(tf.range(tf.shape(images)[0]))
    mixed = lam * images + (1.0 - lam) * tf.gather(images, order)
    return mixed, lam * targets + (1.0 - lam) * tf.gather(targets, order)


def hold_out(splits: dict[str, Split], data: DataConfig) -> dict[str, Split]:
    """`splits` with data.calibration_fraction of train held out by file name.

    The held-out faces leave training (calibration measures confidences on
    them); with data.validate_on = "held_out" they are also the validation
    split, so the test split plays no part in picking the model.
    """
    if not data.calibration_fraction:
        return splits
    if splits["train"].files is None:
        raise ConfigError(
            "data.calibration_fraction needs image folders (the split is picked by "
            "file name): unpack the data as folders, or set it to 0"
        )
    held = in_calibration_split(splits["train"].files, data.calibration_fraction)
    log.info("calibration split: %d training faces held out", int(held.sum()))
    train = splits["train"]
    splits = {**splits, "train": train.subset(~held)}
    if data.validate_on == "held_out":
        splits["val"] = train.subset(held)
        log.info("validation: those %d held-out faces, not the test split", len(splits["val"]))
    return splits


def make_datasets(
    splits: dict[str, Split],
    config: Config,
    teacher: np.ndarray | None = None,
    crowd: np.ndarray | None = None,
):
    """The training batches (augmented afresh each epoch) and the validation batches.

    Training targets are one-hot, blended with the FER+ `crowd` distribution
    (train.crowd_weight) and then the `teacher` probabilities (distill_weight)
    when given. Validation targets stay one-hot: its accuracy is FER-2013's.
    """
    from host_training.batches import BackendBatches, EpochBatches

    def as_float(split: Split, soft: np.ndarray | None = None, votes: np.ndarray | None = None):
        # Targets here, in NumPy: label smoothing needs them as vectors, and a
        # keras.ops call inside tf.data would run on the torch backend and fail.
        labels = blend_targets(split.y, votes, config.train.crowd_weight)
        targets = blend_targets(labels, soft, config.train.distill_weight)
        return split.x[..., None].astype(np.float32), targets

    batch = config.train.batch_size
    try:
        import tensorflow as tf
    except ImportError:  # a GPU host with the torch or JAX backend only
        from host_training.warp import RandomAffine

        x, y = as_float(splits["train"], teacher, crowd)
        train_batches = BackendBatches(
            x,
            y,
            batch,
            make_augmenter(config, geometric=False),
            config.augment.mixup,
            config.train.seed,
            RandomAffine.from_config(config.augment, config.train.seed),
        )
        return train_batches, as_float(splits["val"])
    augment = make_augmenter(config)
    train = (
        tf.data.Dataset.from_tensor_slices(as_float(splits["train"], teacher, crowd))
        .shuffle(len(splits["train"]), seed=config.train.seed, reshuffle_each_iteration=True)
        .batch(batch)
        .map(lambda x, y: (augment(x), y), num_parallel_calls=tf.data.AUTOTUNE)
    )
    if config.augment.mixup:
        train = train.map(lambda x, y: mix_batch(x, y, config.augment.mixup))
    train = train.prefetch(tf.data.AUTOTUNE)
    return EpochBatches(train), as_float(splits["val"])


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def _truncate_log(path: Path, epochs: int) -> None:
    """Drop log rows past the last checkpointed epoch (a crash between the two)."""
    if not path.is_file():
        return
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    if len(rows) > epochs + 1:
        with path.open("w", newline="") as handle:
            csv.writer(handle).writerows(rows[: epochs + 1])


def run(config: Config, resume: bool) -> Path:
    """Train (or continue) the run in `config.train.output_dir`; returns that folder."""
    out = Path(config.train.output_dir)
    state_path = out / STATE_FILE
    if state_path.exists() and not resume:
        raise ConfigError(
            f"{out} already holds a run: pass --resume to continue it, "
            "or set train.output_dir to a new folder"
        )
    if resume and state_path.exists():
        saved = json.loads((out / CONFIG_FILE).read_text())
        config = parse_config(saved, str(out / CONFIG_FILE))
        state = json.loads(state_path.read_text())
        if state.get("finished") and not average_pending(out):
            log.info("run in %s already finished (%d epochs)", out, state["epoch"])
            return out
    else:
        state = {
            "epoch": 0,
            "best_val_accuracy": 0.0,
            "best_epoch": 0,
            "wait": 0,
            "train_seconds": 0.0,
            "finished": False,
        }
    out.mkdir(parents=True, exist_ok=True)
    _write_json_atomic(out / CONFIG_FILE, config.model_dump(mode="json"))

    import keras

    from host_training.models import build_model

    keras.utils.set_random_seed(config.train.seed + state["epoch"])
    if config.train.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")

    splits = load_splits(
        config.data.path,
        config.data.input_size,
        config.data.cache_dir,
        config.data.val_fraction,
        config.train.seed,
    )
    log.info(
        "data: %d train, %d validation faces; train classes %s",
        len(splits["train"]),
        len(splits["val"]),
        splits["train"].counts(),
    )
    splits = hold_out(splits, config.data)
    crowd = None
    if config.data.votes:
        votes = votes_for(splits["train"], read_votes(config.data.votes))
        keep = votes.trainable()
        log.info(
            "FER+ votes: %d of %d training faces left out (votes mostly unknown or not a face)",
            int((~keep).sum()),
            len(keep),
        )
        splits["train"] = splits["train"].subset(keep)
        crowd = votes.distribution()[keep]
    teacher = cached_teacher_probabilities(
        config.train.teachers, splits["train"].x, out, config.train.teacher_views
    )
    train_ds, val_ds = make_datasets(splits, config, teacher, crowd)

    if state["epoch"] > 0:
        log.info("resuming %s after epoch %d", out, state["epoch"])
        model = keras.models.load_model(out / "last.keras")
        _truncate_log(out / LOG_FILE, state["epoch"])
    else:
        model = build_model(
            config.model.architecture,
            input_size=config.data.input_size,
            num_classes=len(LABELS),
            **config.model.builder_kwargs(),
        )
        if config.train.init_from:
            train_x = splits["train"].x
            rng = np.random.default_rng(config.train.seed)
            picked = rng.choice(len(train_x), min(INIT_FACES, len(train_x)), replace=False)
            load_initial_weights(
                model,
                Path(config.train.init_from),
                train_x[picked][..., None],
                deepen=config.train.init_deepen,
            )
        compile_for_training(model, config)
        if config.train.init_from:
            x_val, y_val = val_ds
            scores = model.evaluate(x_val, y_val, batch_size=256, verbose=0, return_dict=True)
            state["initial_val_accuracy"] = float(scores["accuracy"])
            log.info("initial weights: validation accuracy %.4f", state["initial_val_accuracy"])
    log.info("model %s: %d parameters", model.name, model.count_params())

    average = WeightAverage(out / SUM_FILE)
    first_averaged = config.train.epochs - config.train.average_epochs + 1

    class RunState(keras.callbacks.Callback):
        """Checkpoint, best model, early stopping: all persisted per epoch."""

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.monotonic()

        def on_epoch_end(self, epoch, logs=None):
            val_acc = float(logs["val_accuracy"])
            state["epoch"] = epoch + 1
            state["train_seconds"] += time.monotonic() - self.started
            if val_acc > state["best_val_accuracy"]:
                state.update(best_val_accuracy=val_acc, best_epoch=epoch + 1, wait=0)
                self.model.save(out / "best.keras")
            else:
                state["wait"] += 1
            self.model.save(out / "last.keras")
            if config.train.average_epochs and epoch + 1 >= first_averaged:
                average.add(self.model, epoch + 1)
            if state["wait"] >= config.train.patience:
                log.info("no improvement for %d epochs: stopping", state["wait"])
                self.model.stop_training = True
                state["finished"] = True
            _write_json_atomic(state_path, state)

    weights = class_weights(splits["train"].y, config.train.class_weight)
    if not state["finished"]:  # else only the averaging is left to do
        model.fit(
            train_ds,
            validation_data=val_ds,
            validation_batch_size=256,
            epochs=config.train.epochs,
            initial_epoch=state["epoch"],
            class_weight=weights,
            callbacks=[
                keras.callbacks.LearningRateScheduler(lambda e: learning_rate(e, config)),
                RunState(),
                keras.callbacks.CSVLogger(str(out / LOG_FILE), append=True),
            ],
            verbose=1 if sys.stdout.isatty() else 2,
        )
    state["finished"] = True
    _write_json_atomic(state_path, state)
    log.info(
        "done: best validation accuracy %.4f at epoch %d, %.0f s of training",
        state["best_val_accuracy"],
        state["best_epoch"],
        state["train_seconds"],
    )
    if average.epochs:
        finish_average(
            model, average, splits["train"].x, config.train.batch_size, val_ds, out, state
        )
    elif config.train.average_epochs:
        log.warning("stopped before epoch %d: no weights averaged", first_averaged)
    _write_json_atomic(state_path, state)
    return out


def load_initial_weights(
    model, path: Path, faces: np.ndarray | None = None, deepen: bool = False
) -> None:
    """Give a new model the weights of a saved one of the same architecture.

    `path` is a .keras file (a finished run's) or an int8 .tflite model (the
    shipped one, a teacher), whose batch-norm statistics are recomputed on
    `faces`, raw training faces (N, size, size, 1): see host_training/from_tflite.py.
    `deepen` lets a .tflite model seed a model with extra convs, as the identity.
    """
    if not path.is_file():
        raise ConfigError(f"train.init_from: {path} not found: train that run first")
    if path.suffix == ".tflite":
        from host_training.from_tflite import TFLiteWeightsError, load_tflite_weights

        if faces is None:
            raise ValueError("initial weights from a .tflite model need training faces")
        try:
            load_tflite_weights(model, path, faces, deepen=deepen)
        except TFLiteWeightsError as exc:
            raise ConfigError(f"train.init_from: {exc}") from None
    elif deepen:
        raise ConfigError(
            f"train.init_deepen: {path} is a .keras file; deepening starts from an int8 "
            ".tflite model (quantize the run first)"
        )
    else:
        try:
            model.load_weights(path)
        except ValueError as exc:
            first_line = str(exc).strip().splitlines()[0]
            raise ConfigError(
                f"train.init_from: {path} does not fit the [model] of this config "
                f"({first_line}); use the same architecture and widths as the run that saved it"
            ) from None
    log.info("initial weights from %s", path)


def average_pending(out: Path) -> bool:
    """True when a run has averaged epochs but no averaged.keras yet (interrupted)."""
    return (out / SUM_FILE).is_file() and not (out / AVERAGED_FILE).is_file()


def finish_average(
    model, average: WeightAverage, train_x: np.ndarray, batch: int, val_ds, out: Path, state: dict
) -> None:
    """Write averaged.keras: the averaged weights, batch-norm recomputed, validated.

    The batch-norm statistics come from the training faces as they are, not
    from the augmented batches: inference sees unaugmented faces, and erased
    patches and shifted brightness move the statistics (measured: the
    cnn-swa.toml average scored 64.78 % on PublicTest with statistics from
    augmented batches, 67.82 % with them from clean faces). Shuffled, because
    the faces are stored by class, and the statistics are a mean over batches.
    """
    faces = train_x[np.random.default_rng(0).permutation(len(train_x))]
    faces = faces[..., None].astype(np.float32)
    average.apply(model, (faces[i : i + batch] for i in range(0, len(faces), batch)))
    x_val, y_val = val_ds
    scores = model.evaluate(x_val, y_val, batch_size=256, verbose=0, return_dict=True)
    accuracy = float(scores["accuracy"])
    model.save(out / AVERAGED_FILE)
    state.update(averaged_epochs=average.epochs, averaged_val_accuracy=accuracy)
    log.info(
        "averaged epochs %d-%d: validation accuracy %.4f (best single epoch %.4f)",
        min(average.epochs),
        max(average.epochs),
        accuracy,
        state["best_val_accuracy"],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m host_training.train", description=__doc__)
    parser.add_argument("--config", help="TOML config (see host_training/configs/)")
    parser.add_argument("--resume", action="store_true", help="continue the run in output_dir")
    parser.add_argument("--epochs", type=int, help="override train.epochs")
    parser.add_argument("--output-dir", help="override train.output_dir")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        config = load_config(args.config)
        if args.epochs is not None:
            config.train.epochs = args.epochs
        if args.output_dir is not None:
            config.train.output_dir = args.output_dir
        run(config, args.resume)
    except (ConfigError, DataError, TeacherError, FileNotFoundError) as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
