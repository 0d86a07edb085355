"""Uploaded photos: checked, decoded in memory, analysed on one worker thread.

Only JPEG, PNG, BMP and WebP are accepted, recognised by their first bytes
before any decoder sees them, so OpenCV's rarer decoders are never reachable
from the network. Nothing is written to disk.
"""

from __future__ import annotations

import concurrent.futures
import io
import re
import time
import warnings
import zlib

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


def image_size(data: bytes, kind: str) -> tuple[int, int] | None:
    """(width, height) from the header, before anything is decoded: a small
    file can claim gigapixels (a decompression bomb), so the size is checked
    first. Pillow reads only the header here (its JPEG marker parsing skips
    fill bytes as libjpeg does, which a hand-written walker got wrong); None
    for a header it cannot read."""
    from PIL import Image  # a runtime dependency (matplotlib's too), loaded on first upload

    try:
        with warnings.catch_warnings():
            # Pillow warns past 89 MP and raises past twice that; the limit is ours
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[PIL_FORMATS[kind]]) as image:
                return image.size
    except Image.DecompressionBombError as exc:
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        side = int(pixels.group(1)) if pixels else MAX_PIXELS + 1
        return side, 1  # only its area matters to the caller
    except (OSError, SyntaxError, ValueError, EOFError, KeyError, IndexError, TypeError):
        return None


def decode_with_pillow(data: bytes, kind: str, size: tuple[int, int]) -> np.ndarray:
    """The picture as B, G, R, decoded by Pillow, turned as its EXIF says.

    Not OpenCV: its PNG reader allocates what a chunk's length field claims
    before reading it, so a 50 KB file with one changed length byte took
    1.9 GB (tests/test_upload_fuzz.py found it). Pillow streams the data
    and allocates only the picture the checked header describes. A large
    JPEG is decoded at the reduced scale libjpeg offers (`draft`), never
    beyond twice the size analysed.
    """
    from PIL import Image, ImageOps

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[PIL_FORMATS[kind]]) as image:
                if image.size != size:
                    raise UploadError(415, f"the {kind} header changed between two reads")
                if kind == "jpeg" and max(size) > 2 * ANALYZE_SIDE:
                    wanted = tuple(side * ANALYZE_SIDE // max(size) for side in size)
                    image.draft("RGB", wanted)  # the smallest scale at least this large
                picture = ImageOps.exif_transpose(image).convert("RGB")
    except UploadError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, zlib.error, Image.DecompressionBombError):
        raise UploadError(
            415, f"the image could not be decoded: upload an intact {ACCEPTED} file"
        ) from None
    return cv2.cvtColor(np.asarray(picture), cv2.COLOR_RGB2BGR)


def decode_upload(data: bytes) -> np.ndarray:
    """The BGR image in `data`, at most ANALYZE_SIDE pixels on its longer side."""
    if not data:
        raise UploadError(400, f"empty upload: send a {ACCEPTED} image")
    kind = image_kind(data)
    if kind is None:
        raise UploadError(415, f"not a {ACCEPTED} image: upload a photo in one of those formats")
    size = image_size(data, kind)
    if size is None:
        raise UploadError(415, f"the {kind} header is damaged: upload an intact {ACCEPTED} file")
    if size[0] * size[1] > MAX_PIXELS:
        raise UploadError(
            413, f"image too large ({size[0]}x{size[1]}): at most {MAX_PIXELS // 1_000_000} MP"
        )
    image = decode_with_pillow(data, kind, size)
    side = max(image.shape[:2])
    if side > ANALYZE_SIDE:
        scale = ANALYZE_SIDE / side
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return image


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
            ).open()
        result = self._analyzer.analyze_still(image)
        return result, (time.perf_counter() - t0) * 1e3

    def _close(self) -> None:
        def release() -> None:
            if self._analyzer is not None:
                self._analyzer.close()

        self.executor.submit(release).result(timeout=5)
        self.executor.shutdown(wait=True)
