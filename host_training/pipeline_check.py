"""The ship rule's whole-pipeline check: `python -m host_training.pipeline_check
SHIPPED.tflite CANDIDATE.tflite DATA [--faces 320] [--json OUT]`.

A model's accuracy on cropped 48x48 faces is not what a user sees: the
pipeline finds the face, crops it from a bigger picture and follows it over
frames. The demo clip checks that end to end, but on 15 distinct faces, too
few to tell two models apart (docs/training.md, "Third pass"). This makes a
clip of at least 300 distinct PublicTest faces (two per scene, upscaled to
the size the demo clip draws them at, drifting a little, a gap of empty
frames between scenes so no track carries over), runs it through the real
`emotion-edge analyze` once per model, and gives each face the label its
track showed most often. Faces the detector misses count for neither model
(the detector is the same); the rest are compared paired, as
`host_training.compare` compares crops: each model's accuracy, the
difference with its 95 % bootstrap interval, McNemar's exact p.

The faces are PublicTest's, picked by a seeded shuffle of the file names:
no face the models trained on, the same clip on every run and machine.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from host_training.data import LABELS
from host_training.paired import paired_difference

WIDTH, HEIGHT, FPS = 640, 480, 15
SIDE = 230
SLOTS = ((170, 240), (470, 240))
SCENE_FRAMES, GAP_FRAMES = 8, 3
DRIFT = 16
SEED = 47


def test_faces(data: Path, count: int) -> list[tuple[Path, str]]:
    """`count` PublicTest faces (path, label), seeded, every class in its share."""
    folder = data / "test"
    paths = sorted(p for p in folder.glob("*/*") if p.parent.name in LABELS)
    if len(paths) < count:
        raise SystemExit(f"{folder}: {len(paths)} faces, fewer than {count}: unpack PublicTest")
    order = np.random.default_rng(SEED).permutation(len(paths))[:count]
    return [(paths[i], paths[i].parent.name) for i in order]


def make_clip(faces: list[tuple[Path, str]], path: Path) -> list[dict]:
    """The clip at `path` and its truth: per face, its label and box per frame."""
    rng = np.random.default_rng(SEED)
    x = np.linspace(0, 1, WIDTH)[None, :]
    y = np.linspace(0, 1, HEIGHT)[:, None]
    background = np.clip(95 + 40 * x + 25 * y, 0, 255).astype(np.uint8)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (WIDTH, HEIGHT))
    truth, frame = [], 0
    for start in range(0, len(faces), len(SLOTS)):
        scene = []
        for (face_path, label), (cx, cy) in zip(faces[start:], SLOTS, strict=False):
            image = cv2.imread(str(face_path), cv2.IMREAD_GRAYSCALE)
            if image is None:
                raise SystemExit(f"{face_path}: not an image")
            big = cv2.resize(image, (SIDE, SIDE), interpolation=cv2.INTER_CUBIC)
            entry = {"file": face_path.name, "label": label, "boxes": {}}
            scene.append((big, cx, cy, rng.uniform(-1, 1, 2), entry))
            truth.append(entry)
        for step in range(SCENE_FRAMES + GAP_FRAMES):
            canvas = background.copy()
            if step < SCENE_FRAMES:
                t = step / (SCENE_FRAMES - 1) - 0.5
                for big, cx, cy, direction, entry in scene:
                    x0 = round(cx + DRIFT * t * direction[0] - SIDE / 2)
                    y0 = round(cy + DRIFT * t * direction[1] - SIDE / 2)
                    canvas[y0 : y0 + SIDE, x0 : x0 + SIDE] = big
                    entry["boxes"][frame] = (x0, y0, SIDE, SIDE)
            writer.write(cv2.cvtColor(canvas, cv2.COLOR_GRAY2BGR))
            frame += 1
    writer.release()
    return truth


def analyze(clip: Path, model: Path, out: Path) -> list[dict]:
    """faces.csv's rows from the real `emotion-edge analyze` with `model`."""
    config = out.with_suffix(".toml")
    config.write_text(f'[classifier]\nmodel = "{model.resolve()}"\n')
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge",
            "analyze",
            str(clip),
            "--out",
            str(out),
            "--config",
            str(config),
            "--overwrite",
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"analyze with {model} failed: {proc.stderr.strip()[-500:]}")
    with (out / "faces.csv").open() as handle:
        return list(csv.DictReader(handle))


def labels_shown(truth: list[dict], rows: list[dict]) -> list[str | None]:
    """Per true face, the label shown most often on its frames (None: never found)."""
    from edge.scoring import match

    by_frame: dict[int, list[dict]] = {}
    for row in rows:
        box = [int(row[k]) for k in ("x", "y", "w", "h")]
        by_frame.setdefault(int(row["frame"]), []).append({"box": box, "label": row["label"]})
    shown = []
    for face in truth:
        votes = Counter()
        for frame, box in face["boxes"].items():
            for _, found in match([{"box": list(box)}], by_frame.get(frame, [])):
                votes[found["label"]] += 1
        shown.append(votes.most_common(1)[0][0] if votes else None)
    return shown


def check(shipped: Path, candidate: Path, data: Path, count: int) -> dict:
    faces = test_faces(data, count)
    with tempfile.TemporaryDirectory() as scratch:
        clip = Path(scratch) / "publictest.mkv"
        truth = make_clip(faces, clip)
        shown = {
            name: labels_shown(truth, analyze(clip, model, Path(scratch) / name))
            for name, model in (("shipped", shipped), ("candidate", candidate))
        }
    found = [
        i for i in range(len(truth)) if shown["shipped"][i] is not None and shown["candidate"][i]
    ]
    right = {
        name: np.array([labels[i] == truth[i]["label"] for i in found])
        for name, labels in shown.items()
    }
    return {
        "faces": len(truth),
        "found_by_both": len(found),
        "distinct_files": len({face["file"] for face in truth}),
        "shipped": str(shipped),
        "candidate": str(candidate),
        "accuracy": {name: round(float(r.mean()), 4) for name, r in right.items()},
        "difference": paired_difference(right["shipped"], right["candidate"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("shipped", type=Path)
    parser.add_argument("candidate", type=Path)
    parser.add_argument("data", type=Path, help="FER-2013 image folders (train/, test/)")
    parser.add_argument("--faces", type=int, default=320, help="distinct faces in the clip")
    parser.add_argument("--json", type=Path, help="write the result here too")
    args = parser.parse_args(argv)
    for model in (args.shipped, args.candidate):
        if not model.is_file():
            parser.error(f"{model} not found")
    result = check(args.shipped, args.candidate, args.data, args.faces)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
