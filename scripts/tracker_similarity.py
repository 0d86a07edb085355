"""How alike the tracker's appearance descriptors are for the same face and
for different faces, and where `Tracker.min_similarity` goes between them.

The tracker keeps a track only if the new crop correlates with the track's
at `min_similarity` or more (edge/tracking.py). Two sources of pairs:

- the demo clip, through the real detector: the same person in consecutive
  frames (same face), and two different people in the same or consecutive
  frames (different faces), matched to the truth by the one rule for "found"
  (edge.scoring.match);
- FER-2013 PublicTest faces (../shared): different faces, random pairs of
  different images; the same face, an image against itself shifted by up to
  2 px of 48 (4 % of its side) and brightened or darkened by up to 10 % (what a
  frame step does to a crop at 30 fps, or several at 10).

The rule: the threshold is the midpoint between the same-face 1st percentile
and the different-face 99th percentile over both sources; if they overlap,
the midpoint still, and the JSON says by how much. Writes
benchmarks/results/<name>/tracker_similarity.json (and .md).

    python scripts/tracker_similarity.py --name dev-2core
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tarfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.__main__ import RESULTS_DIR, stamped, write_result  # noqa: E402
from benchmarks.provenance import refuse_dirty  # noqa: E402
from edge.analysis import FaceAnalyzer  # noqa: E402
from edge.config import DEMO_CLIP, ClassifierConfig, DetectorConfig  # noqa: E402
from edge.scoring import match  # noqa: E402
from edge.tracking import appearance  # noqa: E402

FER_ARCHIVE = ROOT.parent / "shared/datasets/fer2013/fer2013-train-publictest.tar.gz"
QUANTILES = (0.1, 1, 5, 50, 95, 99, 99.9)


def demo_clip_pairs() -> tuple[list[float], list[float]]:
    truth = json.loads(DEMO_CLIP.with_suffix(".truth.json").read_text())["frames"]
    cap = cv2.VideoCapture(str(DEMO_CLIP))
    frames: list[dict[str, np.ndarray]] = []  # per frame: person -> descriptor
    with FaceAnalyzer.from_config(DetectorConfig(), ClassifierConfig()) as analyzer:
        for frame_truth in truth:
            ok, image = cap.read()
            if not ok:
                break
            faces = analyzer.analyze_still(image).faces
            found = match(frame_truth["faces"], [{"box": f.box} for f in faces])
            people = {}
            for true_face, det in found:
                vector = appearance(image, det["box"])
                if vector is not None:
                    people[true_face["file"]] = vector
            frames.append(people)
    cap.release()
    same, different = [], []
    for now, then in itertools.pairwise(frames):
        for person, vector in now.items():
            if person in then:
                same.append(float(vector @ then[person]))
            for other, other_vector in then.items():
                if other != person:
                    different.append(float(vector @ other_vector))
        for (_, a), (_, b) in itertools.combinations(now.items(), 2):
            different.append(float(a @ b))
    return same, different


def publictest_pairs(count: int, rng: np.random.Generator) -> tuple[list[float], list[float]]:
    images = []
    with tarfile.open(FER_ARCHIVE) as archive:
        for member in archive:
            if member.isfile() and member.name.startswith("test/"):
                data = archive.extractfile(member).read()
                image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
                if image is not None:
                    images.append(image)
    picks = rng.choice(len(images), size=(count, 2))
    different = []
    for a, b in picks:
        if a == b:
            continue
        va = appearance(images[a], (0, 0, 48, 48))
        vb = appearance(images[b], (0, 0, 48, 48))
        if va is not None and vb is not None:
            different.append(float(va @ vb))
    same = []
    for index in rng.choice(len(images), size=count):
        canvas = cv2.copyMakeBorder(images[index], 8, 8, 8, 8, cv2.BORDER_REFLECT)
        dx, dy = rng.integers(-2, 3, size=2)
        gain = rng.uniform(0.9, 1.1)
        moved = np.clip(canvas.astype(np.float32) * gain, 0, 255).astype(np.uint8)
        va = appearance(canvas, (8, 8, 48, 48))
        vb = appearance(moved, (8 + dx, 8 + dy, 48, 48))
        if va is not None and vb is not None:
            same.append(float(va @ vb))
    return same, different


def quantiles(values: list[float]) -> dict[str, float]:
    return {f"p{q:g}": round(float(np.percentile(values, q)), 4) for q in QUANTILES}


def run(count: int = 4000, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    sources = {"demo_clip": demo_clip_pairs(), "publictest": publictest_pairs(count, rng)}
    same_all = [v for same, _ in sources.values() for v in same]
    different_all = [v for _, different in sources.values() for v in different]
    same_p1 = float(np.percentile(same_all, 1))
    different_p99 = float(np.percentile(different_all, 99))
    threshold = round((same_p1 + different_p99) / 2, 2)
    return {
        "sources": {
            name: {
                "same": {"pairs": len(same), **quantiles(same)},
                "different": {"pairs": len(different), **quantiles(different)},
            }
            for name, (same, different) in sources.items()
        },
        "same_p1": round(same_p1, 4),
        "different_p99": round(different_p99, 4),
        "overlap": same_p1 <= different_p99,
        "rule": "midpoint of the same-face 1st and the different-face 99th percentiles",
        "min_similarity": threshold,
        "same_below": round(float(np.mean(np.array(same_all) < threshold)), 4),
        "different_at_or_above": round(float(np.mean(np.array(different_all) >= threshold)), 4),
    }


def table(result: dict) -> str:
    lines = [
        "| source | pairs | p1 | p5 | p50 | p95 | p99 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, kinds in result["sources"].items():
        for kind, q in kinds.items():
            lines.append(
                f"| {name}, {kind} face | {q['pairs']} | {q['p1']:.2f} | {q['p5']:.2f} | "
                f"{q['p50']:.2f} | {q['p95']:.2f} | {q['p99']:.2f} |"
            )
    return (
        "\n".join(lines) + f"\n\nmin_similarity {result['min_similarity']:.2f} ({result['rule']}): "
        f"{100 * result['same_below']:.2f} % of same-face pairs fall below it, "
        f"{100 * result['different_at_or_above']:.2f} % of different-face pairs reach it.\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", default="dev-2core", help="results folder name")
    parser.add_argument("--allow-dirty", action="store_true", help="record from a dirty tree")
    args = parser.parse_args(argv)
    if refuse_dirty(args.allow_dirty):
        return 2
    result = stamped(run(), allow_dirty=args.allow_dirty)
    out = RESULTS_DIR / args.name
    out.mkdir(parents=True, exist_ok=True)
    return write_result(out, "tracker_similarity", result, table(result))


if __name__ == "__main__":
    sys.exit(main())
