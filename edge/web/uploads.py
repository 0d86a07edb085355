"""Uploaded photos: checked, decoded in memory, analysed on one worker thread.

Only JPEG, PNG, BMP and WebP are accepted, recognised by their first bytes
before any decoder sees them, so OpenCV's rarer decoders are never reachable
from the network. Nothing is written to disk.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import io
import re
import time
import warnings
import zlib
from collections.abc import Iterator

import cv2
import numpy as np

from edge.analysis import FaceAnalyzer
from edge.config import RunConfig
from edge.frames import Result
from edge.lifecycle import Lifecycle

MAX_PIXELS = 50_000_000  # a 50 MP photo decodes to 150 MB; beyond that, refuse
ANALYZE_SIDE = 1920  # larger photos are scaled down first: faces stay far above min_face

ACCEPTED = "JPEG, PNG, BMP or WebP"


class UploadError(ValueError):
    """An upload that cannot be analysed; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def image_kind(data: bytes) -> str | None:
    """The format named by the file's first bytes, or None for anything else."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:2] == b"BM":
        return "bmp"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


# Pillow's names for the formats accepted: it alone may identify an upload.
PIL_FORMATS = {"jpeg": "JPEG", "png": "PNG", "bmp": "BMP", "webp": "WEBP"}


@contextlib.contextmanager
def opened(data: bytes, kind: str) -> Iterator:
    """The upload as a Pillow image, its header read and nothing decoded yet.

    Pillow, not OpenCV, reads uploads: its JPEG marker parsing skips fill
    bytes as libjpeg does (a hand-written walker read a fake 16x16 header in
    front of a 12000x12000 frame), and OpenCV's PNG reader allocates what a
    chunk's length field claims before reading it (a 50 KB file with one
    changed length byte took 1.9 GB; tests/test_upload_fuzz.py found it).
    Pillow's own bomb warning is silenced (the limit is MAX_PIXELS); its
    DecompressionBombError, past twice its limit, still rises.
    """
    from PIL import Image  # a runtime dependency (matplotlib's too), loaded on first upload

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(io.BytesIO(data), formats=[PIL_FORMATS[kind]]) as image:
            yield image


def image_size(data: bytes, kind: str) -> tuple[int, int] | None:
    """(width, height) from the header, before anything is decoded: a small
    file can claim gigapixels (a decompression bomb), so the size is checked
    first; None for a header Pillow cannot read."""
    from PIL import Image

    try:
        with opened(data, kind) as image:
            return image.size
    except (*HEADER_ERRORS, Image.DecompressionBombError) as exc:
        return bomb_size(exc)


# What Pillow raises on a header it cannot read.
HEADER_ERRORS = (OSError, SyntaxError, ValueError, EOFError, KeyError, IndexError, TypeError)


def bomb_size(exc: Exception) -> tuple[int, int] | None:
    """A size of the area Pillow's DecompressionBombError names, else None."""
    from PIL import Image

    if not isinstance(exc, Image.DecompressionBombError):
        return None
    pixels = re.search(r"\((\d+) pixels\)", str(exc))
    return (int(pixels.group(1)) if pixels else MAX_PIXELS + 1), 1  # only its area matters


def decode_upload(data: bytes) -> np.ndarray:
    """The BGR image in `data`, turned as its EXIF says, at most ANALYZE_SIDE
    pixels on its longer side; the header is read once, and checked before
    anything is decoded. A large JPEG is decoded at the reduced scale
    libjpeg offers (`draft`), never beyond twice the size analysed."""
    from PIL import Image, ImageOps

    if not data:
        raise UploadError(400, f"empty upload: send a {ACCEPTED} image")
    kind = image_kind(data)
    if kind is None:
        raise UploadError(415, f"not a {ACCEPTED} image: upload a photo in one of those formats")
    damaged = UploadError(415, f"the {kind} header is damaged: upload an intact {ACCEPTED} file")
    try:
        with opened(data, kind) as image:
            size = image.size
            if size[0] * size[1] > MAX_PIXELS:
                raise too_large(size)
            if kind == "jpeg" and max(size) > 2 * ANALYZE_SIDE:
                wanted = tuple(side * ANALYZE_SIDE // max(size) for side in size)
                image.draft("RGB", wanted)  # the smallest scale at least this large
            try:
                picture = ImageOps.exif_transpose(image).convert("RGB")
            except (*HEADER_ERRORS, zlib.error) as exc:
                raise UploadError(
                    415, f"the image could not be decoded: upload an intact {ACCEPTED} file"
                ) from exc
    except UploadError:
        raise
    except (*HEADER_ERRORS, Image.DecompressionBombError) as exc:
        size = bomb_size(exc)
        raise (damaged if size is None else too_large(size)) from None
    image = cv2.cvtColor(np.asarray(picture), cv2.COLOR_RGB2BGR)
    side = max(image.shape[:2])
    if side > ANALYZE_SIDE:
        scale = ANALYZE_SIDE / side
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return image


def too_large(size: tuple[int, int]) -> UploadError:
    return UploadError(
        413, f"image too large ({size[0]}x{size[1]}): at most {MAX_PIXELS // 1_000_000} MP"
    )


class PhotoAnalyzer(Lifecycle):
    """Its own `FaceAnalyzer` (the pipeline's belongs to its thread), built on
    first use and only ever called from one worker thread."""

    description = "photo analyzer"

    def __init__(self, config: RunConfig) -> None:
        super().__init__()
        self.config = config
        self.executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="web-analyze")
        self._analyzer: FaceAnalyzer | None = None

    def analyze(self, data: bytes) -> tuple[Result, float]:
        """Decode and analyse an upload (call on `executor`); returns the result and ms."""
        self._check_open()
        image = decode_upload(data)
        t0 = time.perf_counter()
        if self._analyzer is None:
            privacy = self.config.privacy
            self._analyzer = FaceAnalyzer.from_config(
                self.config.detector,
                self.config.classifier,
                privacy.masks,
                privacy=privacy.obscures_faces,
                edge_band=privacy.edge_band,
            ).open()
        result = self._analyzer.analyze_still(image)
        return result, (time.perf_counter() - t0) * 1e3

    def _close(self) -> None:
        def release() -> None:
            if self._analyzer is not None:
                self._analyzer.close()

        self.executor.submit(release).result(timeout=5)
        self.executor.shutdown(wait=True)
