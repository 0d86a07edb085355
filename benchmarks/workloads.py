"""Benchmark workloads: the demo clip, and clips with 0, 1, 2, 4 and 8 faces.

The multi-face clips are made from the demo clip's own faces (cut out by its
ground truth), tiled in a 1280x720 frame at 260-300 px, the size BlazeFace
finds upscaled FER faces at. Made on the fly, reproducibly, so the
benchmark needs nothing beyond the repository.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from edge.config import DEMO_CLIP

SCALING_SIZE = (1280, 720)
FACE_COUNTS = (0, 1, 2, 4, 8)


def demo_faces(clip: Path = DEMO_CLIP) -> list[np.ndarray]:
    """Each distinct face of the demo clip, as the BGR square it was drawn in."""
    truth = json.loads(clip.with_suffix(".truth.json").read_text())
    wanted = {}
    for frame in truth["frames"]:
        for face in frame["faces"]:
            wanted.setdefault(face["file"], (frame["frame"], face["box"]))
    cap = cv2.VideoCapture(str(clip))
    faces = []
    for index, (x, y, w, h) in sorted(wanted.values()):
        cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, image = cap.read()
        if ok:
            faces.append(image[y : y + h, x : x + w].copy())
    cap.release()
    return faces


def grid_frame(faces: list[np.ndarray], count: int, size=SCALING_SIZE) -> np.ndarray:
    """A frame with `count` faces in a grid (up to 4 x 2), on a plain background."""
    width, height = size
    frame = np.full((height, width, 3), 110, np.uint8)
    if count == 0:
        return frame
    cols = min(count, 4)
    rows = (count + cols - 1) // cols
    side = min(300, width // cols - 20, height // rows - 40)
    for i in range(count):
        r, c = divmod(i, cols)
        cx = (c + 0.5) * width / cols
        cy = (r + 0.5) * height / rows
        x, y = int(cx - side / 2), int(cy - side / 2)
        face = cv2.resize(faces[i % len(faces)], (side, side), interpolation=cv2.INTER_CUBIC)
        frame[y : y + side, x : x + side] = face
    return frame


def make_face_clip(path: Path, count: int, frames: int, fps: float = 15.0) -> Path:
    """A clip of `frames` frames with `count` faces drifting a few pixels."""
    faces = demo_faces()
    base = grid_frame(faces, count)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, SCALING_SIZE)
    for i in range(frames):
        shift = np.float32([[1, 0, 3 * np.sin(i / 5)], [0, 1, 2 * np.cos(i / 7)]])
        writer.write(cv2.warpAffine(base, shift, SCALING_SIZE, borderMode=cv2.BORDER_REPLICATE))
    writer.release()
    return path
