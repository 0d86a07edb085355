"""Photo mode: an image file or a folder of images, each one a frame."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.sources.base import Capture, FrameError, Source, SourceError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm"}


def list_images(path: Path) -> list[Path]:
    """The image files at `path`: a file, or a folder's images and its
    sub-folders' (a folder per class is how labelled photos come), sorted."""
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    return [path]


def read_image(path: Path) -> np.ndarray:
    """A BGR image, or FrameError naming the file that is not a readable image."""
    # imdecode rather than imread: it reads non-ASCII paths too.
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise FrameError(f"cannot read {path}: {exc.strerror}") from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise FrameError(f"{path} is not a readable image (JPEG, PNG, BMP, WebP, TIFF)")
    return image


class ImageSource(Source):
    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.description = f"images {self.path}"
        self.paths: list[Path] = []
        self._next = 0
        self.current: Path | None = None

    def _open(self) -> None:
        if not self.path.exists():
            raise SourceError(f"{self.path} not found: pass an image file or a folder of images")
        self.paths = list_images(self.path)
        if not self.paths:
            raise SourceError(
                f"no images in {self.path} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})"
            )
        self._next = 0

    def _read(self) -> Capture | None:
        if self._next >= len(self.paths):
            return None
        self.current = self.paths[self._next]
        self._next += 1
        return Capture(read_image(self.current))
