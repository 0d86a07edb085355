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


def portrait_photo() -> np.ndarray:
    """Grace Hopper's portrait (matplotlib's sample photo, installed with
    mediapipe): a real head with hair, shoulders and background."""
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    photo = cv2.imread(str(path))
    if photo is None:
        raise FileNotFoundError(f"{path}: matplotlib's sample photo is missing")
    return photo


def make_near_face_clip(
    path: Path, frames: int = 450, size: tuple[int, int] = (640, 360), fps: float = 30.0
) -> Path:
    """One person filling the frame, as a webcam sees someone at a desk: the
    portrait sways, turns and leans in and out, with the sensor's noise on
    every frame. No far face anywhere: what the far search costs and invents
    where there is nothing to find."""
    photo = portrait_photo()
    width, height = size
    # wider than the frame at every sway, so no border is ever invented
    scale = max((width + 120) / photo.shape[1], (height + 60) / photo.shape[0])
    base = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    bh, bw = base.shape[:2]
    rng = np.random.default_rng(7)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for i in range(frames):
        t = i / fps
        turn = cv2.getRotationMatrix2D(
            (bw / 2, bh / 2), 4 * np.sin(t * 0.9), 1 + 0.06 * np.sin(t * 0.4)
        )
        turn[0, 2] += (width - bw) / 2 + 30 * np.sin(t * 0.7)
        turn[1, 2] += -0.08 * bh + 10 * np.sin(t * 1.3)  # the hair just inside the top
        frame = cv2.warpAffine(base, turn, size, borderMode=cv2.BORDER_REFLECT)
        noise = rng.normal(0, 2.0, frame.shape)
        writer.write(np.clip(frame + noise, 0, 255).astype(np.uint8))
    writer.release()
    return path
