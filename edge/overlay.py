"""Drawing results onto a frame: boxes, labels with confidence, and a small HUD.

Drawn on a copy for the outputs; the frame the stages saw is never changed.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from edge.frames import Result
from edge.privacy import black_out, conceal, obscure

FONT = cv2.FONT_HERSHEY_SIMPLEX

# One colour per label (BGR), so a glance at the screen tells the mood.
LABEL_COLORS = {
    "angry": (40, 40, 230),
    "disgust": (40, 140, 60),
    "fear": (160, 60, 160),
    "happy": (40, 200, 250),
    "neutral": (200, 200, 200),
    "sad": (200, 120, 40),
    "surprise": (40, 160, 250),
}


def color_for(label: str) -> tuple[int, int, int]:
    if label in LABEL_COLORS:
        return LABEL_COLORS[label]
    seed = sum(label.encode())
    return (seed * 67 % 200 + 55, seed * 131 % 200 + 55, seed * 29 % 200 + 55)


def _text_box(image, text, origin, scale, color, thickness=1):
    (w, h), base = cv2.getTextSize(text, FONT, scale, thickness)
    x, y = origin
    cv2.rectangle(image, (x, y - h - base - 2), (x + w + 4, y + 2), color, cv2.FILLED)
    ink = (0, 0, 0) if sum(color) > 380 else (255, 255, 255)
    cv2.putText(image, text, (x + 2, y - base + 1), FONT, scale, ink, thickness, cv2.LINE_AA)


def label_scale(shape: tuple[int, ...], text_scale: float = 1.0) -> float:
    """OpenCV's font scale for face labels on an image of `shape`."""
    return max(0.45, min(shape[:2]) / 900) * text_scale


def label_height(shape: tuple[int, ...], text_scale: float = 1.0) -> int:
    """How tall a face label's letters are, in the image's pixels."""
    (_, height), _ = cv2.getTextSize("Ag", FONT, label_scale(shape, text_scale), 1)
    return height


def draw_faces(image: np.ndarray, result: Result, text_scale: float = 1.0) -> None:
    """Box, `label 87%` and track id of each face, in place; `text_scale`
    enlarges the labels for a picture that will be shown small (the web
    stream on a phone)."""
    scale = label_scale(image.shape, text_scale)
    thickness = max(1, round(scale * 2))
    for face in result.faces:
        x, y, w, h = face.box
        color = color_for(face.label)
        cv2.rectangle(image, (x, y), (x + w, y + h), color, thickness)
        text = f"{face.label} {100 * face.confidence:.0f}%  #{face.track}"
        _text_box(image, text, (x, max(y, 20)), scale, color, max(1, thickness - 1))


def draw_hud(image: np.ndarray, fps: float, latency_ms: float, faces: int) -> None:
    """Top-left line with the processed FPS, latency and face count, in place."""
    scale = max(0.45, min(image.shape[:2]) / 1000)
    text = f"{fps:4.1f} fps  {latency_ms:5.1f} ms  {faces} face{'s' if faces != 1 else ''}"
    _text_box(image, text, (6, 8 + round(24 * scale)), scale, (30, 30, 30))


def private_copy(
    image: np.ndarray,
    result: Result,
    faces: str = "show",
    masks: Sequence[Sequence[float]] = (),
) -> np.ndarray:
    """A BGR copy of `image` as privacy lets it leave, before anything is
    drawn: faces and the places one may be obscured, masks black."""
    out = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image.copy()
    if result.concealed:
        conceal(out, faces)
    else:
        obscure(out, [face.box for face in result.faces] + list(result.hidden), faces)
    black_out(out, masks)
    return out


def annotate(
    image: np.ndarray,
    result: Result,
    fps: float | None = None,
    faces: str = "show",
    masks: Sequence[Sequence[float]] = (),
    notice: str = "",
    text_scale: float = 1.0,
) -> np.ndarray:
    """An annotated copy of `image` (BGR; gray input becomes BGR), with the
    masks blacked out and the faces shown, blurred or hidden (edge.privacy)
    before the boxes and labels are drawn, and `notice` along the bottom."""
    out = private_copy(image, result, faces)
    draw_faces(out, result, text_scale)
    black_out(out, masks)  # last: nothing drawn shows through
    if fps is not None:
        draw_hud(out, fps, result.latency_ms, len(result.faces))
    if notice:
        draw_notice(out, notice)
    return out


def draw_notice(image: np.ndarray, notice: str) -> None:
    """`notice` on a dark strip across the bottom, in place: whoever sees the
    picture learns that emotion recognition runs on it ([privacy] notice)."""
    height, width = image.shape[:2]
    scale = max(0.45, min(image.shape[:2]) / 1000)
    (w, h), base = cv2.getTextSize(notice, FONT, scale, 1)
    scale *= min(1.0, (width - 12) / max(w, 1))  # a long notice still fits the width
    (w, h), base = cv2.getTextSize(notice, FONT, scale, 1)
    top = height - h - base - 8
    image[max(0, top) :, :] = (image[max(0, top) :, :] * 0.25).astype(image.dtype)
    origin = ((width - w) // 2, height - base - 4)
    cv2.putText(image, notice, origin, FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)
