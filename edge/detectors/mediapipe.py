"""MediaPipe Tasks FaceDetector (BlazeFace), the default detector.

BlazeFace scales the whole image to its input (128 px square for the short
range model, 192 for full range), so a small face stays small whatever the
image's resolution. `tiles` > 1 finds farther faces: the frame is cut into
n x n overlapping tiles, each scaled up to the model's input; every
`tile_every`-th frame looks at one tile in turn (all n² in n² x tile_every
frames: 18 frames, 0.6 s at 30 fps, by default), and every frame looks around
each far face found so far (a window four faces wide), so a face once found
is followed on every frame. The cost is even: one more inference every
`tile_every` frames and one per far face, never a frame that stops for all
the tiles at once. Tiles use `tile_model` (full range: small faces in a
tile); the whole frame and the windows around far faces, where a face fills a
quarter of the view, keep `model` (short range, the cheaper), so close faces
are found as before. `forget()` makes the next image
look at every tile at once and follow nothing: for unrelated photos.

The model file ships in `models/` (current mediapipe releases no longer bundle
it, and nothing may download at run time). The detector is closed
explicitly: mediapipe 1.2.2's `__del__` at interpreter exit prints a
TypeError traceback otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Self

import cv2
import numpy as np

from edge.config import RANGE_MODELS
from edge.detectors.base import (
    Detector,
    DetectorError,
    clip_box,
    merge,
    same_face,
    tile_windows,
)
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
        self._next_tile = 0
        self._frame = 0
        self._all_tiles = True  # the first image looks everywhere
        self._far: list[tuple] = []  # boxes only the tiles (or their windows) found
        self._detector = None
        self._tile_detector = None
        self._mp = None

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
        try:
            import mediapipe as mp
            from mediapipe.tasks.python import BaseOptions, vision
        except ImportError as exc:
            raise DetectorError(
                f"mediapipe is not importable ({exc}): pip install mediapipe, "
                "or use --detector haar"
            ) from None
        self._mp = mp
        self._detector = self._load(vision, BaseOptions, self.model)
        if self.tiles > 1:
            same = self.tile_model == self.model
            self._tile_detector = (
                self._detector if same else self._load(vision, BaseOptions, self.tile_model)
            )

    def _load(self, vision, base_options, model: Path):
        if not model.is_file():
            raise DetectorError(
                f"face detection model {model} not found: restore "
                f"models/{model.name} from the repository"
            )
        options = vision.FaceDetectorOptions(
            base_options=base_options(model_asset_path=str(model)),
            min_detection_confidence=self.min_confidence,
        )
        try:
            return vision.FaceDetector.create_from_options(options)
        except (RuntimeError, ValueError) as exc:
            raise DetectorError(
                f"face detection model {model} cannot be loaded ({exc}); "
                "restore it from the repository"
            ) from None

    def _detect(self, image: np.ndarray) -> list[Detection]:
        if image.ndim == 2:
            rgb = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        else:
            rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        height, width = image.shape[:2]
        whole = self._detect_window(self._detector, rgb, (0, 0, width, height))
        faces = whole
        if self.tiles > 1:
            tiles = tile_windows(width, height, self.tiles)
            if self._all_tiles:
                windows, self._all_tiles = tiles, False
            elif self._frame % self.tile_every == 0:
                windows = [tiles[self._next_tile % len(tiles)]]
                self._next_tile += 1
            else:
                windows = []
            self._frame += 1
            # A far face fills a quarter of its window: the short-range model,
            # half the full range's cost, sees it there. Those boxes come before
            # the tiles' in the merge, so a followed face keeps one kind of box
            # (one model's) from frame to frame, and with it one track.
            followed = []
            for box in self._far:
                followed += self._detect_window(self._detector, rgb, around(box, width, height))
            found = []
            for window in windows:
                found += self._detect_window(self._tile_detector, rgb, window)
            by_score = sorted(found, key=lambda d: -d.score)
            faces = merge(whole + sorted(followed, key=lambda d: -d.score) + by_score)
            # Followed between tile passes: small faces the whole-frame pass missed.
            self._far = [
                f.box
                for f in faces
                if f.box[2] < FAR_FACE * width and not any(same_face(f.box, w.box) for w in whole)
            ]
        return [face for face in faces if min(face.box[2], face.box[3]) >= self.min_face]

    def forget(self, look_everywhere: bool = True) -> None:
        """The next image is unrelated to the last: follow nothing, and look at
        every tile at once (a photo) or at one per frame from now (a camera)."""
        self._all_tiles, self._far = look_everywhere, []

    def _detect_window(self, detector, rgb: np.ndarray, window: tuple) -> list[Detection]:
        x0, y0, w, h = window
        view = np.ascontiguousarray(rgb[y0 : y0 + h, x0 : x0 + w])
        result = detector.detect(self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=view))
        height, width = rgb.shape[:2]
        faces = []
        for detection in result.detections:
            bb = detection.bounding_box
            box = clip_box(x0 + bb.origin_x, y0 + bb.origin_y, bb.width, bb.height, width, height)
            if box is None:
                continue
            score = detection.categories[0].score if detection.categories else 0.0
            faces.append(Detection(box, float(score)))
        return faces

    def _close(self) -> None:
        for detector in {id(d): d for d in (self._detector, self._tile_detector) if d}.values():
            detector.close()
        self._detector = self._tile_detector = None
