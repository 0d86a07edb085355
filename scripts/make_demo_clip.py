"""Make the demo clip `assets/demo/faces.mp4` and its ground truth, reproducibly.

    python scripts/make_demo_clip.py [--data data/fer2013/test]

The clip shows FER-2013 PublicTest faces, upscaled to 230-260 px and drifting
slowly in a 640x480 frame, one or two at a time, scene after scene, with a few
empty frames between scenes (so no track carries over to a new face). Every
class appears. Ground truth beside it (`faces.truth.json`): per frame, each
face's box (the square the 48x48 FER image was scaled into) and its label.

BlazeFace finds upscaled 48x48 faces reliably only when they are large and not
padded, so faces are drawn at that size, and each face is kept only if the
detector finds it on its own at that size (faces are tried in a seeded
order). The clip then measures the classifier end to end, not the detector's
limits on 48 px faces. Seeded: the same data give the same clip.

The clip ends with a longer scene of three far faces, 60 px wide (2.1 m
from a Pi camera at 640x480), each kept only if the default detector (with
its far-face tiles) finds it: they check that far faces are found and
followed, and how soon (the tiles take up to 18 frames to reach a new one).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.config import DEMO_CLIP, MODELS_DIR
from edge.detectors.mediapipe import MediaPipeDetector

LABELS = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
WIDTH, HEIGHT, FPS = 640, 480, 15
SCENE_FRAMES, GAP_FRAMES = 24, 6
# (centre x, centre y, side) of each face slot, per number of faces on screen.
LAYOUTS = {1: [(320, 240, 260)], 2: [(170, 240, 230), (470, 240, 230)]}
SCENES = (1, 2, 1, 2, 1, 2, 1, 2)
DRIFT = 24  # pixels a face moves over a scene
SEED = 2013
# The far scene(s) at the end: (centre x, centre y) of each face, their side, how many, length.
FAR_SLOTS = [(130, 150), (330, 330), (520, 170)]
FAR_SIDE, FAR_SCENES, FAR_SCENE_FRAMES = 60, 1, 48


def background(rng: np.random.Generator) -> np.ndarray:
    """A soft gray gradient with a little noise: plain, but not a flat colour."""
    x = np.linspace(0, 1, WIDTH)[None, :]
    y = np.linspace(0, 1, HEIGHT)[:, None]
    gray = 95 + 40 * x + 25 * y + rng.normal(0, 3, (HEIGHT, WIDTH))
    return np.clip(gray, 0, 255).astype(np.uint8)


def place(canvas: np.ndarray, face: np.ndarray, cx: float, cy: float, side: int):
    """Draw `face` scaled to `side` centred at (cx, cy); returns its (x, y, w, h)."""
    x, y = round(cx - side / 2), round(cy - side / 2)
    canvas[y : y + side, x : x + side] = cv2.resize(
        face, (side, side), interpolation=cv2.INTER_CUBIC
    )
    return [x, y, side, side]


def detectable(detector: MediaPipeDetector, face: np.ndarray, side: int, bg: np.ndarray) -> bool:
    canvas = bg.copy()
    place(canvas, face, WIDTH / 2, HEIGHT / 2, side)
    found = detector.detect(cv2.cvtColor(canvas, cv2.COLOR_GRAY2BGR))
    return len(found) == 1 and found[0].score >= 0.7


def pick_faces(data: Path, detector, bg, rng) -> list[tuple[str, str, np.ndarray, int]]:
    """(label, file name, image, side) for every face slot, every class at least once."""
    slots = [side for count in SCENES for (_, _, side) in LAYOUTS[count]]
    labels = list(rng.permutation(LABELS))
    labels += list(rng.choice(LABELS, len(slots) - len(labels)))
    files = {label: sorted((data / label).glob("*.jpg")) for label in LABELS}
    for label, paths in files.items():
        if not paths:
            raise SystemExit(f"no images in {data / label}: pass --data PublicTest folder")
        rng.shuffle(paths)
    used: set[Path] = set()
    picked = []
    for label, side in zip(labels, slots, strict=True):
        for path in files[label]:
            if path in used:
                continue
            face = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if face is not None and detectable(detector, face, side, bg):
                used.add(path)
                picked.append((str(label), path.name, face, side))
                break
        else:
            raise SystemExit(f"no detectable {label} face found in {data / label}")
    return picked


def pick_far_faces(data: Path, bg: np.ndarray, rng, used: set[str]) -> list:
    """(label, file name, image) for every far slot: faces the default detector,
    as the pipeline runs it, finds at FAR_SIDE px in their slot."""
    from edge.config import DetectorConfig
    from edge.detectors import make_detector

    paths = sorted(data.glob("*/*.jpg"))
    rng.shuffle(paths)
    picked = []
    slots = iter(FAR_SLOTS * FAR_SCENES)
    slot = next(slots)
    for path in paths:
        if path.name in used:
            continue
        face = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if face is None:
            continue
        canvas = bg.copy()
        x, y, side, _ = place(canvas, face, *slot, FAR_SIDE)
        with make_detector(DetectorConfig()) as detector:  # fresh: it looks at every tile
            found = detector.detect(cv2.cvtColor(canvas, cv2.COLOR_GRAY2BGR))
        if any(abs(f.box[0] - x) < side / 3 and abs(f.box[1] - y) < side / 3 for f in found):
            picked.append((path.parent.name, path.name, face))
            slot = next(slots, None)
            if slot is None:
                return picked
    raise SystemExit(f"not enough far faces the detector finds in {data}")


def write_scene(writer, truth_frames: list, bg, scene: list, frames: int, drift: float) -> None:
    """A scene's frames, then a gap of empty ones, with their truth appended.

    `scene`: (label, file name, face, side, centre x, centre y, drift direction)
    per face; each face moves `drift` pixels over the scene.
    """
    for step in range(frames + GAP_FRAMES):
        canvas = bg.copy()
        entries = []
        if step < frames:
            t = step / (frames - 1) - 0.5
            for label, name, face, side, cx, cy, direction in scene:
                x, y = cx + drift * t * direction[0], cy + drift * t * direction[1]
                box = place(canvas, face, x, y, side)
                entries.append({"box": box, "label": label, "file": name})
        writer.write(cv2.cvtColor(canvas, cv2.COLOR_GRAY2BGR))
        truth_frames.append({"frame": len(truth_frames), "faces": entries})


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=Path("data/fer2013/test"),
        help="FER-2013 PublicTest class folders",
    )
    parser.add_argument("--out", type=Path, default=DEMO_CLIP)
    args = parser.parse_args()

    rng = np.random.default_rng(SEED)
    bg = background(rng)
    with MediaPipeDetector(MODELS_DIR / "face_detection_short_range.tflite") as detector:
        faces = iter(pick_faces(args.data, detector, bg, rng))

    args.out.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(args.out), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    truth_frames: list[dict] = []
    for count in SCENES:
        scene = [
            (label, name, face, side, cx, cy, rng.uniform(-1, 1, 2))
            for (label, name, face, side), (cx, cy, _) in zip(
                (next(faces) for _ in LAYOUTS[count]), LAYOUTS[count], strict=True
            )
        ]
        write_scene(writer, truth_frames, bg, scene, SCENE_FRAMES, DRIFT)
    # Far scenes, from their own seeded generator: the scenes above stay as they were.
    far_rng = np.random.default_rng(SEED + 1)
    used = {face["file"] for frame in truth_frames for face in frame["faces"]}
    far = iter(pick_far_faces(args.data, bg, far_rng, used))
    for _ in range(FAR_SCENES):
        scene = [(*next(far), FAR_SIDE, cx, cy, far_rng.uniform(-1, 1, 2)) for cx, cy in FAR_SLOTS]
        write_scene(writer, truth_frames, bg, scene, FAR_SCENE_FRAMES, DRIFT * FAR_SIDE / 240)
    index = len(truth_frames)
    writer.release()

    truth = {
        "clip": args.out.name,
        "size": [WIDTH, HEIGHT],
        "fps": FPS,
        "source": "FER-2013 PublicTest (Goodfellow et al. 2013), faces chosen by "
        f"scripts/make_demo_clip.py with seed {SEED}",
        "box": "the square the 48x48 FER face was scaled into, [x, y, w, h]",
        "frames": truth_frames,
    }
    truth_path = args.out.with_suffix(".truth.json")
    truth_path.write_text(json.dumps(truth, separators=(",", ":")) + "\n")
    size_kb = args.out.stat().st_size / 1024
    faces_total = sum(len(f["faces"]) for f in truth_frames)
    print(
        f"{args.out}: {index} frames, {index / FPS:.1f} s, {size_kb:.0f} KB, "
        f"{faces_total} face instances; truth in {truth_path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
