"""Emotion classifier: the int8 TFLite model and its sidecar JSON, loaded once.

The interpreter comes from `ai_edge_litert` (LiteRT, the maintained successor
of tflite-runtime) or, when that is what is installed, `tflite_runtime`. Input
quantization uses the model's own tensor parameters, and the labels come from
the sidecar JSON, so nothing about a particular model is hard-coded here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edge.native_log import native_lines
from edge.preprocess import DEFAULT_LIFT, DEFAULT_MARGIN, crop_face

if TYPE_CHECKING:
    from edge.config import ClassifierConfig


class ModelError(RuntimeError):
    """A model or its metadata that cannot be used; the message says how to fix it."""


def load_interpreter_class():
    """The TFLite Interpreter class of whichever runtime is installed."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            raise ModelError("no TFLite runtime installed: pip install ai-edge-litert") from None
    return Interpreter


def with_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities as softmax(log p / T): T > 1 softens, T < 1 sharpens; the
    top emotion never changes. Zero probabilities (an int8 softmax's floor)
    are held at a millionth."""
    logits = np.log(np.clip(probs, 1e-6, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def make_interpreter(model_path: Path | str, num_threads: int | None = None):
    """An interpreter for `model_path`, its tensors allocated; LiteRT's own
    stderr lines at creation become log lines (edge/native_log.py)."""
    interpreter_class = load_interpreter_class()
    with native_lines():
        interpreter = interpreter_class(model_path=str(model_path), num_threads=num_threads)
        interpreter.allocate_tensors()
    return interpreter


def runtime_name() -> str | None:
    """'ai_edge_litert' or 'tflite_runtime', whichever would be used, or None."""
    try:
        return load_interpreter_class().__module__.split(".")[0]
    except ModelError:
        return None


def read_metadata(path: Path) -> dict:
    if not path.is_file():
        raise ModelError(
            f"model metadata {path} not found: it ships beside the model "
            "(host_training.quantize writes both)"
        )
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"model metadata {path} is not valid JSON ({exc})") from None
    labels = meta.get("labels") if isinstance(meta, dict) else None
    if not (isinstance(labels, list) and labels and all(isinstance(x, str) for x in labels)):
        raise ModelError(f"model metadata {path} has no 'labels' list of class names")
    return meta


class EmotionClassifier:
    """Classifies face crops; all faces of a frame go through in one call.

    Usable as a context manager. The interpreter is created once; the batch
    dimension is resized only when the number of faces changes.

    With `flip_average`, each face is also classified mirrored and the two
    predictions are averaged: faces are near-symmetric, so the mirror is a
    second opinion the model was trained on (flip augmentation). It costs a
    second pass per face, in the same batch.
    """

    MAX_BATCH = 64

    def __init__(
        self,
        model_path: Path | str,
        num_threads: int | None = None,
        metadata_path: Path | str | None = None,
        flip_average: bool = False,
    ) -> None:
        self.flip_average = flip_average
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise ModelError(
                f"model {self.model_path} not found: pass --model, or restore "
                "models/emotion_int8.tflite from the repository"
            )
        meta_path = Path(metadata_path) if metadata_path else self.model_path.with_suffix(".json")
        self.metadata = read_metadata(meta_path)
        self.labels: tuple[str, ...] = tuple(self.metadata["labels"])
        # A temperature fitted against the FER+ crowd on held-out faces, where
        # one helps (docs/training.md, "Confidences"); the shipped model has none.
        self.temperature = float(self.metadata.get("calibration", {}).get("temperature", 1.0))
        framing = self.metadata.get("preprocessing", {})
        self.margin = float(framing.get("margin", DEFAULT_MARGIN))
        self.lift = float(framing.get("lift", DEFAULT_LIFT))
        try:
            self._interpreter = make_interpreter(self.model_path, num_threads)
        except (ValueError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(
                f"model {self.model_path} cannot be loaded ({first}): the file is corrupt "
                "or not a TFLite model; restore it from the repository"
            ) from None
        inp = self._interpreter.get_input_details()[0]
        out = self._interpreter.get_output_details()[0]
        self._input_index, self._output_index = inp["index"], out["index"]
        if len(inp["shape"]) != 4 or inp["shape"][3] != 1:
            raise ModelError(
                f"model {self.model_path} takes input shape {list(inp['shape'])}; "
                "expected (batch, height, width, 1) grayscale"
            )
        self.input_size = int(inp["shape"][1])
        self._input_dtype = inp["dtype"]
        self._in_scale, self._in_zero = inp["quantization"]
        self._out_scale, self._out_zero = out["quantization"]
        if np.issubdtype(self._input_dtype, np.integer) and not self._in_scale:
            raise ModelError(f"model {self.model_path} has an integer input without a scale")
        num_outputs = int(out["shape"][-1])
        if num_outputs != len(self.labels):
            raise ModelError(
                f"model {self.model_path} has {num_outputs} outputs but its metadata lists "
                f"{len(self.labels)} labels: ship the JSON that belongs to this model"
            )
        self._batch = int(inp["shape"][0])
        self._resizable = self._can_resize(inp)

    @classmethod
    def from_config(cls, config: ClassifierConfig) -> EmotionClassifier | EnsembleClassifier:
        """The classifier a run's `[classifier]` section describes: one model,
        or the ensemble `models` names."""
        members = [
            cls(path, config.num_threads, flip_average=config.flip_average)
            for path in config.model_paths
        ]
        return members[0] if len(members) == 1 else EnsembleClassifier(members)

    @property
    def name(self) -> str:
        return self.model_path.name

    @staticmethod
    def _can_resize(inp: dict) -> bool:
        signature = inp.get("shape_signature")
        return signature is not None and int(signature[0]) == -1

    @property
    def quantized(self) -> bool:
        return bool(np.issubdtype(self._input_dtype, np.integer))

    def _set_batch(self, n: int) -> None:
        if n != self._batch:
            size = self.input_size
            self._interpreter.resize_tensor_input(self._input_index, [n, size, size, 1])
            self._interpreter.allocate_tensors()
            self._batch = n

    def _quantize(self, faces: np.ndarray) -> np.ndarray:
        x = faces.astype(np.float32)[..., None]
        if not self.quantized:
            return x.astype(self._input_dtype)
        info = np.iinfo(self._input_dtype)
        q = np.round(x / self._in_scale + self._in_zero)
        return np.clip(q, info.min, info.max).astype(self._input_dtype)

    def _dequantize(self, raw: np.ndarray) -> np.ndarray:
        probs = raw.astype(np.float32)
        if self._out_scale:
            probs = (probs - self._out_zero) * self._out_scale
        # int8 softmax outputs sum to 1 only within a quantization step.
        total = probs.sum(axis=1, keepdims=True)
        return probs / np.where(total > 0, total, 1.0)

    def _invoke(self, batch: np.ndarray) -> np.ndarray:
        self._interpreter.set_tensor(self._input_index, batch)
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output_index).copy()

    def predict_faces(self, faces: np.ndarray) -> np.ndarray:
        """Probabilities (N, classes) for uint8 face crops (N, size, size)."""
        faces = np.asarray(faces)
        if faces.ndim != 3 or faces.shape[1:] != (self.input_size, self.input_size):
            raise ValueError(
                f"expected faces of shape (N, {self.input_size}, {self.input_size}), "
                f"got {faces.shape}"
            )
        if len(faces) == 0:
            return np.zeros((0, len(self.labels)), np.float32)
        if self.flip_average:
            probs = self._predict(np.concatenate([faces, faces[:, :, ::-1]]))
            probs = (probs[: len(faces)] + probs[len(faces) :]) / 2
        else:
            probs = self._predict(faces)
        if self.temperature != 1.0:
            probs = with_temperature(probs, self.temperature)
        return probs

    def _predict(self, faces: np.ndarray) -> np.ndarray:
        x = self._quantize(faces)
        if not self._resizable:
            self._set_batch(1)
            raw = np.concatenate([self._invoke(x[i : i + 1]) for i in range(len(x))])
            return self._dequantize(raw)
        chunks = []
        for start in range(0, len(x), self.MAX_BATCH):
            chunk = x[start : start + self.MAX_BATCH]
            self._set_batch(len(chunk))
            chunks.append(self._invoke(chunk))
        return self._dequantize(np.concatenate(chunks))

    def crop(self, image: np.ndarray, boxes: Sequence[Sequence[float]]) -> np.ndarray:
        """Face crops of `boxes` in `image`, framed as the model was trained."""
        size = self.input_size
        if not len(boxes):
            return np.zeros((0, size, size), np.uint8)
        return np.stack([crop_face(image, box, size, self.margin, self.lift) for box in boxes])

    def classify(self, image: np.ndarray, boxes: Sequence[Sequence[float]]) -> np.ndarray:
        """Probabilities for each (x, y, w, h) box in a BGR or gray image."""
        return self.predict_faces(self.crop(image, boxes))

    def close(self) -> None:
        self._interpreter = None

    def __enter__(self) -> EmotionClassifier:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class EnsembleClassifier:
    """Several emotion models as one: each classifies the same crops (with its
    own flip averaging and temperature) and their probabilities are averaged.

    The members must agree on the labels, the input size and the framing, so
    one crop serves all and every probability means the same emotion.
    """

    def __init__(self, members: Sequence[EmotionClassifier]) -> None:
        first = members[0]
        for other in members[1:]:
            same = (other.labels, other.input_size, other.margin, other.lift) == (
                first.labels,
                first.input_size,
                first.margin,
                first.lift,
            )
            if not same:
                raise ModelError(
                    f"models {first.model_path.name} and {other.model_path.name} differ in "
                    "labels, input size or framing: an ensemble needs models trained alike"
                )
        self.members = list(members)
        self.labels = first.labels
        self.input_size = first.input_size
        self.model_path = first.model_path

    @property
    def name(self) -> str:
        return " + ".join(m.name for m in self.members)

    @property
    def quantized(self) -> bool:
        return all(m.quantized for m in self.members)

    def crop(self, image: np.ndarray, boxes: Sequence[Sequence[float]]) -> np.ndarray:
        return self.members[0].crop(image, boxes)

    def predict_faces(self, faces: np.ndarray) -> np.ndarray:
        return np.mean([m.predict_faces(faces) for m in self.members], axis=0)

    def classify(self, image: np.ndarray, boxes: Sequence[Sequence[float]]) -> np.ndarray:
        return self.predict_faces(self.crop(image, boxes))

    def close(self) -> None:
        for member in self.members:
            member.close()

    def __enter__(self) -> EnsembleClassifier:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
