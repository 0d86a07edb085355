"""FER+ crowd votes (Barsoum et al. 2016) for our FER-2013 image folders.

Ten annotators per face voted among eight emotions, "unknown" and "not a
face". Where the crowd's top emotion and the FER-2013 label disagree (38 %
of the training faces), the crowd is what people call the face; training on
its vote distribution and scoring against its majority is the protocol the
published FER+ figures use.

The votes file (`ferplus-votes.csv`, see its FERPLUS.md) is keyed by split
(`train`, `test`), class folder and file name, which is how a `Split` read
from image folders names its faces (`Split.files`).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from host_training.data import LABELS, DataError, Split

DEFAULT_VOTES = Path("../shared/datasets/fer2013/ferplus-votes.csv")
"""Where the project's data share keeps the votes (FERPLUS.md beside it)."""

VOTE_COLUMNS: tuple[str, ...] = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "NF",
)
"""The file's vote columns, in its order."""

EMOTION_TO_LABEL = {
    "neutral": "neutral",
    "happiness": "happy",
    "surprise": "surprise",
    "sadness": "sad",
    "anger": "angry",
    "disgust": "disgust",
    "fear": "fear",
}
"""The seven emotions FER+ shares with FER-2013, by name (contempt has no label)."""

_EMOTION_COLUMNS = [VOTE_COLUMNS.index(name) for name in EMOTION_TO_LABEL]
_TO_CANONICAL = [LABELS.index(label) for label in EMOTION_TO_LABEL.values()]
_UNCLEAR = [VOTE_COLUMNS.index("unknown"), VOTE_COLUMNS.index("NF")]


def read_votes(path: Path | str) -> dict[tuple[str, str, str], np.ndarray]:
    """Vote counts (10,) keyed by (split, class folder, file), as the file has them."""
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"FER+ votes {path} not found: point data.votes (or --votes) at "
            f"ferplus-votes.csv, e.g. {DEFAULT_VOTES}"
        )
    table: dict[tuple[str, str, str], np.ndarray] = {}
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        header = set(reader.fieldnames or ())
        missing = [c for c in ("split", "class", "file", *VOTE_COLUMNS) if c not in header]
        if missing:
            raise DataError(
                f"{path}: missing column(s) {', '.join(missing)}; expected the header "
                f"'split,class,file,{','.join(VOTE_COLUMNS)}' (see FERPLUS.md)"
            )
        for line_no, row in enumerate(reader, start=2):
            try:
                counts = np.array([int(row[c]) for c in VOTE_COLUMNS], dtype=np.int16)
                if (counts < 0).any():
                    raise ValueError
            except (ValueError, TypeError):
                raise DataError(
                    f"{path}:{line_no}: vote counts must be whole numbers >= 0; fix the row"
                ) from None
            table[(row["split"], row["class"], row["file"])] = counts
    return table


@dataclass
class CrowdVotes:
    """The vote counts (N, 10) of a split's faces, in the split's order."""

    counts: np.ndarray

    def __len__(self) -> int:
        return len(self.counts)

    def distribution(self) -> np.ndarray:
        """The crowd's distribution over LABELS (N, 7): the seven shared
        emotions' votes, renormalized; a row with none of them is all zeros."""
        emotions = np.zeros((len(self), len(LABELS)), np.float32)
        emotions[:, _TO_CANONICAL] = self.counts[:, _EMOTION_COLUMNS]
        total = emotions.sum(axis=1, keepdims=True)
        return np.divide(emotions, total, out=np.zeros_like(emotions), where=total > 0)

    def trainable(self) -> np.ndarray:
        """Faces worth training on: at most half the votes "unknown" or "not a
        face", and at least one vote for a shared emotion."""
        unclear = self.counts[:, _UNCLEAR].sum(axis=1)
        emotion_votes = self.counts[:, _EMOTION_COLUMNS].sum(axis=1)
        return (2 * unclear <= self.counts.sum(axis=1)) & (emotion_votes > 0)

    def majority(self) -> np.ndarray:
        """The canonical label a strict majority of all votes gave, or -1.

        Strict majority: more than half of all the face's votes (6 of 10) for
        one of the seven shared emotions. Faces whose majority is contempt,
        unknown or not-a-face, and faces with no majority, are -1: the FER+
        majority protocol leaves them out.
        """
        top = self.counts.argmax(axis=1)
        has_majority = 2 * self.counts.max(axis=1) > self.counts.sum(axis=1)
        labels = np.full(len(self), -1, dtype=np.int64)
        for column, canonical in zip(_EMOTION_COLUMNS, _TO_CANONICAL, strict=True):
            labels[has_majority & (top == column)] = canonical
        return labels


def votes_for(split: Split, table: dict[tuple[str, str, str], np.ndarray]) -> CrowdVotes:
    """The votes of each face of `split`, in its order, joined by image path.

    A path `train/angry/x.jpg` is joined by split, class and file;
    `angry/x.jpg` (class folders read alone) by class and file, which are
    unique in the votes file. Every face must have votes: the first that has
    none is named, since votes for other images would be a silent wrong answer.
    """
    if split.files is None:
        raise DataError(
            "FER+ votes are joined by file name, and this data has none (a CSV): "
            "use the image-folder layout (make data/fer2013/train)"
        )
    by_class_and_file = {(folder, file): counts for (_, folder, file), counts in table.items()}
    rows = []
    for name in split.files:
        parts = tuple(str(name).split("/"))
        counts = table.get(parts) if len(parts) == 3 else by_class_and_file.get(parts)
        if counts is None:
            raise DataError(
                f"no FER+ votes for {name}: the votes file covers the FER-2013 copy in "
                "../shared/datasets/fer2013 (its train/ and test/ folders); use that "
                "copy, or leave the votes out"
            )
        rows.append(counts)
    return CrowdVotes(np.stack(rows) if rows else np.zeros((0, len(VOTE_COLUMNS)), np.int16))


def crowd_metrics(probs: np.ndarray, votes: CrowdVotes) -> dict:
    """The FER+ protocol: accuracy against the strict-majority label (on the
    faces that have one) and the mean probability the model gives to the
    crowd's distribution, sum_k p_model(k) * p_crowd(k): how often the model's
    answer, drawn from its probabilities, would agree with one annotator's."""
    majority = votes.majority()
    counted = majority >= 0
    correct = probs[counted].argmax(axis=1) == majority[counted]
    crowd = votes.distribution()
    rated = crowd.sum(axis=1) > 0
    agreement = (probs[rated] * crowd[rated]).sum(axis=1)
    return {
        "majority_accuracy": round(float(correct.mean()) if counted.any() else 0.0, 4),
        "majority_faces": int(counted.sum()),
        "crowd_probability": round(float(agreement.mean()) if rated.any() else 0.0, 4),
        "crowd_faces": int(rated.sum()),
    }
