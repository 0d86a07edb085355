"""MediaPipe's face detection (BlazeFace), the default detector.

BlazeFace scales the whole image to its input (128 px square for the short
range model, 192 for full range), so a small face stays small whatever the
image's resolution. `tiles` > 1 finds farther faces: the frame is cut into
n x n overlapping tiles, each scaled up to the model's input. Every
`tile_every`-th frame may look at one tile: the next one in turn where the
scene changed outside the near faces' heads and shoulders, or that was not
searched for 5 s (`edge/detectors/far_search.py`), so a scene with only near
faces pays for almost no tile pass. A tile's find is a candidate (with
privacy on, so is a find it is unsure of: the full-range model on a tile
misses some faces the short-range one finds in the window around them); it
becomes a face when the search around it (a window four faces wide) finds
it again on the next frames, and from then on that window follows it on
every frame.
Tiles use `tile_model` (full range: small faces in a tile); the whole frame
and the windows around far faces, where a face fills a quarter of the view,
keep `model` (short range, the cheaper), so close faces are found as before.
`forget()` makes the next image look at every tile at once and follow
nothing: for unrelated photos (their finds are confirmed on the same image).

The models are MediaPipe's BlazeFace files, run on the LiteRT interpreter
with MediaPipe's own pre- and post-processing (`edge/detectors/blazeface.py`
says why not through the mediapipe package). They ship in `models/`
(current mediapipe releases no longer bundle them, and nothing may download
at run time).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Self

import numpy as np

from edge.classifier import ModelError
from edge.config import RANGE_MODELS
from edge.detectors.base import (
    Detector,
    DetectorError,
    clip_box,
    merge,
    same_face,
    tile_windows,
)
from edge.detectors.blazeface import BlazeFace
from edge.detectors.far_search import Candidates, MotionMap, TileSchedule, behind, head, touches
from edge.frames import Detection

if TYPE_CHECKING:
    from edge.config import DetectorConfig


# Faces narrower than this share of the frame are out of the short-range
# model's reach: only those are followed between tile passes.
FAR_FACE = 0.2


def around(box: tuple, width: int, height: int, faces: float = 4.0) -> tuple:
    """A square window `faces` face-widths wide centred on `box`, inside the frame."""
    x, y, w, h = box
    side = min(round(max(w, h) * faces), width, height)
    x0 = min(max(0, round(x + w / 2 - side / 2)), width - side)
    y0 = min(max(0, round(y + h / 2 - side / 2)), height - side)
    return (x0, y0, side, side)


class MediaPipeDetector(Detector):
    name = "mediapipe"

    def __init__(
        self,
        model: str | Path,
        min_confidence: float = 0.5,
        min_face: int = 20,
        tiles: int = 1,
        tile_every: int = 1,
        tile_model: str | Path | None = None,
    ):
        super().__init__()
        self.model = Path(model)
        self.min_confidence = min_confidence
        self.min_face = min_face
        self.tiles = tiles
        self.tile_model = Path(tile_model) if tile_model else self.model
        self.tile_every = max(1, tile_every)
        self._frame = 0
        self._schedule: TileSchedule | None = None
        self._tiles: list[tuple] = []
        self._tiles_for: tuple[int, int] | None = None
        self._motion = MotionMap()
        self._candidates = Candidates()
        # Photos look at every tile at once (forget); a stream starts with every
        # tile "changed", so the turns go round them all unless near faces hide them.
        self._all_tiles = False
        self._far: list[tuple] = []  # boxes only the tiles (or their windows) found
        self._detector = None
        self._tile_detector = None
        self._unsure_score: float | None = None
        self._unsure: list[tuple] = []  # this frame's, in image pixels
        self._detected = False

    @classmethod
    def from_config(cls, config: DetectorConfig) -> Self:
        return cls(
            config.model_path,
            config.min_confidence,
            config.min_face,
            config.tiles,
            config.tile_every,
            RANGE_MODELS["full"],
        )

    def _open(self) -> None:
        self._detector = self._load(self.model)
        if self.tiles > 1:
            same = self.tile_model == self.model
            self._tile_detector = self._detector if same else self._load(self.tile_model)

    def hide_unsure(self, score: float) -> None:
        self._unsure_score = score
        for detector in (self._detector, self._tile_detector):
            if detector is not None:
                detector.unsure_score = score

    def unsure(self) -> list[tuple[int, int, int, int]]:
        """This frame's unsure finds and every far find still waiting to be
        found again (a face walking in from afar is obscured from its first find)."""
        return self._unsure + list(self._candidates.pending)

    @property
    def searched_everywhere(self) -> bool:
        if self.tiles <= 1 or self._schedule is None:
            return self._detected
        return self._schedule.swept

    def _load(self, model: Path) -> BlazeFace:
        if not model.is_file():
            raise DetectorError(
                f"face detection model {model} not found: restore "
                f"models/{model.name} from the repository"
            )
        try:
            detector = BlazeFace(model, self.min_confidence)
            detector.unsure_score = self._unsure_score
            return detector
        except ModelError as exc:  # no TFLite runtime
            raise DetectorError(str(exc)) from None
        except (RuntimeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DetectorError(
                f"face detection model {model} cannot be loaded ({first}); "
                "restore it from the repository"
            ) from None

    def _detect(self, image: np.ndarray) -> list[Detection]:
        height, width = image.shape[:2]
        self._unsure = []
        self._detected = True
        whole = self._detect_window(self._detector, image, (0, 0, width, height))
        faces = whole
        if self.tiles > 1:
            faces = merge(whole + self._far_faces(image, whole))
            # Followed from now on: small faces the whole-frame pass missed.
            self._far = [
                f.box
                for f in faces
                if f.box[2] < FAR_FACE * width and not any(same_face(f.box, w.box) for w in whole)
            ]
        return [face for face in faces if min(face.box[2], face.box[3]) >= self.min_face]

    def _far_faces(self, image: np.ndarray, whole: list[Detection]) -> list[Detection]:
        """Far faces on this frame: those followed, candidates found again, and
        (looking everywhere) the tiles' finds confirmed at once
        (edge/detectors/far_search.py says when a tile is searched)."""
        height, width = image.shape[:2]
        if self._tiles_for != (width, height):  # once per frame size, not per frame
            self._tiles_for = (width, height)
            self._tiles = tile_windows(width, height, self.tiles)
            self._schedule = TileSchedule(len(self._tiles))
        tiles = self._tiles
        self._motion.update(image)
        heads = [head(f.box) for f in whole]
        shadows = [behind(f.box, height) for f in whole]  # where no far face can be seen
        # A far face fills a quarter of its window: the short-range model,
        # half the full range's cost, sees it there. Followed boxes come before
        # the tiles' in the merge, so a followed face keeps one kind of box
        # (one model's) from frame to frame, and with it one track.
        followed = []
        for box in self._far:
            followed += self._detect_window(self._detector, image, around(box, width, height))
        found_again = self._confirm(image, heads)
        if self._all_tiles:
            windows, self._all_tiles = tiles, False
            self._schedule.searched_all(self._frame)
        elif self._frame % self.tile_every == 0:
            index = self._schedule.pick(
                self._frame,
                lambda i: self._motion.changed(tiles[i], shadows),
                lambda i: self._motion.hidden(tiles[i], shadows),
            )
            windows = [] if index is None else [tiles[index]]
        else:
            windows = []
        self._frame += 1
        known = whole + followed + found_again
        if self._unsure_score is not None:  # privacy: obscure what no search has seen
            # Taken before this frame's search: a search that misses a face on
            # the frame it arrives must not un-hide it at once (its finds get
            # their second look on the next frame).
            self._unsure += self._motion.unsearched(shadows)
        for window in windows:
            self._motion.searched(window)
            seen = len(self._unsure)
            found = [f.box for f in self._detect_window(self._tile_detector, image, window)]
            # Privacy: an unsure find gets the second look a sure one gets, from
            # the other model on the other view, and is obscured until then.
            found += self._unsure[seen:]
            self._candidates.add(
                [
                    box
                    for box in found
                    if not any(touches(box, h) for h in heads)
                    and not any(same_face(box, k.box) for k in known)
                ]
            )
        if len(windows) > 1:  # a photo (forget): no next frame to wait for
            found_again += self._confirm(image, heads)
        by_score = sorted(found_again, key=lambda d: -d.score)
        return sorted(followed, key=lambda d: -d.score) + by_score

    def _confirm(self, image: np.ndarray, heads: list[tuple]) -> list[Detection]:
        """The follow-up search around each candidate; those found again are faces."""
        height, width = image.shape[:2]
        confirmed = []
        for box in list(self._candidates.pending):
            again = [
                f
                for f in self._detect_window(self._detector, image, around(box, width, height))
                if not any(touches(f.box, h) for h in heads)
            ]
            if again:
                del self._candidates.pending[box]
                confirmed += again
            else:
                self._candidates.tried(box)
        return confirmed

    def forget(self, look_everywhere: bool = True) -> None:
        """The next image is unrelated to the last: follow nothing, and look at
        every tile at once (a photo) or at one per frame from now (a camera)."""
        self._all_tiles, self._far = look_everywhere, []
        self._candidates.clear()
        self._motion.reset()

    def _detect_window(
        self, detector: BlazeFace, image: np.ndarray, window: tuple
    ) -> list[Detection]:
        x0, y0, w, h = window
        height, width = image.shape[:2]
        faces = []
        for x, y, fw, fh, score in detector.detect(image[y0 : y0 + h, x0 : x0 + w]):
            box = clip_box(x0 + x, y0 + y, fw, fh, width, height)
            if box is not None:
                faces.append(Detection(box, float(score)))
        for x, y, fw, fh in detector.unsure:
            box = clip_box(x0 + x, y0 + y, fw, fh, width, height)
            if box is not None:
                self._unsure.append(box)
        return faces

    def _close(self) -> None:
        self._detector = self._tile_detector = None
