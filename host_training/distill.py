"""Knowledge distillation from trained teachers, offline.

A small model learns more from a teacher's full probability vector than from
a one-hot label: "this fear looks a little sad" is information the label
throws away. The teachers are int8 TFLite models (an ensemble is their mean),
run once over the clean training faces, each face also mirrored; the result
is saved beside the run, so `--resume` reuses it and needs no teacher.
The training targets blend it with the one-hot labels.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from host_training.data import LABELS, DataError, in_canonical_order

log = logging.getLogger("host_training.distill")


class TeacherError(ValueError):
    """A teacher model that cannot be used; the message names it and the fix."""


def teacher_probabilities(
    models: Sequence[str | Path], faces: np.ndarray, threads: int = 2
) -> np.ndarray:
    """Mean probabilities (N, classes) of the teacher models, in canonical label order."""
    from edge.classifier import EmotionClassifier, ModelError

    total = np.zeros((len(faces), len(LABELS)), np.float32)
    for path in models:
        try:
            with EmotionClassifier(path, num_threads=threads, flip_average=True) as teacher:
                if teacher.input_size != faces.shape[1]:
                    raise TeacherError(
                        f"teacher {path} takes {teacher.input_size} px faces but the "
                        f"data is {faces.shape[1]} px: set data.input_size to match"
                    )
                total += in_canonical_order(teacher.predict_faces(faces), teacher.labels)
        except (ModelError, DataError) as exc:
            raise TeacherError(f"train.teachers: {exc}") from None
        log.info("teacher %s: done on %d faces", path, len(faces))
    return total / len(models)


def blend_targets(y: np.ndarray, teacher: np.ndarray | None, weight: float) -> np.ndarray:
    """(1 - weight) * one-hot(y) + weight * teacher, float32 (N, classes)."""
    onehot = np.eye(len(LABELS), dtype=np.float32)[y]
    if teacher is None:
        return onehot
    return ((1 - weight) * onehot + weight * teacher).astype(np.float32)


def cached_teacher_probabilities(
    models: Sequence[str | Path], faces: np.ndarray, run_dir: Path
) -> np.ndarray | None:
    """The teachers' probabilities for `faces`, computed once per run and kept in it."""
    if not models:
        return None
    path = run_dir / "teacher_probs.npy"
    if path.is_file():
        probs = np.load(path)
        if probs.shape == (len(faces), len(LABELS)):
            return probs
        log.warning("%s does not match the training data: recomputing", path)
    probs = teacher_probabilities(models, faces)
    run_dir.mkdir(parents=True, exist_ok=True)
    np.save(path, probs)
    return probs
