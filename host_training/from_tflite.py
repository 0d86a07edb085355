"""Float Keras weights recovered from an int8 TFLite model of the same architecture.

A run folder (its checkpoints) stays on the machine that trained it, while the
shipped model and the distillation teachers live in git as int8 TFLite files.
Recovering float weights from those files lets a fine-tuning run
(`train.init_from = "models/emotion_int8.tflite"`) start from any committed
model on any machine. Per-channel int8 weights lose little: recovered this
way, cnn60 scores 66.20 % on PublicTest in float, against 66.29 % at int8.

The converter folded each batch-norm into the conv or dense before it (kernel
scaled per channel, a bias added), so the statistics it had are gone. They are
recomputed: with `m` and `v` the per-channel mean and variance of the folded
layer's output over training faces, the batch-norm gets moving mean `m`,
moving variance `v`, scale `sqrt(v + eps)` and offset `bias + m`. It then
passes the folded output through (plus the bias) both at inference, exactly,
and in training mode, where it normalizes by the batch's own statistics,
which are close to `m` and `v`. So training resumes from the same function
rather than from a network whose normalization jumped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# TFLite op -> the Keras layer type whose weights it holds, in graph order.
# Flat models only (architecture "cnn"): MobileNetV2's backbone is a nested
# model with depthwise convs, which this does not map.
_WEIGHT_OPS = {"CONV_2D": "Conv2D", "FULLY_CONNECTED": "Dense"}
_FIT_FIX = "use the architecture and widths of the model that was converted"


class TFLiteWeightsError(ValueError):
    """The TFLite model cannot give its weights to this Keras model."""


def read_tflite_weights(path: Path) -> list[tuple[str, np.ndarray, np.ndarray | None]]:
    """(op name, float kernel in Keras layout, float bias or None) per weighted op, in order."""
    from edge.classifier import load_interpreter_class

    interpreter_class = load_interpreter_class()
    try:
        interpreter = interpreter_class(model_path=str(path))
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise TFLiteWeightsError(f"{path}: not a readable TFLite model ({exc})") from None
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}

    def dequantized(index: int) -> np.ndarray:
        detail = tensors[index]
        raw = interpreter.get_tensor(index)
        if not np.issubdtype(raw.dtype, np.integer):
            return raw.astype(np.float32)
        q = detail["quantization_parameters"]
        scales, zero_points = q["scales"], q["zero_points"]
        if len(scales) == 0:
            raise TFLiteWeightsError(f"{path}: tensor {detail['name']} has no quantization scale")
        shape = [1] * raw.ndim
        shape[q["quantized_dimension"]] = len(scales)
        values = raw.astype(np.float64) - zero_points.reshape(shape)
        return (values * scales.reshape(shape)).astype(np.float32)

    found = []
    # The interpreter lists its ops only through this underscored method (the
    # same in ai-edge-litert and tflite_runtime); the graph order is what maps
    # ops to layers.
    for op in interpreter._get_ops_details():
        kind = op["op_name"]
        if kind not in _WEIGHT_OPS:
            continue
        inputs = [int(i) for i in op["inputs"]]
        kernel = dequantized(inputs[1])
        bias = dequantized(inputs[2]) if len(inputs) > 2 and inputs[2] >= 0 else None
        # TFLite conv (out, kh, kw, in) -> Keras (kh, kw, in, out); dense (out, in) -> (in, out)
        kernel = kernel.transpose(1, 2, 3, 0) if kind == "CONV_2D" else kernel.T
        found.append((kind, kernel, bias))
    return found


def _following_batch_norm(model, layer):
    """The BatchNormalization layer fed by `layer`'s output, if any."""
    import keras

    for other in model.layers:
        if isinstance(other, keras.layers.BatchNormalization) and other.input is layer.output:
            return other
    return None


def load_tflite_weights(
    model, path: Path, faces: np.ndarray, batch: int = 256, deepen: bool = False
) -> None:
    """Give `model` the weights of the int8 TFLite model at `path`.

    `faces` (N, size, size, 1), raw 0..255 training faces, are what the
    batch-norm statistics are recomputed on (a few thousand are plenty).
    With `deepen`, `model` may have more convs than the file: a square conv
    (as many channels out as in) that the file's next op does not fit starts
    as the identity, its batch-norm passing through (Net2DeeperNet, Chen et
    al. 2016). It follows a ReLU, so the ReLU after it passes too, and the
    deeper model starts from the file's function. Layers are matched in
    graph order, so the extra convs must not have the shape of the conv that
    follows them (true whenever the next block is wider).
    Raises TFLiteWeightsError naming the first layer that does not fit.
    """
    weighted = [layer for layer in model.layers if type(layer).__name__ in _WEIGHT_OPS.values()]
    ops = read_tflite_weights(path)
    if not deepen and len(ops) != len(weighted):
        deeper = len(weighted) > len(ops)
        hint = " (or train.init_deepen = true, for extra convs)" if deeper else ""
        raise TFLiteWeightsError(
            f"{path} has {len(ops)} conv/dense layers, the [model] of this config "
            f"{len(weighted)}: {_FIT_FIX}{hint}"
        )
    folded = []  # (layer, its batch-norm, folded bias): statistics still to recompute
    pending = list(ops)
    for layer in weighted:
        norm = _following_batch_norm(model, layer)
        if pending and _fits(layer, *pending[0][:2]):
            _, kernel, bias = pending.pop(0)
        elif deepen and _can_be_identity(layer, norm):
            kernel = np.zeros(layer.kernel.shape, np.float32)
            kh, kw, channels, _ = kernel.shape
            kernel[kh // 2, kw // 2] = np.eye(channels, dtype=np.float32)
            bias = None
        else:
            op = f"{pending[0][0]} with kernel {pending[0][1].shape}" if pending else "no op left"
            raise TFLiteWeightsError(
                f"{path}: {op} does not fit layer {layer.name} "
                f"{tuple(layer.kernel.shape)}: {_FIT_FIX}"
            )
        layer.kernel.assign(kernel)
        bias = np.zeros(kernel.shape[-1], np.float32) if bias is None else bias
        if layer.use_bias:
            layer.bias.assign(bias)
        elif norm is not None:
            folded.append((layer, norm, bias))
        elif np.any(bias):
            raise TFLiteWeightsError(
                f"{path}: {layer.name} has no bias and no batch-norm to hold the model's bias"
            )
    if pending:
        raise TFLiteWeightsError(
            f"{path} has {len(ops)} conv/dense layers, {len(pending)} more than the [model] "
            f"of this config takes: {_FIT_FIX}"
        )
    if folded:
        _unfold_batch_norm(model, folded, faces, batch)


def _fits(layer, kind: str, kernel: np.ndarray) -> bool:
    """The TFLite op `kind` with `kernel` (Keras layout) can give `layer` its weights."""
    return type(layer).__name__ == _WEIGHT_OPS[kind] and tuple(layer.kernel.shape) == kernel.shape


def _can_be_identity(layer, norm) -> bool:
    """A conv that can start as the identity: square, odd kernel, no bias, a batch-norm after."""
    if type(layer).__name__ != "Conv2D":
        return False
    kh, kw, c_in, c_out = layer.kernel.shape
    return c_in == c_out and kh % 2 == 1 and kw % 2 == 1 and not layer.use_bias and norm is not None


def _unfold_batch_norm(model, folded, faces: np.ndarray, batch: int) -> None:
    """Set each batch-norm so it passes its folded layer's output (plus bias) through."""
    import keras

    # Pass-through first (moving mean 0, variance 1 - eps, scale 1): the network
    # now computes the TFLite model's function, so the probe sees its activations.
    for _, norm, bias in folded:
        ones = np.ones_like(bias)
        norm.set_weights([ones, bias, np.zeros_like(bias), ones - norm.epsilon])
    probe = keras.Model(model.input, [layer.output for layer, _, _ in folded])
    sums = [np.zeros(bias.shape, np.float64) for _, _, bias in folded]
    squares = [np.zeros(bias.shape, np.float64) for _, _, bias in folded]
    counts = [0] * len(folded)
    for start in range(0, len(faces), batch):
        outputs = probe(faces[start : start + batch].astype(np.float32), training=False)
        for i, out in enumerate(outputs if isinstance(outputs, list | tuple) else [outputs]):
            values = keras.ops.convert_to_numpy(out).astype(np.float64)
            values = values.reshape(-1, values.shape[-1])
            sums[i] += values.sum(axis=0)
            squares[i] += (values**2).sum(axis=0)
            counts[i] += len(values)
    for (_, norm, bias), total, square, n in zip(folded, sums, squares, counts, strict=True):
        mean = total / n
        var = np.maximum(square / n - mean**2, 0.0)
        scale = np.sqrt(var + norm.epsilon)
        norm.set_weights([w.astype(np.float32) for w in (scale, bias + mean, mean, var)])
