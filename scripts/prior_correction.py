"""Measure class-imbalance handling after training: divide each prediction by the
training class prior raised to tau (post-hoc logit adjustment) and score
PublicTest for several tau. tau 0 is the model as shipped; tau 1 is roughly
what a class-balanced loss would aim for. This prints figures; it tunes nothing.

    python scripts/prior_correction.py [models/emotion_int8.tflite] [data/fer2013]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from host_training.data import LABELS  # noqa: E402
from host_training.evaluate import metrics_from_predictions, predict_split  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", nargs="?", type=Path, default=ROOT / "models/emotion_int8.tflite")
    parser.add_argument("data", nargs="?", type=Path, default=ROOT / "data/fer2013")
    parser.add_argument("--tau", type=float, nargs="+", default=[0, 0.25, 0.5, 1.0])
    args = parser.parse_args()

    splits, probs, _ = predict_split(args.model, args.data, cache_dir=str(ROOT / ".cache/fer"))
    train_y = splits["train"].y
    prior = np.bincount(train_y, minlength=len(LABELS)) / len(train_y)
    print("tau   accuracy  macro-F1  disgust recall  (PublicTest, int8)")
    for tau in args.tau:
        m = metrics_from_predictions(splits["val"].y, probs / prior**tau)
        disgust = m["per_class"]["disgust"]["recall"]
        print(f"{tau:<5} {100 * m['accuracy']:7.2f} %  {m['macro_f1']:.4f}  {disgust:14.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
