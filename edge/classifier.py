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
        framing = self.metadata.get("preprocessing", {})
        self.margin = float(framing.get("margin", DEFAULT_MARGIN))
        self.lift = float(framing.get("lift", DEFAULT_LIFT))
        interpreter_class = load_interpreter_class()
        try:
            self._interpreter = interpreter_class(
                model_path=str(self.model_path), num_threads=num_threads
            )
            self._interpreter.allocate_tensors()
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
    def from_config(cls, config: ClassifierConfig) -> EmotionClassifier:
        """The classifier a run's `[classifier]` section describes."""
        return cls(config.model, config.num_threads, flip_average=config.flip_average)

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
            return (probs[: len(faces)] + probs[len(faces) :]) / 2
        return self._predict(faces)

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
