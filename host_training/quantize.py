"""Full-integer int8 TFLite conversion and the shipped model's metadata.

`python -m host_training.quantize --run runs/cnn` converts the run's model
(its weight average when it made one, else its best epoch) with a stratified
representative set of training faces, checks the int8 model against the float
one on validation, and writes `emotion_int8.tflite` plus `emotion_int8.json`
(the sidecar the edge runtime reads).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.provenance import git_commit, tree_is_clean
from edge.preprocess import DEFAULT_LIFT, DEFAULT_MARGIN
from host_training.averaging import AVERAGED_FILE
from host_training.config import ConfigError, parse_config
from host_training.data import (
    LABELS,
    DataError,
    in_canonical_order,
    load_splits,
    representative_sample,
)
from host_training.evaluate import crowd_votes, metrics_from_predictions
from host_training.ferplus import crowd_metrics

log = logging.getLogger("host_training.quantize")

REPRESENTATIVE_FACES = 700


CHECKPOINTS = {"averaged": AVERAGED_FILE, "best": "best.keras", "last": "last.keras"}


def run_checkpoint(run_dir: Path, which: str = "auto") -> Path:
    """The model file of a run to convert.

    "auto" is what the run produced: averaged.keras when it averaged weights,
    else best.keras. The others name a file of CHECKPOINTS.
    """
    if which == "auto":
        averaged = run_dir / AVERAGED_FILE
        return averaged if averaged.is_file() else run_dir / "best.keras"
    return run_dir / CHECKPOINTS[which]


def convert_int8(model, faces: np.ndarray) -> bytes:
    """int8 weights, activations, input and output, calibrated on `faces`.

    Integer-only ops (no float fallback), so the model runs on integer-only
    delegates and XNNPACK's int8 kernels.
    """
    import tensorflow as tf

    def representative():
        for face in faces:
            yield [face[None, :, :, None].astype(np.float32)]

    with tempfile.TemporaryDirectory() as tmp:
        # Keras 3 models convert through a SavedModel; from_keras_model is
        # deprecated for them.
        model.export(tmp, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
        return converter.convert()


def convert_float(model) -> bytes:
    """float32 TFLite of the same model, for benchmarks and comparisons."""
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as tmp:
        model.export(tmp, format="tf_saved_model", verbose=False)
        return tf.lite.TFLiteConverter.from_saved_model(tmp).convert()


def keras_predict(model, faces: np.ndarray, batch: int = 256) -> np.ndarray:
    return model.predict(faces[..., None].astype(np.float32), batch_size=batch, verbose=0)


def build_metadata(
    *,
    model,
    config: dict,
    state: dict,
    splits,
    float_metrics: dict,
    int8_metrics: dict,
    size_bytes: int,
    checkpoint: str,
) -> dict:
    """The sidecar JSON: the contract the edge runtime reads, and the provenance."""
    import keras
    import tensorflow as tf

    from host_training.models import count_macs

    input_size = config["data"]["input_size"]
    return {
        "format": 1,
        "labels": list(LABELS),
        "input": {
            "size": [input_size, input_size],
            "channels": 1,
            "color": "gray",
            "range": [0, 255],
            "dtype": "int8, quantized from the tensor's own scale and zero point",
        },
        "preprocessing": {
            "crop": "edge.preprocess.crop_face: square around the detection box, grown "
            "by margin x side on each side, centre lifted by lift x side, border "
            "replicated, INTER_AREA resize",
            "margin": DEFAULT_MARGIN,
            "lift": DEFAULT_LIFT,
            "normalization": "inside the model",
        },
        "architecture": {
            "name": model.name,
            "config": config["model"],
            "parameters": int(model.count_params()),
            "macs": count_macs(model),
        },
        "size_bytes": size_bytes,
        "training": {
            "data": "FER-2013 " + config["data"]["path"],
            "splits": {name: len(split) for name, split in splits.items()},
            "validation": "PublicTest",
            "epochs_run": state.get("epoch"),
            "best_epoch": state.get("best_epoch"),
            "averaged_epochs": state.get("averaged_epochs"),
            "checkpoint": checkpoint,
            "train_seconds": round(state.get("train_seconds", 0.0)),
            "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
            "config": config,
        },
        "metrics": {"validation": {"float": float_metrics, "int8": int8_metrics}},
        "versions": {
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "numpy": np.__version__,
        },
        "git_commit": git_commit(),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m host_training.quantize", description=__doc__)
    parser.add_argument(
        "--run", required=True, help="training run folder (holds best.keras or averaged.keras)"
    )
    parser.add_argument(
        "--checkpoint",
        choices=["auto", *CHECKPOINTS],
        default="auto",
        help="which model of the run: auto (averaged when the run averaged, else best), "
        "averaged (weight average), best (best validation epoch), last (last epoch)",
    )
    parser.add_argument("--out", default="models/emotion_int8.tflite", help="int8 model path")
    parser.add_argument("--float-out", help="also write the float32 TFLite model here")
    parser.add_argument("--force", action="store_true", help="overwrite an existing --out")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    run_dir, out = Path(args.run), Path(args.out)
    try:
        if out.exists() and not args.force:
            raise ConfigError(f"{out} exists: pass --force to replace it, or choose --out")
        checkpoint = run_checkpoint(run_dir, args.checkpoint)
        if not checkpoint.is_file():
            hint = (
                "this run averaged no weights (train.average_epochs)"
                if args.checkpoint == "averaged"
                else "train first (make train)"
            )
            raise ConfigError(f"{checkpoint} not found: {hint}")
        config = json.loads((run_dir / "config.json").read_text())
        parsed = parse_config(config, str(run_dir / "config.json"))
        state = json.loads((run_dir / "state.json").read_text())
        splits = load_splits(
            parsed.data.path,
            parsed.data.input_size,
            parsed.data.cache_dir,
            parsed.data.val_fraction,
            parsed.train.seed,
        )
        # Both protocols, FER-2013 labels and the FER+ crowd's where votes cover
        # PublicTest; resolved here, so a bad votes file fails before the conversion.
        crowd = crowd_votes(splits["val"], parsed.data.votes or "auto")
    except (ConfigError, DataError, FileNotFoundError) as exc:
        log.error("%s", exc)
        return 2

    import keras

    from edge.classifier import EmotionClassifier

    log.info("converting %s", checkpoint)
    # compile=False: conversion needs the graph and weights only. A run trained
    # on Keras' torch backend saved a torch optimizer, and importing torch into
    # this TensorFlow process crashed here (a segfault in triton's import,
    # torch 2.14.1 beside tensorflow 2.21).
    model = keras.models.load_model(checkpoint, compile=False)
    faces = representative_sample(splits["train"], REPRESENTATIVE_FACES, parsed.train.seed)
    log.info("calibrating int8 on %d stratified training faces", len(faces))
    tflite = convert_int8(model, faces)

    val = splits["val"]
    float_probs = keras_predict(model, val.x)
    float_metrics = metrics_from_predictions(val.y, float_probs)
    if crowd is not None:
        float_metrics["ferplus"] = crowd_metrics(float_probs, crowd)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_model = out.with_suffix(".tmp.tflite")
    tmp_model.write_bytes(tflite)
    metadata = build_metadata(
        model=model,
        config=config,
        state=state,
        splits=splits,
        float_metrics=float_metrics,
        int8_metrics={},
        size_bytes=len(tflite),
        checkpoint=checkpoint.name,
    )
    tmp_meta = tmp_model.with_suffix(".json")
    tmp_meta.write_text(json.dumps(metadata, indent=2))
    with EmotionClassifier(tmp_model, num_threads=2) as classifier:
        int8_probs = in_canonical_order(classifier.predict_faces(val.x), classifier.labels)
        int8_metrics = metrics_from_predictions(val.y, int8_probs)
        if crowd is not None:
            int8_metrics["ferplus"] = crowd_metrics(int8_probs, crowd)
    metadata["metrics"]["validation"]["int8"] = int8_metrics

    metadata["provenance"] = {
        "tflite_sha256": hashlib.sha256(tflite).hexdigest(),
        "made_from": metadata.get("git_commit"),
        "git_clean": tree_is_clean(),
    }
    tmp_model.replace(out)
    tmp_meta.unlink()
    out.with_suffix(".json").write_text(json.dumps(metadata, indent=2) + "\n")
    if args.float_out:
        Path(args.float_out).write_bytes(convert_float(model))
    if "ferplus" in int8_metrics:
        log.info(
            "FER+ majority accuracy: float %.2f %%, int8 %.2f %% (%d faces)",
            100 * float_metrics["ferplus"]["majority_accuracy"],
            100 * int8_metrics["ferplus"]["majority_accuracy"],
            int8_metrics["ferplus"]["majority_faces"],
        )
    drop = 100 * (float_metrics["accuracy"] - int8_metrics["accuracy"])
    log.info(
        "validation accuracy: float %.2f %%, int8 %.2f %% (drop %.2f points); %s: %.0f KB",
        100 * float_metrics["accuracy"],
        100 * int8_metrics["accuracy"],
        drop,
        out,
        len(tflite) / 1024,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
