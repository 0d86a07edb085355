"""The random flip, rotation, shift and zoom of a batch, as one warp per face.

Where TensorFlow is missing (a GPU host), the batches are augmented by the
Keras backend itself, and there RandomRotation, RandomTranslation and
RandomZoom each resample the whole batch through
`keras.ops.image.affine_transform`, which the torch backend computes point by
point: 0.09 s per layer per batch of 128 on two cores, more than the training
step they feed on a GPU. Composing the four moves into one matrix per face and
resampling once with torch's `grid_sample` takes 0.002 s. The draws follow the
layers' ranges, as `train.make_augmenter` sets them, so a run augments alike
on either path.
"""

from __future__ import annotations

import keras
import numpy as np

from host_training.config import AugmentConfig


class RandomAffine:
    """Draws one affine move per face and resamples the batch once.

    Per face: mirrored with probability 1/2 (`flip`), rotated by up to
    ±`rotation_deg`, scaled by 1 ± `zoom` on each axis independently (>1 shows
    more of the frame, as RandomZoom's positive factors), shifted by up to
    ±`shift` of the side on each axis. Pixels from outside the frame repeat
    its nearest edge (the layers' `fill_mode="nearest"`).
    """

    def __init__(
        self,
        flip: bool = True,
        rotation_deg: float = 0.0,
        shift: float = 0.0,
        zoom: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.flip, self.rotation_deg, self.shift, self.zoom = flip, rotation_deg, shift, zoom
        self.rng = np.random.default_rng(seed)

    @classmethod
    def from_config(cls, augment: AugmentConfig, seed: int = 0) -> RandomAffine:
        return cls(augment.flip, augment.rotation_deg, augment.shift, augment.zoom, seed)

    @property
    def active(self) -> bool:
        return bool(self.flip or self.rotation_deg or self.shift or self.zoom)

    def matrices(self, count: int) -> np.ndarray:
        """(count, 2, 3) matrices taking a point of the output face to where it
        is read in the input, both in coordinates from -1 to 1 across the face
        (torch's `affine_grid` convention)."""
        rng = self.rng
        angle = np.deg2rad(rng.uniform(-self.rotation_deg, self.rotation_deg, count))
        scale_x = rng.uniform(1 - self.zoom, 1 + self.zoom, count)
        scale_y = rng.uniform(1 - self.zoom, 1 + self.zoom, count)
        mirror = np.where(rng.random(count) < 0.5, -1.0, 1.0) if self.flip else np.ones(count)
        cos, sin = np.cos(angle), np.sin(angle)
        out = np.zeros((count, 2, 3))
        # mirror(x) . rotate . scale; the shift is a fraction of the side, 2 units.
        out[:, 0, 0], out[:, 0, 1] = mirror * cos * scale_x, -mirror * sin * scale_y
        out[:, 1, 0], out[:, 1, 1] = sin * scale_x, cos * scale_y
        out[:, :, 2] = rng.uniform(-2 * self.shift, 2 * self.shift, (count, 2))
        return out.astype(np.float32)

    def __call__(self, images):
        """`images` (N, height, width, channels) float32, each moved at random;
        a backend tensor (see `warp`)."""
        if not self.active:
            return images
        return warp(images, self.matrices(len(images)))


def warp(images, matrices: np.ndarray):
    """Bilinear resampling of each of `images` (N, H, W, C; an array or a
    backend tensor) by its matrix (see `RandomAffine.matrices`): with torch
    under the torch backend, else with `keras.ops.image.affine_transform`.
    Both give the same faces, as a tensor left on the backend's device, so
    the batch's other layers run on it before it comes back."""
    if keras.backend.backend() == "torch":
        return warp_torch(images, matrices)
    return keras.ops.image.affine_transform(
        images,
        pixel_transforms(matrices, images.shape[2], images.shape[1]),
        interpolation="bilinear",
        fill_mode="nearest",
    )


def warp_torch(images, matrices: np.ndarray):
    """`warp` by torch's `affine_grid` and `grid_sample`, on the GPU when there
    is one (where the Keras torch backend puts its tensors too)."""
    import torch
    import torch.nn.functional as F

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    batch = torch.as_tensor(images, device=device).permute(0, 3, 1, 2)
    theta = torch.as_tensor(matrices, device=device)
    grid = F.affine_grid(theta, list(batch.shape), align_corners=False)
    moved = F.grid_sample(batch, grid, padding_mode="border", align_corners=False)
    return moved.permute(0, 2, 3, 1)


def pixel_transforms(matrices: np.ndarray, width: int, height: int) -> np.ndarray:
    """`matrices` in pixel coordinates, as the 8-number rows of
    `keras.ops.image.affine_transform` (output pixel -> input pixel)."""
    # Pixel centre x sits at (2x + 1) / width - 1 across the face.
    to_unit = np.array([[2 / width, 0, 1 / width - 1], [0, 2 / height, 1 / height - 1], [0, 0, 1]])
    full = np.zeros((len(matrices), 3, 3))
    full[:, :2], full[:, 2, 2] = matrices, 1.0
    pixel = np.linalg.inv(to_unit) @ full @ to_unit
    return np.concatenate([pixel[:, 0], pixel[:, 1], np.zeros((len(matrices), 2))], axis=1).astype(
        np.float32
    )
