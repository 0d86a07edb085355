"""Knowledge distillation from trained teachers, offline.

A small model learns more from a teacher's full probability vector than from
a one-hot label: "this fear looks a little sad" is information the label
throws away. The teachers are int8 TFLite models (an ensemble is their mean),
run once over the clean training faces, each face also mirrored; the result
is saved beside the run, so `--resume` reuses it and needs no teacher. A
teacher can also be a finished run's float `.keras` file, run on the Keras
backend: on a GPU host, the teachers trained there teach without a round
trip through the workstation's int8 converter.
The training targets blend it with the one-hot labels.

A teacher is only as useful as its probabilities are right, and averaging a
model over slightly moved copies of a face (test-time augmentation) makes it
more right at no cost to the student: the shipped model scores 69.30 % on
PublicTest averaged over the face and its mirror, and 70.33 % over the 14
views of `teacher_views = "flip-shift-zoom"`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from host_training.data import LABELS, DataError, in_canonical_order
from host_training.quantize import keras_predict

log = logging.getLogger("host_training.distill")


class TeacherError(ValueError):
    """A teacher model that cannot be used; the message names it and the fix."""


#: What `teacher_views` names: the moves each face is seen with (each also
#: mirrored). Shifts of 2 px and zooms of 10 %, well inside the training
#: augmentation, so every view is a face the teacher has learnt to read.
VIEWS = {
    "flip": [(0, 0, 1.0)],
    "flip-shift-zoom": [
        (0, 0, 1.0),
        (-2, 0, 1.0),
        (2, 0, 1.0),
        (0, -2, 1.0),
        (0, 2, 1.0),
        (0, 0, 0.9),
        (0, 0, 1.1),
    ],
}


def moved_faces(faces: np.ndarray, dx: float, dy: float, scale: float) -> np.ndarray:
    """`faces` (N, size, size) shifted by (dx, dy) px and zoomed about the centre."""
    if (dx, dy, scale) == (0, 0, 1.0):
        return faces
    size = faces.shape[1]
    centre = (size - 1) / 2
    matrix = cv2.getRotationMatrix2D((centre, centre), 0, scale)
    matrix[:, 2] += (dx, dy)
    return np.stack(
        [
            cv2.warpAffine(face, matrix, (size, size), borderMode=cv2.BORDER_REFLECT)
            for face in faces
        ]
    )


def teacher_probabilities(
    models: Sequence[str | Path], faces: np.ndarray, threads: int = 2, views: str = "flip"
) -> np.ndarray:
    """Mean probabilities (N, classes) of the teacher models over the `views` of
    each face (a key of VIEWS), in canonical label order."""
    from edge.classifier import ModelError

    if views not in VIEWS:
        raise TeacherError(f"train.teacher_views: {views!r} is not one of {sorted(VIEWS)}")
    moved = [moved_faces(faces, *move) for move in VIEWS[views]]
    total = np.zeros((len(faces), len(LABELS)), np.float32)
    for path in models:
        try:
            with _open_teacher(path, threads) as teacher:
                if teacher.input_size != faces.shape[1]:
                    raise TeacherError(
                        f"teacher {path} takes {teacher.input_size} px faces but the "
                        f"data is {faces.shape[1]} px: set data.input_size to match"
                    )
                for view in moved:
                    total += in_canonical_order(teacher.predict_faces(view), teacher.labels)
        except (ModelError, DataError) as exc:
            raise TeacherError(f"train.teachers: {exc}") from None
        log.info("teacher %s: done on %d faces, %d views each", path, len(faces), 2 * len(moved))
    return total / (len(models) * len(moved))


def _open_teacher(path: str | Path, threads: int):
    from edge.classifier import EmotionClassifier

    if str(path).endswith(".keras"):
        return KerasTeacher(path)
    return EmotionClassifier(path, num_threads=threads, flip_average=True)


class KerasTeacher:
    """A float `.keras` teacher with the part of EmotionClassifier's interface
    distillation uses: `input_size`, `labels` and flip-averaged `predict_faces`.

    A model trained here outputs the canonical label order (data.LABELS).
    """

    def __init__(self, path: str | Path) -> None:
        import keras

        if not Path(path).is_file():
            raise TeacherError(f"train.teachers: {path} does not exist: give a run's .keras file")
        try:
            self.model = keras.models.load_model(path, compile=False)
        except Exception as exc:  # Keras raises ValueError, OSError, zipfile errors...
            raise TeacherError(
                f"train.teachers: {path} is not a readable Keras model ({type(exc).__name__}): "
                "give a run's averaged.keras or last.keras"
            ) from None
        self.input_size = self.model.input_shape[1]
        self.labels = list(LABELS)

    def __enter__(self) -> KerasTeacher:
        return self

    def __exit__(self, *exc) -> None:
        pass

    def predict_faces(self, faces: np.ndarray) -> np.ndarray:
        """Probabilities (N, classes) for uint8 faces (N, size, size), averaged
        with their mirror images."""
        probs = keras_predict(self.model, np.concatenate([faces, faces[:, :, ::-1]]), batch=512)
        return (probs[: len(faces)] + probs[len(faces) :]) / 2


def blend_targets(labels: np.ndarray, teacher: np.ndarray | None, weight: float) -> np.ndarray:
    """(1 - weight) * labels + weight * teacher, float32 (N, classes).

    `labels` are label indices (N,), taken as one-hot, or target rows (N,
    classes) already, such as one-hot blended with the FER+ crowd's votes.
    """
    if labels.ndim == 1:
        labels = np.eye(len(LABELS), dtype=np.float32)[labels]
    if teacher is None:
        return labels.astype(np.float32)
    return ((1 - weight) * labels + weight * teacher).astype(np.float32)


def cached_teacher_probabilities(
    models: Sequence[str | Path], faces: np.ndarray, run_dir: Path, views: str = "flip"
) -> np.ndarray | None:
    """The teachers' probabilities for `faces`, computed once per run and kept in it.

    teacher_probs.json beside the array names the teachers and views it came
    from, so a config edited between runs in the same folder recomputes it.
    """
    if not models:
        return None
    path = run_dir / "teacher_probs.npy"
    source_path = path.with_suffix(".json")
    source = {"teachers": [str(model) for model in models], "views": views}
    if path.is_file():
        probs = np.load(path)
        saved = json.loads(source_path.read_text()) if source_path.is_file() else None
        # Runs from before the .json existed all used the default views.
        same_source = (saved is None and views == "flip") or saved == source
        if same_source and probs.shape == (len(faces), len(LABELS)):
            return probs
        log.warning("%s does not match the training data or teachers: recomputing", path)
    probs = teacher_probabilities(models, faces, views=views)
    run_dir.mkdir(parents=True, exist_ok=True)
    np.save(path, probs)
    source_path.write_text(json.dumps(source, indent=2) + "\n")
    return probs
