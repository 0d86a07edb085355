"""`python -m benchmarks --distance`: how far each face-detector setting sees.

The same faces, shrunk from ~200 px wide down to ~32 px, are placed in
640x480 and 1280x720 frames and run through the real analysis path
(`FaceAnalyzer`: detect on a low-resolution view as the Pi does, crop and
classify from the full frame) for each detector setting, all in one run. Two
sets of faces, because no one set here is both real and labelled:

- portraits: a photographed head with its hair, shoulders and background
  (matplotlib's sample photo of Grace Hopper, 18 variants: mirrored, turned
  +-6 degrees, darker and brighter), the way a camera sees a person. Recall
  against face width comes from these.
- FER-2013 faces: labelled, but cut tight to the face, with no head around
  it, which BlazeFace needs; their recall is a lower bound. What they measure
  is the label: the share labelled right when the face is cropped at its true
  box at that width (the classifier's side of distance), and the share found
  and labelled right (both sides).

It reports, per face width, recall on each set, the label figures, and the
detector's cost per frame.
Face widths become distances for a Raspberry Pi Camera Module 3 (66 degrees
across) and a face 16 cm wide: distance = 0.16 m x frame width /
(2 tan 33 deg x face width).

FER faces: PublicTest images (`data/fer2013/test`, `make data/fer2013/train`
unpacks it), the first COUNT in a seeded order that the short-range detector
finds at 240 px on the demo clip's background (as the demo clip picks them);
without the data, the demo clip's own faces. Writes `distance.json`, `distance.md` and
`distance.png` into the results folder.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.workloads import demo_faces
from edge.analysis import FaceAnalyzer
from edge.config import DEMO_CLIP, RANGE_MODELS, ClassifierConfig, DetectorConfig
from edge.detectors.mediapipe import MediaPipeDetector
from edge.frames import Face
from edge.scoring import match

log = logging.getLogger("benchmarks.distance")

WIDTHS = (200, 140, 100, 72, 57, 45, 37, 32)  # face width in frame pixels
FRAME_SIZES = ((640, 480), (1280, 720))
# Setting name -> (whole-frame detector range, tiles, width of the image
# detected on: the Pi camera's low-resolution stream). Tiles use the
# full-range model, one tile every 2nd frame in turn (the default
# tile_every), and follow what they found on every frame.
SETTINGS = {
    "short": ("short", 1, 320),
    "full": ("full", 1, 320),
    "short + 2x2 tiles": ("short", 2, 640),
    "short + 3x3 tiles, lores 320": ("short", 3, 320),
    "short + 3x3 tiles": ("short", 3, 640),
}
FACE_M = 0.16
HFOV_DEG = 66.0  # Camera Module 3 (standard lens)
RECALL_TARGET = 0.9
PICK_SIDE = 240  # the size faces are checked at before they are used
DATA = Path("data/fer2013/test")
SEED = 2013


def distance_m(face_px: float, frame_width: int) -> float:
    """How far a 16 cm face is when it spans `face_px` of a `frame_width` frame."""
    return FACE_M * frame_width / (2 * math.tan(math.radians(HFOV_DEG / 2)) * face_px)


def background(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """The demo clip's kind of background: a soft gray gradient with a little noise."""
    x = np.linspace(0, 1, width)[None, :]
    y = np.linspace(0, 1, height)[:, None]
    gray = 95 + 40 * x + 25 * y + rng.normal(0, 3, (height, width))
    return np.clip(gray, 0, 255).astype(np.uint8)


def labelled_faces(count: int, data: Path = DATA) -> tuple[list[tuple[str, np.ndarray]], str]:
    """(label, gray face) pairs, and where they came from."""
    if not data.is_dir():
        truth = json.loads(DEMO_CLIP.with_suffix(".truth.json").read_text())
        labels = {}
        for frame in truth["frames"]:
            for face in frame["faces"]:
                labels.setdefault(face["file"], face["label"])
        faces = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in demo_faces()]
        return list(zip(labels.values(), faces, strict=True)), "the demo clip's faces"
    rng = np.random.default_rng(SEED)
    paths = sorted(data.glob("*/*.jpg")) + sorted(data.glob("*/*.png"))
    order = rng.permutation(len(paths))
    bg = background(640, 480, rng)
    picked = []
    with MediaPipeDetector(RANGE_MODELS["short"]) as detector:
        for i in order:
            face = cv2.imread(str(paths[i]), cv2.IMREAD_GRAYSCALE)
            if face is None:
                continue
            canvas = bg.copy()
            x, y = 320 - PICK_SIDE // 2, 240 - PICK_SIDE // 2
            canvas[y : y + PICK_SIDE, x : x + PICK_SIDE] = cv2.resize(
                face, (PICK_SIDE, PICK_SIDE), interpolation=cv2.INTER_CUBIC
            )
            found = detector.detect(cv2.cvtColor(canvas, cv2.COLOR_GRAY2BGR))
            if len(found) == 1 and found[0].score >= 0.7:
                picked.append((paths[i].parent.name, face))
                if len(picked) == count:
                    break
    return picked, f"{len(picked)} FER-2013 PublicTest faces ({data})"


def portraits() -> list[tuple[None, np.ndarray, tuple]]:
    """(no label, BGR head-and-shoulders crop, face box in it) variants of one photo."""
    import matplotlib

    photo = cv2.imread(str(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"))
    with MediaPipeDetector(RANGE_MODELS["full"]) as detector:
        x, y, w, h = detector.detect(photo)[0].box
    # the head with its hair and shoulders: 0.5 face widths either side, more below
    x0, y0 = max(0, x - w // 2), max(0, y - h // 2)
    x1, y1 = min(photo.shape[1], x + w + w // 2), min(photo.shape[0], y + h + 7 * h // 10)
    variants = []
    for mirror in (False, True):
        for angle in (-6, 0, 6):
            for gain in (0.7, 1.0, 1.3):
                image = cv2.flip(photo, 1) if mirror else photo
                fx = photo.shape[1] - x - w if mirror else x
                centre = (fx + w / 2, y + h / 2)
                turn = cv2.getRotationMatrix2D(centre, angle, 1.0)
                image = cv2.warpAffine(
                    image, turn, image.shape[1::-1], borderMode=cv2.BORDER_REFLECT
                )
                image = np.clip(image.astype(np.float32) * gain, 0, 255).astype(np.uint8)
                cx0 = photo.shape[1] - x1 if mirror else x0
                crop = image[y0:y1, cx0 : cx0 + (x1 - x0)]
                variants.append((None, crop, (fx - cx0, y - y0, w, h)))
    return variants


def fer_sets(faces: list[tuple[str, np.ndarray]]) -> list[tuple[str, np.ndarray, tuple]]:
    """FER faces as (label, BGR image, face box): the crop is the face."""
    return [
        (label, cv2.cvtColor(f, cv2.COLOR_GRAY2BGR), (0, 0, *f.shape[1::-1])) for label, f in faces
    ]


def scenes(faces, face_px: int, size: tuple[int, int], rng: np.random.Generator):
    """Frames with each face's box scaled to `face_px` wide, a few per frame in a
    jittered grid on the demo clip's kind of background."""
    width, height = size
    scaled = []
    for label, image, (fx, fy, fw, fh) in faces:
        k = face_px / fw
        crop = cv2.resize(image, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
        if crop.shape[0] > height or crop.shape[1] > width:  # at 200 px the frame cuts it
            crop = crop[: min(crop.shape[0], height), : min(crop.shape[1], width)]
        scaled.append((label, crop, (round(fx * k), round(fy * k), round(fw * k), round(fh * k))))
    cell_w = max(c.shape[1] for _, c, _ in scaled) + 8
    cell_h = max(c.shape[0] for _, c, _ in scaled) + 8
    cols, rows = max(1, min(4, width // cell_w)), max(1, min(3, height // cell_h))
    per_frame = cols * rows
    for start in range(0, len(scaled), per_frame):
        canvas = cv2.cvtColor(background(width, height, rng), cv2.COLOR_GRAY2BGR)
        truths = []
        for k, (label, crop, (bx, by, bw, bh)) in enumerate(scaled[start : start + per_frame]):
            r, c = divmod(k, cols)
            ch, cw = crop.shape[:2]
            slack_x, slack_y = max(0, width / cols - cw), max(0, height / rows - ch)
            x = min(width - cw, int(c * width / cols + rng.uniform(0, 1) * slack_x))
            y = min(height - ch, int(r * height / rows + rng.uniform(0, 1) * slack_y))
            canvas[y : y + ch, x : x + cw] = crop
            truths.append(((x + bx, y + by, bw, bh), label))
        yield canvas, truths


def score(truths, faces: list[Face]) -> tuple[int, int]:
    """(found, found and labelled right), by the one rule for "found" that the
    README's recall uses too (edge.scoring.match)."""
    pairs = match(
        [{"box": box, "label": label} for box, label in truths],
        [{"box": face.box, "label": face.label} for face in faces],
    )
    return len(pairs), sum(truth["label"] == det["label"] for truth, det in pairs)


def measure(setting: str, sets: dict, size: tuple[int, int]) -> dict:
    """One setting on one frame size: per face width, each set's figures."""
    detector_range, tiles, detect_width = SETTINGS[setting]
    width, height = size
    detect_width = min(detect_width, width)
    detect_size = (detect_width, round(height * detect_width / width / 2) * 2)
    config = DetectorConfig(
        range=detector_range,
        tiles=tiles,
        min_face=max(8, round(20 * detect_width / width)),
    )
    # Each scene stays for one full turn of the tiles, as a person stays in
    # view; it is scored on its last frame: found within n² frames.
    repeats = tiles * tiles * config.tile_every
    rows = []
    costs = []
    with FaceAnalyzer.from_config(config, ClassifierConfig()) as analyzer:
        for face_px in WIDTHS:
            row = {"face_px": face_px, "distance_m": round(distance_m(face_px, width), 2)}
            for name, faces in sets.items():
                rng = np.random.default_rng(SEED)
                found = right = given_box = total = 0
                for image, truths in scenes(faces, face_px, size, rng):
                    gray = cv2.resize(
                        cv2.cvtColor(image, cv2.COLOR_BGR2GRAY),
                        detect_size,
                        interpolation=cv2.INTER_AREA,
                    )
                    # a new scene, as a camera sees people walk in: found tile by tile
                    analyzer.detector.forget(look_everywhere=False)
                    for _ in range(repeats):
                        stage_ms: dict[str, float] = {}
                        result = analyzer.analyze(image, gray, stage_ms)
                        costs.append(stage_ms["detect"])
                    f, r = score(truths, result)
                    found, right, total = found + f, right + r, total + len(truths)
                    if truths[0][1] is not None:  # labelled: the classifier at the true box
                        at_box = analyzer.classify_at(image, [box for box, _ in truths])
                        hits = sum(f.label == t for f, (_, t) in zip(at_box, truths, strict=True))
                        given_box += hits
                row[name] = {"recall": round(found / total, 3), "faces": total}
                if faces[0][0] is not None:
                    row[name]["labelled"] = round(right / total, 3)
                    row[name]["label_given_box"] = round(given_box / total, 3)
            rows.append(row)
        cost = one_face_cost(analyzer, sets["portraits"], size, detect_size)
    reach = [r for r in rows if r["portraits"]["recall"] >= RECALL_TARGET]
    return {
        "setting": setting,
        "frame": f"{width}x{height}",
        "range": detector_range,
        "tiles": tiles,
        "detect_width": detect_width,
        "detect_ms_p50": round(float(np.median(costs)), 2),
        "detect_ms_one_far_face": cost,
        "reach_m": max((r["distance_m"] for r in reach), default=0.0),
        "rows": rows,
    }


def one_face_cost(analyzer, portraits, size, detect_size, frames: int = 30) -> float:
    """Mean detect ms per frame over `frames` frames showing one portrait at
    45 px: the steady cost a camera pays with one far person in view."""
    rng = np.random.default_rng(SEED)
    image, _ = next(scenes(portraits[:1], 45, size, rng))
    gray = cv2.resize(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), detect_size)
    analyzer.detector.forget(look_everywhere=False)
    costs = []
    for _ in range(frames):
        stage_ms: dict[str, float] = {}
        analyzer.analyze(image, gray, stage_ms)
        costs.append(stage_ms["detect"])
    return round(float(np.mean(costs)), 2)


def time_to_find(
    size: tuple[int, int] = (640, 480), face_px: int = 32, wait: int = 45, limit: int = 90
) -> dict:
    """Frames the default takes to find a far face that walks into a still
    scene: each portrait variant appears, `face_px` wide (2.5 m at 640x480),
    after `wait` frames of the empty room, every frame with fresh sensor
    noise, as a camera sees it. The default searches only where the scene
    changed, so this is the case that must stay fast."""
    width, height = size
    frames = []
    for index, variant in enumerate(portraits()):
        seed = SEED + index
        with_face, truths = next(scenes([variant], face_px, size, np.random.default_rng(seed)))
        empty = cv2.cvtColor(
            background(width, height, np.random.default_rng(seed)), cv2.COLOR_GRAY2BGR
        )
        # anywhere in the frame: the scene and the box moved alike
        noise = np.random.default_rng(seed)
        (x, y, w, h), label = truths[0]
        dx = int(noise.integers(0, width - x - 2 * w))
        dy = int(noise.integers(0, height - y - 2 * h))
        with_face, empty = (np.roll(i, (dy, dx), axis=(0, 1)) for i in (with_face, empty))
        truths = [((x + dx, y + dy, w, h), label)]
        with FaceAnalyzer.from_config(DetectorConfig(), ClassifierConfig()) as analyzer:
            found_at = None
            for frame in range(wait + limit):
                image = with_face if frame >= wait else empty
                noisy = np.clip(image + noise.normal(0, 2.0, image.shape), 0, 255)
                faces = analyzer.analyze(noisy.astype(np.uint8))
                if frame >= wait and score(truths, faces)[0]:
                    found_at = frame - wait
                    break
        frames.append(found_at)
    found = [f for f in frames if f is not None]
    return {
        "frame": f"{width}x{height}",
        "face_px": face_px,
        "distance_m": round(distance_m(face_px, width), 2),
        "faces": len(frames),
        "frames_to_find": frames,
        "median_frames": statistics.median(found) if found else None,
        "max_frames": max(found) if found else None,
        "within_30_frames": round(sum(f <= 30 for f in found) / len(frames), 3),
    }


def run(count: int = 80) -> dict:
    fer, origin = labelled_faces(count)
    sets = {"portraits": portraits(), "fer": fer_sets(fer)}
    log.info("distance: portraits and %s, widths %s px", origin, ", ".join(map(str, WIDTHS)))
    results = []
    for size in FRAME_SIZES:
        for setting in SETTINGS:
            t0 = time.perf_counter()
            results.append(measure(setting, sets, size))
            log.info(
                "distance: %s on %dx%d: %.1f ms detect with one far face, %.1f s",
                setting,
                *size,
                results[-1]["detect_ms_one_far_face"],
                time.perf_counter() - t0,
            )
    log.info("distance: time to find a far face walking in")
    arrival = time_to_find()
    return {
        "time_to_find": arrival,
        "faces": {"portraits": "grace_hopper.jpg (matplotlib), 18 variants", "fer": origin},
        "hfov_deg": HFOV_DEG,
        "face_m": FACE_M,
        "results": results,
    }


def table(result: dict) -> str:
    """Markdown: per (frame, setting), portrait recall per face width, then the
    FER faces' recall and labels at ~57 px."""
    lines = [
        "Faces found (recall) on the portraits, by face width in the frame; the last "
        "columns: FER faces at 57 px: found, found and labelled right, labelled right "
        "at the true box.\n",
        "| frame | setting | detect ms, one far face (x short) | reach (recall >= 90 %) | "
        + " | ".join(f"{w} px" for w in WIDTHS)
        + " | FER 57 px found | labelled | at true box |",
        "|" + "---|" * (7 + len(WIDTHS)),
    ]
    short = {
        r["frame"]: r["detect_ms_one_far_face"]
        for r in result["results"]
        if r["setting"] == "short"
    }
    for r in result["results"]:
        cells = [f"{row['portraits']['recall']:.0%}" for row in r["rows"]]
        cost = r["detect_ms_one_far_face"]
        fer = next(row["fer"] for row in r["rows"] if row["face_px"] == 57)
        lines.append(
            f"| {r['frame']} | {r['setting']} | {cost:.1f} ({cost / short[r['frame']]:.1f}x) | "
            f"{r['reach_m']:.1f} m | " + " | ".join(cells) + f" | {fer['recall']:.0%} | "
            f"{fer['labelled']:.0%} | {fer['label_given_box']:.0%} |"
        )
    arrival = result.get("time_to_find")
    if arrival:
        lines += [
            "",
            f"A far face walking into a still {arrival['frame']} scene "
            f"({arrival['face_px']} px, {arrival['distance_m']} m), default setting: found "
            f"after a median of {arrival['median_frames']} frames, at most "
            f"{arrival['max_frames']} ({arrival['max_frames'] / 30:.2f} s at 30 fps); "
            f"{arrival['within_30_frames']:.0%} of {arrival['faces']} within 30 frames.",
        ]
    return "\n".join(lines) + "\n"


def plot(result: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(FRAME_SIZES), figsize=(11, 4), sharey=True)
    for ax, (width, height) in zip(axes, FRAME_SIZES, strict=True):
        frame = f"{width}x{height}"
        for r in (r for r in result["results"] if r["frame"] == frame):
            px = [row["face_px"] for row in r["rows"]]
            ax.plot(
                px,
                [row["portraits"]["recall"] for row in r["rows"]],
                marker="o",
                label=f"{r['setting']} ({r['detect_ms_one_far_face']:.1f} ms)",
            )
        ax.axhline(RECALL_TARGET, color="gray", lw=0.8, ls=":")
        ax.invert_xaxis()
        ax.set_xlabel(f"face width in a {frame} frame (px)")
        top = ax.secondary_xaxis(
            "top",
            functions=(
                lambda p, w=width: distance_m(np.maximum(p, 1), w),
                lambda d, w=width: distance_m(np.maximum(d, 0.01), w),
            ),
        )
        top.set_xticks([0.6, 0.8, 1, 1.5, 2.5] if width <= 640 else [1, 1.5, 2, 3, 5])
        top.set_xlabel("distance from a Camera Module 3 (m)")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left", fontsize=8)
    axes[0].set_ylabel("faces found (recall)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
