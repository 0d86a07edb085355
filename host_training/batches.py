"""Training batches for `keras.Model.fit`: augmented by tf.data one epoch at a
time where TensorFlow is installed (the workstation), by the Keras backend
itself where it is not (a GPU host with the torch or JAX backend)."""

from __future__ import annotations

import keras
import numpy as np


class EpochBatches(keras.utils.PyDataset):
    """One epoch of a tf.data pipeline, materialized in NumPy before it starts.

    Feeding `fit` a tf.data pipeline directly made each step 1.6x slower
    under the torch backend here (1.37 s against 0.84 s per batch of 128, both
    libraries fighting over two cores); augmenting a whole epoch in tf.data
    first takes about 7 s and leaves the cores to the training step.
    """

    def __init__(self, dataset) -> None:
        super().__init__()
        self.dataset = dataset
        self.steps = int(dataset.cardinality())
        self._batches: list[tuple[np.ndarray, np.ndarray]] | None = None

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if self._batches is None:
            self._batches = [(x.numpy(), y.numpy()) for x, y in self.dataset]
        return self._batches[index]

    def on_epoch_end(self) -> None:
        self._batches = None


class BackendBatches(keras.utils.PyDataset):
    """Training batches shuffled in NumPy and augmented on the backend (on
    its GPU when it has one).

    For a host without TensorFlow, so a run can go on a GPU machine whose
    image has PyTorch or JAX but no TensorFlow. `warp` (a warp.RandomAffine)
    moves each face, then `augment` runs the remaining Keras layers
    (`train.make_augmenter(config, geometric=False)`): the same augmentation
    as the tf.data path, with other random draws.
    """

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        batch_size: int,
        augment,
        mixup: float = 0.0,
        seed: int = 0,
        warp=None,
    ) -> None:
        super().__init__()
        self.x, self.y, self.batch_size = x, y, batch_size
        self.augment, self.mixup, self.warp = augment, mixup, warp
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(x))

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        picked = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        images = keras.ops.convert_to_tensor(self.x[picked])  # one trip to the device
        if self.warp is not None:
            images = self.warp(images)
        images = keras.ops.convert_to_numpy(self.augment(images))
        targets = self.y[picked]
        if self.mixup:  # as train.mix_batch does in tf.data
            lam = self.rng.beta(self.mixup, self.mixup)
            lam = max(lam, 1.0 - lam)
            other = self.rng.permutation(len(picked))
            images = lam * images + (1.0 - lam) * images[other]
            targets = lam * targets + (1.0 - lam) * targets[other]
        return images.astype(np.float32), targets.astype(np.float32)

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(len(self.x))
