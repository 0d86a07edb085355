"""Where and when to look for far faces: the tile pass's schedule, paid for
only where the scene changed.

A far face is out of the whole-frame pass's reach, so the detector looks for
it on tiles of the frame, one tile per turn (`edge/detectors/mediapipe.py`).
Looking at every tile in turn costs the same whether or not anyone stands
far away. This module decides which tile a turn looks at, as Frigate runs its
detector only where motion was seen:

- A person who walks into view changes the pixels where they appear. The
  frame is compared with the previous one on a small grey view (80 px wide),
  and each tile is searched only when something changed in it since it was
  last searched (`MotionMap`).
- Changes behind a near face do not count: the head and shoulders of someone
  close to the camera hide anyone standing behind them, and they move all
  the time (`behind`). A tile that only a near person moved in is skipped.
- Every tile is still searched at least every `SWEEP_FRAMES` frames, so a far
  face that arrived unseen (while the search was busy elsewhere) is found
  within seconds anyway; except a tile the near faces hide almost entirely
  (`HIDDEN`), where no one could be seen.

With privacy on, what changed and has not been searched since is where a
face may have arrived unseen, and it is obscured until a search has looked
there on an earlier frame (`MotionMap.unsearched`): a face walking in is
blurred from the frame it appears, not from the frame its tile's turn comes,
and a search that misses it on the frame it arrives does not un-hide it
there (the search's finds, unsure ones too, get their second look on the
next frame).

A tile's finds are candidates, not faces (`Candidates`): a candidate becomes
a face only when the follow-up search around it (the short-range model on a
window four faces wide, another model on another view) finds it again on a
following frame, and one inside or touching a near face's head is dropped at
once. A box the full-range model sees once in someone's hair never becomes a
track.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

MOTION_WIDTH = 80
"""Width of the grey view frames are compared on (its height keeps the aspect)."""

CHANGE_LEVEL = 12
"""A pixel of the small view changed when it moves by more than this (0-255):
above a camera's noise after the 8x area average, below a face walking in."""

MIN_CHANGED = 3
"""Changed pixels of the small view (each 8x8 px of a 640 px frame) that make
a tile worth a search: a 32 px far face covers 16."""

SWEEP_FRAMES = 150
"""Every tile is searched at least this often (5 s at 30 fps), change or not."""

HIDDEN = 0.9
"""Share of a tile behind near faces above which the sweep passes it by."""

CONFIRM_TRIES = 2
"""Frames a candidate waits to be found again by the follow-up search."""


def head(box: tuple) -> tuple:
    """A face box grown to its head: half a face each side, a face above (the
    detector's box starts at the brows: hair, a hat), a quarter below (chin).
    A far candidate touching it is part of that head."""
    x, y, w, h = box
    return (x - w / 2, y - h, 2 * w, 2.25 * h)


def behind(box: tuple, height: int) -> tuple:
    """What a near face hides: its head and shoulders, three faces wide, from
    the top of its head (`head`) down to the bottom of the frame."""
    x, y, w, h = box
    top = y - h
    return (x - w, top, 3 * w, max(0, height - top))


def touches(a: tuple, b: tuple) -> bool:
    """Whether two (x, y, w, h) boxes overlap or share an edge."""
    apart_x = a[0] > b[0] + b[2] or b[0] > a[0] + a[2]
    return not apart_x and a[1] <= b[1] + b[3] and b[1] <= a[1] + a[3]


class MotionMap:
    """Where the frame changed since each region was last searched.

    `update` compares each frame with the previous one on a small grey view and
    marks what changed; `changed` asks whether a window holds enough marks
    outside the regions to ignore; `searched` clears a window's marks.
    """

    def __init__(self, width: int = MOTION_WIDTH) -> None:
        self.width = width
        self._previous: np.ndarray | None = None
        self._dirty: np.ndarray | None = None
        self._scale = 1.0
        self._full = (0, 0)

    def reset(self) -> None:
        """The next frame is unrelated to the last: everything counts as changed."""
        self._previous = None

    def update(self, image: np.ndarray) -> None:
        height, width = image.shape[:2]
        size = (self.width, max(1, round(height * self.width / width)))
        if image.ndim == 3:  # gray first: averaging one channel is a third of the work
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        self._scale = self.width / width
        self._full = (width, height)
        if self._previous is None or self._previous.shape != small.shape:
            self._dirty = np.ones(small.shape, dtype=bool)
        else:
            self._dirty |= cv2.absdiff(small, self._previous) > CHANGE_LEVEL
        self._previous = small

    def _cells(self, box: tuple) -> tuple[slice, slice]:
        x, y, w, h = (v * self._scale for v in box)
        x0, y0 = max(0, int(x)), max(0, int(y))
        return slice(y0, max(y0, int(np.ceil(y + h)))), slice(x0, max(x0, int(np.ceil(x + w))))

    def _outside(self, window: tuple, ignore: list[tuple]) -> np.ndarray:
        """A mask over the window's cells: True where no `ignore` box covers them."""
        rows, cols = self._cells(window)
        shape = self._dirty[rows, cols].shape if self._dirty is not None else (0, 0)
        mask = np.ones(shape, dtype=bool)
        for box in ignore:
            r, c = self._cells(box)
            r = slice(max(r.start, rows.start) - rows.start, max(0, r.stop - rows.start))
            c = slice(max(c.start, cols.start) - cols.start, max(0, c.stop - cols.start))
            mask[r, c] = False
        return mask

    def changed(self, window: tuple, ignore: list[tuple] = ()) -> bool:
        """Whether enough of the window changed outside the `ignore` boxes."""
        if self._dirty is None:
            return True
        rows, cols = self._cells(window)
        marks = self._dirty[rows, cols] & self._outside(window, ignore)
        return int(marks.sum()) >= MIN_CHANGED

    def hidden(self, window: tuple, ignore: list[tuple]) -> bool:
        """Whether the `ignore` boxes cover at least `HIDDEN` of the window."""
        if self._dirty is None or not ignore:
            return False
        outside = self._outside(window, ignore)
        return outside.size > 0 and outside.mean() <= 1 - HIDDEN

    def unsearched(self, ignore: list[tuple] = ()) -> list[tuple[int, int, int, int]]:
        """Boxes (image pixels) around each change no search has looked at
        yet, outside the `ignore` boxes: where a face may have arrived unseen.
        Changes too small to make a tile worth a search (MIN_CHANGED) are not
        a face's arrival. Each box is grown by two cells (16 px of a 640 px
        frame): a face's middle may stay the same while its edges change."""
        if self._dirty is None:
            return []
        marks = self._dirty & self._outside((0, 0, *self._full), ignore)
        if int(marks.sum()) < MIN_CHANGED:
            return []
        grown = cv2.dilate(marks.astype(np.uint8), np.ones((5, 5), np.uint8))
        count, labels, stats, _ = cv2.connectedComponentsWithStats(grown)
        weight = np.bincount(labels[marks], minlength=count)
        scale = 1 / self._scale
        return [
            (round(x * scale), round(y * scale), round(w * scale), round(h * scale))
            for (x, y, w, h, _), marks_in in zip(stats[1:], weight[1:], strict=True)
            if marks_in >= MIN_CHANGED
        ]

    def searched(self, window: tuple) -> None:
        if self._dirty is not None:
            rows, cols = self._cells(window)
            self._dirty[rows, cols] = False


@dataclass
class TileSchedule:
    """Which of `count` tiles a turn searches: the next one, in turn, that
    changed outside the near faces' shadows, or was last searched
    `SWEEP_FRAMES` ago and is not hidden behind them; none when no tile
    qualifies (the turn costs nothing)."""

    count: int
    _next: int = 0
    _last: dict[int, int] = field(default_factory=dict)
    _behind: set[int] = field(default_factory=set)  # never searched: hidden by near faces

    def pick(self, frame: int, changed, hidden=lambda index: False) -> int | None:
        for step in range(self.count):
            index = (self._next + step) % self.count
            stale = frame - self._last.get(index, -SWEEP_FRAMES) >= SWEEP_FRAMES
            if changed(index) or (stale and not (behind := hidden(index))):
                self._next = index + 1
                self._last[index] = frame
                return index
            if stale and behind:
                self._behind.add(index)
        return None

    def searched_all(self, frame: int) -> None:
        self._last = dict.fromkeys(range(self.count), frame)

    @property
    def swept(self) -> bool:
        """Every tile searched once, or found hidden behind near faces."""
        return len(self._last.keys() | self._behind) >= self.count


@dataclass
class Candidates:
    """Far boxes a tile found, waiting to be found again around themselves."""

    pending: dict[tuple, int] = field(default_factory=dict)  # box -> tries left

    def add(self, boxes: list[tuple]) -> None:
        for box in boxes:
            self.pending.setdefault(box, CONFIRM_TRIES)

    def tried(self, box: tuple) -> None:
        """One follow-up search around `box` found nothing."""
        left = self.pending.pop(box) - 1
        if left > 0:
            self.pending[box] = left

    def clear(self) -> None:
        self.pending.clear()
