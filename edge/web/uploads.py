"""Uploaded photos: checked, decoded in memory, analysed on one worker thread.

Only JPEG, PNG, BMP and WebP are accepted, recognised by their first bytes
before any decoder sees them, so OpenCV's rarer decoders are never reachable
from the network. Nothing is written to disk.
"""

from __future__ import annotations

import concurrent.futures
import time

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


def image_size(data: bytes, kind: str) -> tuple[int, int] | None:
    """(width, height) from the header, before anything is decoded: a small
    file can claim gigapixels (a decompression bomb), so the size is checked first."""
    try:
        if kind == "png":
            return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        if kind == "bmp":
            w = int.from_bytes(data[18:22], "little", signed=True)
            h = int.from_bytes(data[22:26], "little", signed=True)
            return abs(w), abs(h)
        if kind == "webp":
            chunk = data[12:16]
            if chunk == b"VP8X":
                return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(
                    data[27:30], "little"
                ) + 1
            if chunk == b"VP8L":
                bits = int.from_bytes(data[21:25], "little")
                return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
            if chunk == b"VP8 ":
                w = int.from_bytes(data[26:28], "little") & 0x3FFF
                h = int.from_bytes(data[28:30], "little") & 0x3FFF
                return w, h
            return None
        # JPEG: walk the segments to the start-of-frame marker.
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                return None
            marker = data[i + 1]
            if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD):
                h = int.from_bytes(data[i + 5 : i + 7], "big")
                w = int.from_bytes(data[i + 7 : i + 9], "big")
                return w, h
            i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    except (IndexError, ValueError):
        return None
    return None


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
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise UploadError(415, f"the image could not be decoded: upload an intact {ACCEPTED} file")
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
