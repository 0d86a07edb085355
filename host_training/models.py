"""The two emotion classifiers: a small VGG-style CNN (default) and a MobileNetV2.

Both take the face as raw grayscale intensities 0..255 of shape (size, size, 1)
and normalize inside the model. That is the edge contract: the Pi feeds the
crop as it is, and the int8 input quantization (scale 1, zero point -128)
represents those values exactly. Only ops that quantize cleanly to int8 and
run on XNNPACK are used (conv, depthwise conv, batch-norm folded into conv,
ReLU/ReLU6, max-pool, mean, dense, softmax). Keras 3, backend-neutral.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import keras
from keras import layers


def build_cnn(
    input_size: int = 48,
    num_classes: int = 7,
    widths: Sequence[int] = (32, 64, 128, 256),
    convs_per_block: int | Sequence[int] = 2,
    dense: int = 128,
    dropout: float = 0.3,
    spatial_dropout: float = 0.0,
    weight_decay: float = 0.0,
    bn_momentum: float = 0.9,
) -> keras.Model:
    """VGG-style blocks of (conv-BN-ReLU) x n + max-pool, global pooling, small head.

    Global average pooling instead of a flatten keeps the head tiny, which is
    what keeps the int8 file well under 1.5 MB. Batch-norm momentum 0.9
    rather than Keras' 0.99: with a short schedule the inference statistics
    must follow the weights within an epoch (0.99 left validation accuracy
    at chance after a few hundred steps, measured).

    `convs_per_block` is one count for every block or one per block: the
    deeper blocks work at 12 and 6 px, where a conv costs a quarter or a
    sixteenth of one at 48 px, so depth is cheapest there.
    """
    if isinstance(convs_per_block, int):
        convs_per_block = [convs_per_block] * len(widths)
    if len(convs_per_block) != len(widths):
        raise ValueError(
            f"convs_per_block has {len(convs_per_block)} counts for {len(widths)} blocks: "
            "give one count, or one per entry of widths"
        )
    reg = keras.regularizers.l2(weight_decay) if weight_decay else None
    inputs = keras.Input((input_size, input_size, 1), name="face")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="normalize")(inputs)
    for block, (width, convs) in enumerate(zip(widths, convs_per_block, strict=True), start=1):
        for conv in range(1, convs + 1):
            x = layers.Conv2D(
                width,
                3,
                padding="same",
                use_bias=False,
                kernel_regularizer=reg,
                name=f"block{block}_conv{conv}",
            )(x)
            x = layers.BatchNormalization(momentum=bn_momentum, name=f"block{block}_bn{conv}")(x)
            x = layers.ReLU(name=f"block{block}_relu{conv}")(x)
        x = layers.MaxPooling2D(2, name=f"block{block}_pool")(x)
        if spatial_dropout:
            x = layers.SpatialDropout2D(spatial_dropout, name=f"block{block}_drop")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(dropout, name="head_drop1")(x)
    x = layers.Dense(dense, use_bias=False, kernel_regularizer=reg, name="head_dense")(x)
    x = layers.BatchNormalization(momentum=bn_momentum, name="head_bn")(x)
    x = layers.ReLU(name="head_relu")(x)
    x = layers.Dropout(dropout, name="head_drop2")(x)
    x = layers.Dense(num_classes, name="logits")(x)
    outputs = layers.Softmax(name="probs", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="emotion_cnn")


def build_mobilenet_v2(
    input_size: int = 48,
    num_classes: int = 7,
    alpha: float = 0.5,
    backbone_size: int = 96,
    dropout: float = 0.3,
    weights: str | None = None,
) -> keras.Model:
    """MobileNetV2 trained from scratch (no ImageNet download is possible here).

    The 48 px face is upscaled to `backbone_size` inside the model, because the
    backbone's five stride-2 stages would shrink 48 px to 2 px. `weights` may
    name a local ImageNet weights file for the backbone (3-channel, so the gray
    face is repeated to three channels).
    """
    if weights is not None and not Path(weights).is_file():
        raise FileNotFoundError(f"MobileNetV2 weights file {weights} not found")
    inputs = keras.Input((input_size, input_size, 1), name="face")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="normalize")(inputs)
    if backbone_size != input_size:
        x = layers.Resizing(backbone_size, backbone_size, name="upscale")(x)
    x = layers.Concatenate(name="to_rgb")([x, x, x])
    backbone = keras.applications.MobileNetV2(
        input_shape=(backbone_size, backbone_size, 3),
        alpha=alpha,
        include_top=False,
        weights=weights,
        pooling="avg",
    )
    x = backbone(x)
    x = layers.Dropout(dropout, name="head_drop")(x)
    x = layers.Dense(num_classes, name="logits")(x)
    outputs = layers.Softmax(name="probs", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="emotion_mobilenet_v2")


ARCHITECTURES = {"cnn": build_cnn, "mobilenet_v2": build_mobilenet_v2}


def build_model(name: str, **kwargs) -> keras.Model:
    """Build an architecture by name; the error lists the valid names."""
    try:
        builder = ARCHITECTURES[name]
    except KeyError:
        raise ValueError(
            f"unknown architecture {name!r}; choose one of {', '.join(ARCHITECTURES)}"
        ) from None
    return builder(**kwargs)


def count_macs(model: keras.Model) -> int:
    """Multiply-accumulates of one forward pass (conv, depthwise conv, dense).

    Counted from the layer shapes, so it needs no profiler and matches what the
    int8 kernels do; batch-norm is folded into the conv by the converter.
    """
    total = 0
    for layer in _flat_layers(model):
        if isinstance(layer, layers.DepthwiseConv2D):
            kh, kw = layer.kernel_size
            _, h, w, c = layer.output.shape
            total += kh * kw * h * w * c
        elif isinstance(layer, layers.Conv2D):
            kh, kw = layer.kernel_size
            _, h, w, c_out = layer.output.shape
            c_in = layer.input.shape[-1]
            total += kh * kw * c_in * h * w * c_out
        elif isinstance(layer, layers.Dense):
            total += layer.input.shape[-1] * layer.units
    return int(total)


def _flat_layers(model: keras.Model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _flat_layers(layer)
        else:
            yield layer
