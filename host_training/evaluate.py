"""Evaluate a TFLite emotion model: `python -m host_training.evaluate MODEL DATA`.

Needs only the TFLite runtime (no TensorFlow), so a model can be checked on
the Pi too. DATA is any FER-2013 layout (see host_training.data); the
validation split (PublicTest) is scored unless --split says otherwise.
Prints accuracy, macro-F1, per-class precision/recall and the confusion
matrix; writes a JSON report and PNGs (confusion matrix, training curves).

Where FER+ crowd votes cover the faces (--votes, by default the project's
copy in ../shared), the FER+ protocol is reported beside FER-2013's: accuracy
against the strict majority of the ten annotators, and the mean probability
the model gives to the crowd's distribution (host_training/ferplus.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from host_training.data import DataError, Split, in_canonical_order, load_splits
from host_training.ferplus import DEFAULT_VOTES, CrowdVotes, crowd_metrics, read_votes, votes_for

log = logging.getLogger("host_training.evaluate")


def metrics_from_predictions(
    y_true: np.ndarray, probs: np.ndarray, labels: tuple[str, ...] | None = None
) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix."""
    from host_training.data import LABELS

    labels = labels or LABELS
    k = len(labels)
    y_pred = np.argmax(probs, axis=1)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (y_true, y_pred), 1)
    true_pos = np.diag(confusion).astype(float)
    predicted = confusion.sum(axis=0).astype(float)
    actual = confusion.sum(axis=1).astype(float)
    precision = np.divide(true_pos, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(true_pos, actual, out=np.zeros(k), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(k), where=denom > 0)
    return {
        "samples": len(y_true),
        "accuracy": round(float(true_pos.sum() / max(1, len(y_true))), 4),
        "macro_f1": round(float(f1[actual > 0].mean()) if (actual > 0).any() else 0.0, 4),
        "per_class": {
            label: {
                "precision": round(float(precision[i]), 4),
                "recall": round(float(recall[i]), 4),
                "f1": round(float(f1[i]), 4),
                "support": int(actual[i]),
            }
            for i, label in enumerate(labels)
        },
        "confusion": confusion.tolist(),
        "labels": list(labels),
    }


def format_report(metrics: dict) -> str:
    labels = metrics["labels"]
    lines = [
        f"accuracy {100 * metrics['accuracy']:.2f} %   macro-F1 {metrics['macro_f1']:.4f}   "
        f"({metrics['samples']} faces)",
    ]
    if "ferplus" in metrics:
        crowd = metrics["ferplus"]
        lines.append(
            f"FER+ majority accuracy {100 * crowd['majority_accuracy']:.2f} % "
            f"({crowd['majority_faces']} faces with a strict majority)   "
            f"crowd probability {crowd['crowd_probability']:.4f}"
        )
    lines += [
        "",
        f"{'class':10} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>8}",
    ]
    for label in labels:
        c = metrics["per_class"][label]
        lines.append(
            f"{label:10} {c['precision']:9.3f} {c['recall']:7.3f} {c['f1']:6.3f} {c['support']:8d}"
        )
    lines += [
        "",
        "confusion (rows: true, columns: predicted)",
        " " * 10 + "".join(f"{label[:7]:>8}" for label in labels),
    ]
    for label, row in zip(labels, metrics["confusion"], strict=True):
        lines.append(f"{label:10}" + "".join(f"{v:8d}" for v in row))
    return "\n".join(lines)


def predict_split(
    model: Path,
    data: Path,
    split: str = "val",
    threads: int = 2,
    cache_dir: str | None = ".cache/fer",
    flip_average: bool = False,
) -> tuple[dict[str, Split], np.ndarray, float]:
    """All splits of `data`, the model's probabilities for `split` in canonical
    label order, and the seconds the predictions took."""
    from edge.classifier import EmotionClassifier

    with EmotionClassifier(model, num_threads=threads, flip_average=flip_average) as classifier:
        splits = load_splits(data, classifier.input_size, cache_dir)
        if split not in splits:
            raise DataError(f"{data} has no '{split}' split (found: {', '.join(splits)})")
        started = time.perf_counter()
        probs = classifier.predict_faces(splits[split].x)
        seconds = time.perf_counter() - started
        return splits, in_canonical_order(probs, classifier.labels), seconds


def crowd_votes(faces: Split, votes: Path | str | None) -> CrowdVotes | None:
    """The FER+ votes of `faces`, for the FER+ protocol's figures (crowd_metrics).

    `votes` is a ferplus-votes.csv, which must cover every face; "auto" is
    the project's copy (DEFAULT_VOTES) where it is present and covers them,
    else None, so a data set without votes (JAFFE, a CSV) is scored on its
    labels alone; None leaves the FER+ protocol out.
    """
    if votes is None or (votes == "auto" and not DEFAULT_VOTES.is_file()):
        return None
    try:
        return votes_for(faces, read_votes(DEFAULT_VOTES if votes == "auto" else votes))
    except DataError as exc:
        if votes != "auto":
            raise
        log.info("FER+ protocol left out: %s", exc)
        return None


def evaluate(
    model: Path,
    data: Path,
    split: str = "val",
    threads: int = 2,
    cache_dir: str | None = ".cache/fer",
    flip_average: bool = False,
    votes: Path | str | None = "auto",
) -> dict:
    """FER-2013-label metrics of `model` on `data`'s `split`, and the FER+
    protocol's where `votes` cover the faces (crowd_votes)."""
    splits, probs, seconds = predict_split(model, data, split, threads, cache_dir, flip_average)
    faces = splits[split]
    metrics = metrics_from_predictions(faces.y, probs)
    if (crowd := crowd_votes(faces, votes)) is not None:
        metrics["ferplus"] = crowd_metrics(probs, crowd)
    metrics.update(
        model=str(model),
        data=str(data),
        split=split,
        flip_average=flip_average,
        ms_per_face=round(1000 * seconds / max(1, len(faces)), 4),
    )
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m host_training.evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", type=Path, help="TFLite model (its .json beside it)")
    parser.add_argument("data", type=Path, help="FER-2013 data: layout root, class folders, CSV")
    parser.add_argument("--split", default="val", help="train, val (PublicTest) or test")
    parser.add_argument("--out", type=Path, help="folder for report.json and PNGs")
    parser.add_argument("--log", type=Path, help="training log.csv for the curves plot")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--flip-average",
        action="store_true",
        help="average each face's prediction with its mirror's (as [classifier] flip_average)",
    )
    parser.add_argument(
        "--votes",
        type=Path,
        help=f"FER+ ferplus-votes.csv for the FER+ protocol (default: {DEFAULT_VOTES}, "
        "where it covers the faces)",
    )
    parser.add_argument("--no-votes", action="store_true", help="FER-2013 labels only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

    from edge.classifier import ModelError

    try:
        metrics = evaluate(
            args.model,
            args.data,
            args.split,
            args.threads,
            flip_average=args.flip_average,
            votes=None if args.no_votes else (args.votes or "auto"),
        )
    except (DataError, ModelError) as exc:
        log.error("%s", exc)
        return 2
    print(format_report(metrics))
    if args.out:
        from benchmarks.provenance import provenance
        from host_training.report import write_plots

        metrics["provenance"] = provenance(model=args.model)

        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "report.json").write_text(json.dumps(metrics, indent=2) + "\n")
        for png in write_plots(metrics, args.out, args.log):
            log.info("wrote %s", png)
        log.info("wrote %s", args.out / "report.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
