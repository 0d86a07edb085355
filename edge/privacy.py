"""Faces made unrecognisable in every image that leaves the process, and
parts of the view not to look at.

`[privacy] faces = "blur"` reduces each face box (grown by a sixth on every
side, so hair and jaw go too) to 8 samples across and smooths it back, so the
picture keeps where a face is and the labels drawn on it, not who it is;
`"hide"` fills it. It fails closed: wherever a face may be though none is
labelled there (`Result.hidden`: a track the detector missed on this frame,
where it was and where it was going; a far find waiting for its second look;
a detection scoring above UNSURE_SCORE but below the labelling threshold; a
face in a mask; with the far search on, a change in the picture no search
has looked at yet, edge/detectors/far_search.py) is obscured too, and a
stream's first frames are obscured whole until the detector has searched
all of the view (`Result.concealed`).
`masks` are rectangles in frame fractions: a face whose centre falls in one
is neither analysed nor reported (edge.analysis), it is still obscured (the
part outside the mask is a face too), and the rectangle is blacked out in
every image (the stream, recordings, the screen). Analysis itself sees the
camera's picture: events and MQTT carry labels, never pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

GROW = 1 / 6  # of the box's side, on each side
# Where a face is obscured though not labelled: anonymisers obscure at a much
# lower detector score than they label at (deface's default threshold is 0.2).
UNSURE_SCORE = 0.25
COAST_GROW = 0.15  # a missed face's box grows by this much of its side per missed frame
BLOCKS = 8  # a blurred face is this many blocks across: a position, not a person
HIDE_COLOUR = (48, 48, 48)

Mask = Sequence[float]  # (x, y, w, h), fractions of the frame


def mask_pixels(mask: Mask, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """A mask as (x0, y0, x1, y1) pixels of a `size` (width, height) frame."""
    width, height = size
    x, y, w, h = mask
    return (round(x * width), round(y * height), round((x + w) * width), round((y + h) * height))


def coasting_box(
    box: Sequence[int], velocity: Sequence[float], missed: int, size: tuple[int, int]
) -> tuple[int, int, int, int]:
    """Where a face missed for `missed` frames can be: its last box and the
    same box moved on at its last speed, together, grown by COAST_GROW of its
    side per missed frame (the detector blinks most when a face turns or
    moves), clipped to a `size` (width, height) frame."""
    x, y, w, h = box
    dx, dy = velocity[0] * missed, velocity[1] * missed
    grow_x, grow_y = w * COAST_GROW * missed, h * COAST_GROW * missed
    x0 = max(0, round(min(x, x + dx) - grow_x))
    y0 = max(0, round(min(y, y + dy) - grow_y))
    x1 = min(size[0], round(max(x + w, x + w + dx) + grow_x))
    y1 = min(size[1], round(max(y + h, y + h + dy) + grow_y))
    return (x0, y0, max(0, x1 - x0), max(0, y1 - y0))


def edge_band(size: tuple[int, int], share: float) -> list[tuple[int, int, int, int]]:
    """The boxes along the two sides of a `size` (width, height) frame's longer
    axis, each `share` of that side wide (`[privacy] edge_band`): left and
    right of a landscape frame, top and bottom of a portrait one. None for a
    share of 0.

    BlazeFace finds a face by its centre (an anchor on its grid); a face more
    than half outside the frame has its centre outside, and is found at best
    now and then; the letterbox that squares the frame gives it anchors a
    little past the shorter axis's edges, none past the longer's. A band a
    tenth of the width wide covers what shows of any face up to a fifth of
    the width wide, however far out it is (docs/privacy.md)."""
    width, height = size
    if share <= 0:
        return []
    if width >= height:
        side = max(1, round(share * width))
        return [(0, 0, side, height), (width - side, 0, side, height)]
    side = max(1, round(share * height))
    return [(0, 0, width, side), (0, height - side, width, side)]


def in_masks(box: Sequence[int], masks: Sequence[Mask], size: tuple[int, int]) -> bool:
    """Whether a face box's centre falls inside any mask."""
    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    for mask in masks:
        x0, y0, x1, y1 = mask_pixels(mask, size)
        if x0 <= cx < x1 and y0 <= cy < y1:
            return True
    return False


def black_out(image: np.ndarray, masks: Sequence[Mask]) -> None:
    """Every mask painted black, in place."""
    size = (image.shape[1], image.shape[0])
    for mask in masks:
        x0, y0, x1, y1 = mask_pixels(mask, size)
        image[max(0, y0) : y1, max(0, x0) : x1] = 0


def conceal(image: np.ndarray, mode: str) -> None:
    """The whole picture obscured, in place: nothing in it has been searched
    yet. One frame-wide face box: as coarse as any face's blur."""
    height, width = image.shape[:2]
    obscure(image, [(0, 0, width, height)], mode)


def obscure(image: np.ndarray, boxes: Sequence[Sequence[int]], mode: str) -> None:
    """Each face box, grown, pixelated ("blur") or filled ("hide"), in place.

    The largest first: where boxes overlap, each smaller one is smoothed last
    at its own face's scale, so the seam a larger box's edge leaves across a
    face is smoothed away with it (a seam is detail of its own)."""
    if mode == "show":
        return
    height, width = image.shape[:2]
    for x, y, w, h in sorted(boxes, key=lambda box: -box[2] * box[3]):
        grow_x, grow_y = round(w * GROW), round(h * GROW)
        x0, y0 = max(0, x - grow_x), max(0, y - grow_y)
        x1, y1 = min(width, x + w + grow_x), min(height, y + h + grow_y)
        if x1 <= x0 or y1 <= y0:
            continue
        region = image[y0:y1, x0:x1]
        if mode == "hide":
            region[:] = HIDE_COLOUR if region.ndim == 3 else HIDE_COLOUR[0]
            continue
        side = max(1, round(max(x1 - x0, y1 - y0) / BLOCKS))
        small = cv2.resize(
            region,
            (max(1, (x1 - x0) // side), max(1, (y1 - y0) // side)),
            interpolation=cv2.INTER_AREA,
        )
        # Smooth, not blocky: block edges would be new detail of their own.
        region[:] = cv2.resize(small, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
