"""Weight averaging over the last epochs of a run (stochastic weight averaging).

Late in a schedule the weights wander around a wide region of low loss, and
the epoch that happens to score best on validation is partly luck: picking it
by validation accuracy tunes to the validation split. Averaging the weights of
the last epochs lands nearer the middle of that region, which generalizes
better (Izmailov et al., "Averaging Weights Leads to Wider Optima", 2018) and
needs no choice made on validation. The averaged weights never ran through
the network during training, so batch-norm statistics are recomputed for
them with one pass over the training batches.

The running sum lives in the run folder and is saved each epoch, so a run
that is interrupted and resumed averages the same epochs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

log = logging.getLogger("host_training.averaging")

SUM_FILE = "average_sum.npz"  # the running sum, in the run folder
AVERAGED_FILE = "averaged.keras"  # the averaged model, what quantize converts


class WeightAverage:
    """The running sum of a model's weights over chosen epochs, kept on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sums: list[np.ndarray] = []
        self.epochs: list[int] = []
        if path.is_file():
            with np.load(path) as saved:
                self.epochs = [int(e) for e in saved["epochs"]]
                self.sums = [saved[f"w{i}"] for i in range(len(saved.files) - 1)]

    def add(self, model, epoch: int) -> None:
        """Add `model`'s weights after `epoch` (1-based); an epoch already in is skipped.

        Skipping keeps the count right when an epoch is redone after a crash
        between saving this sum and saving the run state.
        """
        if epoch in self.epochs:
            return
        weights = [np.asarray(w, np.float64) for w in model.get_weights()]
        self.sums = (
            weights if not self.sums else [s + w for s, w in zip(self.sums, weights, strict=True)]
        )
        self.epochs.append(epoch)
        tmp = self.path.with_name(self.path.stem + ".tmp.npz")
        np.savez(tmp, epochs=np.array(self.epochs), **{f"w{i}": s for i, s in enumerate(self.sums)})
        os.replace(tmp, self.path)

    def apply(self, model, batches: Iterable[np.ndarray]) -> None:
        """Give `model` the averaged weights and batch-norm statistics to match."""
        if not self.epochs:
            raise ValueError("no epochs averaged yet")
        model.set_weights([(s / len(self.epochs)).astype(np.float32) for s in self.sums])
        recompute_batch_norm(model, batches)


def batch_norm_layers(model) -> list:
    """Every BatchNormalization layer in `model`, nested models included."""
    import keras

    found = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer)
        elif hasattr(layer, "layers"):
            found.extend(batch_norm_layers(layer))
    return found


def recompute_batch_norm(model, batches: Iterable[np.ndarray]) -> int:
    """Set each batch-norm layer's moving statistics to their mean over `batches`.

    A forward pass in training mode updates the moving statistics with
    `momentum`; setting it to k/(k+1) for the k-th batch makes the result the
    plain mean over all batches instead of a decayed one. Returns the number
    of batches seen.
    """
    layers = batch_norm_layers(model)
    momenta = [layer.momentum for layer in layers]
    seen = 0
    try:
        for k, x in enumerate(batches):
            for layer in layers:
                layer.momentum = k / (k + 1)
            model(x, training=True)
            seen += 1
    finally:
        for layer, momentum in zip(layers, momenta, strict=True):
            layer.momentum = momentum
    log.info("batch-norm statistics recomputed over %d batches", seen)
    return seen
