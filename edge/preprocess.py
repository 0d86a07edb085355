"""Face crop: detector box -> square grayscale patch at the model's input size.

This is the one function that decides how a face is framed for the classifier.
`host_training` imports it for its data loader, so the faces the model learns on
and the faces it sees on the Pi are framed the same way and cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

# FER-2013 faces are framed a little wider than a BlazeFace box, and higher
# (more forehead, less neck). Measured on 400 PublicTest faces drawn at 240 px
# in a 640x480 frame (396 detected): the FER square is the box side grown by
# 0.100 on each side (median; IQR 0.055-0.152), centred 0.107 of the side
# above the box centre. Cropping the same way shows the model faces framed
# as in training.
DEFAULT_MARGIN = 0.10
DEFAULT_LIFT = 0.10


def to_gray(image: np.ndarray) -> np.ndarray:
    """Grayscale view of a BGR, BGRA or already gray uint8 image."""
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    raise ValueError(f"expected a gray, BGR or BGRA image, got shape {image.shape}")


def square_box(
    box: Sequence[float], margin: float = DEFAULT_MARGIN, lift: float = DEFAULT_LIFT
) -> tuple[int, int, int, int]:
    """Square (x, y, side, side) around an (x, y, w, h) box.

    The side is the longer box side grown by `margin` of it on each side, so a
    face keeps its aspect ratio (stretching a face changes its expression);
    the centre moves up by `lift` of the box side.
    """
    x, y, w, h = (float(v) for v in box)
    side = max(w, h) * (1.0 + 2.0 * margin)
    cx, cy = x + w / 2.0, y + h / 2.0 - lift * max(w, h)
    left, top = round(cx - side / 2.0), round(cy - side / 2.0)
    side_px = max(1, round(side))
    return left, top, side_px, side_px


def crop_face(
    image: np.ndarray,
    box: Sequence[float] | None = None,
    size: int = 48,
    margin: float = DEFAULT_MARGIN,
    lift: float = DEFAULT_LIFT,
) -> np.ndarray:
    """Square grayscale uint8 face patch of `size` x `size`.

    `box` is (x, y, w, h) in image pixels; None takes the whole image as the
    face (training images are already crops). Parts of the square outside the
    image are filled by replicating the border, which a CNN mistakes for
    content far less than a black band.
    """
    if box is None:
        gray = to_gray(image)
    else:
        left, top, side, _ = square_box(box, margin, lift)
        height, width = image.shape[:2]
        pad_left, pad_top = max(0, -left), max(0, -top)
        pad_right = max(0, left + side - width)
        pad_bottom = max(0, top + side - height)
        x0, y0 = max(0, left), max(0, top)
        x1, y1 = min(width, left + side), min(height, top + side)
        if x1 <= x0 or y1 <= y0:
            raise ValueError(f"face box {tuple(box)} lies outside the {width}x{height} image")
        # Only the face's pixels to gray, not the whole frame once per face.
        gray = to_gray(image[y0:y1, x0:x1])
        if pad_left or pad_top or pad_right or pad_bottom:
            gray = cv2.copyMakeBorder(
                gray, pad_top, pad_bottom, pad_left, pad_right, cv2.BORDER_REPLICATE
            )
    if gray.shape != (size, size):
        # INTER_AREA averages source pixels: no aliasing when a 300 px face
        # shrinks to 48 px, and it is what the FER crops were made with.
        gray = cv2.resize(gray, (size, size), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(gray, dtype=np.uint8)
