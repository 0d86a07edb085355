"""Candidates for the shipped model, scored by the ship rule, side by side:
`python -m host_training.front NAME=MODEL ... [--ensemble NAME+NAME ...] --out FILE`.

For each model (int8 .tflite, its .json beside it) and each ensemble (the
mean of its members' probabilities), on PublicTest: FER-2013-label accuracy
and the FER+ majority accuracy with one view and with flip averaging (the
pipeline's default), every class's recall, the share of faces called
neutral, and the crowd probability; the float figures `quantize` wrote into
the model's .json. Then the confidences (host_training/calibration.py): the
expected calibration error against the crowd on the faces the runs held out
of training (`data.calibration_fraction`), a temperature fitted there, and
the error before and after it, there and on PublicTest.

Needs the TFLite runtime, FER-2013 image folders and the FER+ votes.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

from edge.classifier import with_temperature
from host_training.calibration import (
    expected_calibration_error,
    fit_temperature,
    in_calibration_split,
    reliability,
)
from host_training.data import LABELS, in_canonical_order, load_splits
from host_training.ferplus import DEFAULT_VOTES, crowd_metrics, read_votes, votes_for

log = logging.getLogger("host_training.front")
CALIBRATION_FRACTION = 0.05  # as the configs of runs 3 and 4 hold out
SHIP_RULE = {"ferplus": 0.805, "fer2013": 0.670, "min_recall": 0.35, "neutral_points": 3.0}
"""The issue's ship rule on PublicTest, int8 with flip averaging (docs/training.md);
the demo clip's label accuracy is checked by `make test` against its baseline."""


def ship_rule(entry: dict, shipped: dict | None) -> dict:
    """Which parts of the ship rule a candidate misses (none: it may ship)."""
    s = entry["int8_flip"]
    missed = []
    if s["ferplus"] < SHIP_RULE["ferplus"]:
        missed.append(f"FER+ {100 * s['ferplus']:.2f} % < 80.5 %")
    if s["fer2013"] < SHIP_RULE["fer2013"]:
        missed.append(f"FER-2013 {100 * s['fer2013']:.2f} % < 67.0 %")
    if s["min_recall"] < SHIP_RULE["min_recall"]:
        worst = min(s["recall"], key=s["recall"].get)
        missed.append(f"{worst} recall {s['min_recall']:.3f} < 0.35")
    if shipped is not None:
        demo, baseline = entry["demo_clip_label_accuracy"], shipped["demo_clip_label_accuracy"]
        if demo < baseline:
            missed.append(f"demo clip labels {demo:.3f} < {baseline:.3f}")
        shift = 100 * (s["neutral_share"] - shipped["int8_flip"]["neutral_share"])
        if abs(shift) > SHIP_RULE["neutral_points"]:
            missed.append(f"neutral share {shift:+.1f} points")
    return {"met": not missed, "missed": missed}


def probabilities(model: Path, faces: np.ndarray, flip: bool) -> np.ndarray:
    from edge.classifier import EmotionClassifier

    with EmotionClassifier(model, num_threads=2, flip_average=flip) as classifier:
        classifier.temperature = 1.0  # the raw model: calibration is measured here
        return in_canonical_order(classifier.predict_faces(faces), classifier.labels)


def demo_clip_accuracy(models: list[Path]) -> float:
    """Label accuracy on the demo clip through the real CLI (detection,
    tracking and smoothing included), as tests/baselines/demo_clip.json
    has it for the shipped model."""
    import subprocess
    import tempfile

    from edge.config import DEMO_CLIP
    from edge.scoring import load_events, score

    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.toml"
        config.write_text("[classifier]\nmodels = [" + ", ".join(f'"{m}"' for m in models) + "]\n")
        events = Path(tmp) / "events.jsonl"
        command = [sys.executable, "-m", "edge", "run", "--config", str(config)]
        command += ["--source", str(DEMO_CLIP), "--display", "none", "--events", str(events)]
        subprocess.run(command, check=True, capture_output=True, timeout=600)
        truth = json.loads(DEMO_CLIP.with_suffix(".truth.json").read_text())
        return round(score(load_events(events), truth)["label_accuracy"], 4)


def scores(probs: np.ndarray, labels: np.ndarray, votes) -> dict:
    predicted = probs.argmax(axis=1)
    recall = {
        label: round(float((predicted[labels == i] == i).mean()), 4)
        for i, label in enumerate(LABELS)
    }
    crowd = crowd_metrics(probs, votes)
    return {
        "fer2013": round(float((predicted == labels).mean()), 4),
        "ferplus": crowd["majority_accuracy"],
        "crowd_probability": crowd["crowd_probability"],
        "recall": recall,
        "min_recall": min(recall.values()),
        "neutral_share": round(float((predicted == LABELS.index("neutral")).mean()), 4),
    }


def evaluate(models: dict[str, Path], ensembles: list[str], data: Path, votes_file: Path) -> dict:
    splits = load_splits(data, 48)
    table = read_votes(votes_file)
    test, train = splits["val"], splits["train"]
    test_votes = votes_for(test, table)
    held = train.subset(in_calibration_split(train.files, CALIBRATION_FRACTION))
    held_votes = votes_for(held, table)
    keep = held_votes.trainable()
    held, held_crowd = held.subset(keep), held_votes.distribution()[keep]
    test_crowd = test_votes.distribution()
    log.info("PublicTest %d faces; calibration split %d faces", len(test), len(held))

    probs: dict[str, dict[str, np.ndarray]] = {}
    for name, path in models.items():
        probs[name] = {
            "one": probabilities(path, test.x, False),
            "flip": probabilities(path, test.x, True),
            "held": probabilities(path, held.x, True),
        }
        log.info("scored %s", name)
    for ensemble in ensembles:
        members = ensemble.split("+")
        probs[ensemble] = {
            view: np.mean([probs[m][view] for m in members], axis=0)
            for view in ("one", "flip", "held")
        }
    result: dict = {
        "data": str(data),
        "calibration_split": {
            "faces": len(held),
            "rule": f"train faces whose file name's sha1 falls in the first "
            f"{CALIBRATION_FRACTION:.0%} (host_training.calibration.in_calibration_split)",
        },
        "candidates": {},
    }
    for name, p in probs.items():
        entry: dict = {"members": name.split("+")}
        if name in models:
            entry["model"] = str(models[name])
            meta = json.loads(models[name].with_suffix(".json").read_text())
            training = meta.get("training", {})
            train = training.get("config", {}).get("train", {})
            entry["crowd_weight"] = train.get("crowd_weight", 0.0)
            entry["class_weight"] = train.get("class_weight", "none")
            entry["train_minutes"] = round(training.get("train_seconds", 0) / 60)
            validation = meta.get("metrics", {}).get("validation", {})
            if "float" in validation:
                entry["float"] = {
                    "fer2013": validation["float"]["accuracy"],
                    "ferplus": validation["float"].get("ferplus", {}).get("majority_accuracy"),
                }
        paths = [models[m].resolve() for m in entry["members"]]
        entry["demo_clip_label_accuracy"] = demo_clip_accuracy(paths)
        entry["int8"] = scores(p["one"], test.y, test_votes)
        entry["int8_flip"] = scores(p["flip"], test.y, test_votes)
        temperature = fit_temperature(p["held"], held_crowd)
        entry["calibration"] = {
            "temperature": temperature,
            "ece_held_out": round(expected_calibration_error(p["held"], held_crowd), 4),
            "ece_held_out_after": round(
                expected_calibration_error(with_temperature(p["held"], temperature), held_crowd),
                4,
            ),
            "ece_publictest": round(expected_calibration_error(p["flip"], test_crowd), 4),
            "ece_publictest_after": round(
                expected_calibration_error(with_temperature(p["flip"], temperature), test_crowd),
                4,
            ),
            "reliability_publictest": reliability(p["flip"], test_crowd),
            "reliability_publictest_after": reliability(
                with_temperature(p["flip"], temperature), test_crowd
            ),
        }
        result["candidates"][name] = entry
    shipped = result["candidates"].get("shipped")
    for name, entry in result["candidates"].items():
        entry["ship_rule"] = rule = ship_rule(entry, shipped)
        log.info(
            "%s: FER-2013 %.2f %%, FER+ %.2f %% (flip); ECE %.3f -> %.3f at T %.2f; %s",
            name,
            100 * entry["int8_flip"]["fer2013"],
            100 * entry["int8_flip"]["ferplus"],
            entry["calibration"]["ece_held_out"],
            entry["calibration"]["ece_held_out_after"],
            entry["calibration"]["temperature"],
            "ship rule met" if rule["met"] else "; ".join(rule["missed"]),
        )
    return result


def table(result: dict) -> str:
    """The candidates side by side (docs/training.md's table)."""
    lines = [
        "| candidate | `crowd_weight` | train min | FER-2013: float / int8 / int8 + flip "
        "| FER+ majority: float / int8 / int8 + flip | lowest recall | neutral share "
        "| demo clip labels | ECE held out (T) | ship rule |",
        "|---|---:|---:|---|---|---|---:|---:|---|---|",
    ]

    def pct(value) -> str:
        return "–" if value is None else f"{100 * value:.2f} %"

    for name, e in result["candidates"].items():
        one, flip = e["int8"], e["int8_flip"]
        fl = e.get("float", {})
        worst = min(flip["recall"], key=flip["recall"].get)
        weight = e.get("crowd_weight", "")
        if e.get("class_weight", "none") != "none":
            weight = f"{weight}, {e['class_weight']} class weights"
        cal = e["calibration"]
        rule = "met" if e["ship_rule"]["met"] else "; ".join(e["ship_rule"]["missed"])
        lines.append(
            f"| {name} | {weight} | {e.get('train_minutes', '')} | "
            f"{pct(fl.get('fer2013'))} / {pct(one['fer2013'])} / **{pct(flip['fer2013'])}** | "
            f"{pct(fl.get('ferplus'))} / {pct(one['ferplus'])} / **{pct(flip['ferplus'])}** | "
            f"{worst} {flip['min_recall']:.3f} | {100 * flip['neutral_share']:.1f} % | "
            f"{e['demo_clip_label_accuracy']:.3f} | {cal['ece_held_out']:.3f} → "
            f"{cal['ece_held_out_after']:.3f} ({cal['temperature']:.2f}) | {rule} |"
        )
    return "\n".join(lines) + "\n"


def plot_reliability(result: dict, path: Path) -> Path:
    """Confidence against crowd agreement on PublicTest, one line per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], color="gray", lw=0.8, ls=":", label="calibrated")
    for name, entry in result["candidates"].items():
        rows = entry["calibration"]["reliability_publictest"]
        ece = entry["calibration"]["ece_publictest"]
        ax.plot(
            [r["confidence"] for r in rows],
            [r["agreement"] for r in rows],
            marker="o",
            label=f"{name} (ECE {ece:.3f})",
        )
    ax.set_xlabel("confidence shown (top probability, flip averaged)")
    ax.set_ylabel("share of the ten annotators who chose that emotion")
    ax.set_title("PublicTest: confidence against the FER+ crowd")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m host_training.front", description=__doc__)
    parser.add_argument("models", nargs="+", help="NAME=path/to/model.tflite")
    parser.add_argument("--ensemble", action="append", default=[], help="NAME+NAME")
    parser.add_argument("--data", type=Path, default=Path("data/fer2013"))
    parser.add_argument("--votes", type=Path, default=DEFAULT_VOTES)
    parser.add_argument("--out", type=Path, required=True, help="results .json")
    parser.add_argument("--plot", type=Path, help="reliability plot .png")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    models = {}
    for item in args.models:
        name, _, path = item.partition("=")
        if not path or not Path(path).is_file():
            log.error("%s: give NAME=MODEL with an existing .tflite file", item)
            return 2
        models[name] = Path(path)
    for ensemble in args.ensemble:
        if any(m not in models for m in ensemble.split("+")):
            log.error("ensemble %s names a model not given (%s)", ensemble, ", ".join(models))
            return 2
    from benchmarks.provenance import provenance

    result = evaluate(models, args.ensemble, args.data, args.votes)
    result["provenance"] = provenance()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    log.info("wrote %s", args.out)
    if args.plot:
        log.info("wrote %s", plot_reliability(result, args.plot))
    return 0


if __name__ == "__main__":
    sys.exit(main())
