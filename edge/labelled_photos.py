"""Labelled photos scored as the pipeline sees them: detect, crop, classify.

Photo collections are laid out as one folder per emotion (`happy/`,
`anger/`, `surprised/` ...). When `emotion-edge image` meets such folders it
states how often the model agrees with them: accuracy, macro-F1 and the
confusion matrix, counting a photo where no face was found as a miss (a user
checking the model on their own photos needs the whole path's answer, not the
classifier's alone).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

NO_FACE = "no face"

# Folder names as datasets spell them -> this project's labels.
ALIASES = {
    "anger": "angry",
    "angry": "angry",
    "mad": "angry",
    "disgust": "disgust",
    "disgusted": "disgust",
    "fear": "fear",
    "fearful": "fear",
    "afraid": "fear",
    "scared": "fear",
    "happy": "happy",
    "happiness": "happy",
    "joy": "happy",
    "neutral": "neutral",
    "calm": "neutral",
    "sad": "sad",
    "sadness": "sad",
    "surprise": "surprise",
    "surprised": "surprise",
}


def label_of(path: Path, labels: tuple[str, ...]) -> str | None:
    """The emotion a photo's folder names, if it names one of the model's."""
    for folder in path.parents:
        label = ALIASES.get(folder.name.lower(), folder.name.lower())
        if label in labels:
            return label
    return None


@dataclass
class Scores:
    labels: tuple[str, ...]
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, truth: str, predicted: str | None) -> None:
        row = self.confusion.setdefault(truth, {})
        key = predicted or NO_FACE
        row[key] = row.get(key, 0) + 1

    @property
    def total(self) -> int:
        return sum(sum(row.values()) for row in self.confusion.values())

    def summary(self) -> dict:
        correct = sum(row.get(label, 0) for label, row in self.confusion.items())
        f1s = []
        per_label = {}
        for label in self.labels:
            tp = self.confusion.get(label, {}).get(label, 0)
            truth = sum(self.confusion.get(label, {}).values())
            predicted = sum(row.get(label, 0) for row in self.confusion.values())
            if not truth and not predicted:
                continue
            precision = tp / predicted if predicted else 0.0
            recall = tp / truth if truth else 0.0
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            per_label[label] = {"images": truth, "recall": round(recall, 4), "f1": round(f1, 4)}
            if truth:
                f1s.append(f1)
        return {
            "images": self.total,
            "accuracy": round(correct / self.total, 4) if self.total else 0.0,
            "macro_f1": round(sum(f1s) / len(f1s), 4) if f1s else 0.0,
            "no_face": sum(row.get(NO_FACE, 0) for row in self.confusion.values()),
            "per_label": per_label,
            "confusion": self.confusion,
        }

    def write_report(self, folder: Path) -> list[Path]:
        """report.json and confusion.png into `folder`."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np

        folder.mkdir(parents=True, exist_ok=True)
        summary = self.summary()
        (folder / "report.json").write_text(json.dumps(summary, indent=2) + "\n")
        rows = [label for label in self.labels if label in self.confusion]
        cols = [*self.labels, NO_FACE]
        matrix = np.array([[self.confusion[r].get(c, 0) for c in cols] for r in rows], float)
        shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
        fig, ax = plt.subplots(figsize=(7, 0.55 * len(rows) + 1.6))
        ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        for i, j in np.ndindex(matrix.shape):
            if matrix[i, j]:
                ax.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if shares[i, j] > 0.5 else "black")  # fmt: skip
        ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right")
        ax.set_yticks(range(len(rows)), rows)
        ax.set_xlabel("predicted (largest face)")
        ax.set_ylabel("folder")
        ax.set_title(f"accuracy {summary['accuracy']:.1%}, macro-F1 {summary['macro_f1']:.3f}")
        fig.tight_layout()
        fig.savefig(folder / "confusion.png", dpi=110)
        plt.close(fig)
        return [folder / "report.json", folder / "confusion.png"]
